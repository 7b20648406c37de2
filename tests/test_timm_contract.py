"""timm's model contract (the checks of timm's own tests/test_models.py, written for this project) for
every registered nas_* model, the names taken from timm's registry, at small sizes: forward and
backward, the classifier and pooling API, forward_features / forward_head(pre_logits), feature maps
(features_only=True, forward_intermediates), TorchScript, and torch.fx tracing."""
import math
import warnings

import pytest
import timm
import torch
from timm.models import create_feature_extractor, get_graph_node_names  # timm's tracer knows its own layers

import retrain  # noqa: F401  (registers the models)

NAMES = timm.list_models("nas_*")
SMALL = {"C": 8, "layers": 5}


def small(name, image_size, **kwargs):
    """The model at 8 channels and 5 cells: with the CIFAR stem at 32 px, the ImageNet one at 96 px."""
    return timm.create_model(name, image_size=image_size, **SMALL, **kwargs)


def images(image_size, batch=1):
    return torch.randn(batch, 3, image_size, image_size, generator=torch.Generator().manual_seed(0))


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)   # torch.jit.script's deprecation notice
        yield


def test_the_names_come_from_the_registry():
    assert len(NAMES) == 10 and "nas_genotype" in NAMES and "nas_nasnet_a_large" in NAMES


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("image_size", [32, 96])
def test_forward_backward_and_the_head(name, image_size):
    model = small(name, image_size).eval()
    x = images(image_size)
    out = model(x)
    assert out.shape == (1, model.num_classes) and not torch.isnan(out).any()
    assert model.num_features > 0 and model.head_hidden_size == model.num_features

    features = model.forward_features(x)
    final = model.feature_info[-1]
    assert features.shape[1] == model.num_features == final["num_chs"]
    assert features.shape[-1] <= math.ceil(image_size / final["reduction"]) + 1
    assert model.forward_head(features, pre_logits=True).shape == (1, model.head_hidden_size)
    torch.testing.assert_close(model.forward_head(features), out)

    model.reset_classifier(0)
    assert model.num_classes == 0 and model(x).shape == (1, model.head_hidden_size)
    model.reset_classifier(0, "")
    assert model(x).shape == features.shape
    assert small(name, image_size, num_classes=0, global_pool="").eval()(x).shape == features.shape
    assert isinstance(model.get_classifier(), torch.nn.Identity)

    state = small(name, image_size).state_dict()
    cfg = model.pretrained_cfg
    assert cfg["classifier"] + ".weight" in state and cfg["first_conv"] + ".weight" in state

    trained = small(name, image_size, num_classes=42).train()
    logits = trained(images(image_size, batch=2))
    logits.mean().backward()
    assert logits.shape == (2, 42)
    assert [n for n, p in trained.named_parameters() if p.grad is None] == []


@pytest.mark.parametrize("name", NAMES)
def test_the_default_configs_pool_size_is_that_of_the_features(name):
    with torch.device("meta"):
        model = timm.create_model(name)
    size = model.pretrained_cfg["input_size"]
    features = model.forward_features(torch.empty(1, *size, device="meta"))
    assert tuple(features.shape[-2:]) == model.pretrained_cfg["pool_size"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("image_size", [32, 96])
def test_feature_maps_match_feature_info(name, image_size):
    extractor = small(name, image_size, features_only=True).eval()
    channels, reductions = extractor.feature_info.channels(), extractor.feature_info.reduction()
    assert len(channels) >= 3 and reductions == sorted(set(reductions))
    maps = extractor(images(image_size))
    assert [m.shape[1] for m in maps] == channels
    assert all(m.shape[-1] <= math.ceil(image_size / r) + 1 for m, r in zip(maps, reductions))

    model = small(name, image_size).eval()
    final, intermediates = model.forward_intermediates(images(image_size))
    assert [m.shape for m in intermediates] == [m.shape for m in maps]
    torch.testing.assert_close(final, model.forward_features(images(image_size)))
    assert len(model.forward_intermediates(images(image_size), indices=2, intermediates_only=True)) == 2


@pytest.mark.parametrize("name", NAMES)
def test_torchscript(name):
    model = small(name, 96).eval()
    scripted = torch.jit.script(model)
    x = images(96)
    torch.testing.assert_close(scripted(x), model(x))


@pytest.mark.parametrize("name", NAMES)
def test_fx_tracing_forward_and_backward(name):
    model = small(name, 96).eval()
    _, eval_nodes = get_graph_node_names(model)
    fx = create_feature_extractor(model, return_nodes=[eval_nodes[-1]])
    x = images(96)
    with torch.no_grad():
        assert torch.equal(next(iter(fx(x).values())), model(x))
    trained = small(name, 96, num_classes=42).train()
    train_nodes, _ = get_graph_node_names(trained)
    fx = create_feature_extractor(trained, return_nodes=[train_nodes[-1]])
    next(iter(fx(images(96, batch=2)).values())).mean().backward()
    assert all(p.grad is not None for p in fx.parameters())
