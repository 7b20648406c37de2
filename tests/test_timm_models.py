"""After `import retrain`, the zoo's networks and any genotype are timm models."""
import json

import pytest
import timm
import torch

import retrain.timm_models
from supernet import zoo
from supernet.sizes import count_params


def _meta_model(name, **kwargs):
    with torch.device("meta"):
        return timm.create_model(name, **kwargs)


def test_every_zoo_cell_is_registered():
    assert set(timm.list_models("nas_*")) == {f"nas_{n}" for n in zoo.names()} | {
        "nas_nasnet_a_large", "nas_pnasnet_5_large", "nas_genotype"}
    assert set(retrain.timm_models.MODELS) == set(timm.list_models("nas_*"))


@pytest.mark.parametrize("name, published", [
    ("nas_darts_v2", 4.7e6),     # DARTS, ImageNet mobile
    ("nas_nasnet_a", 5.3e6),     # NASNet-A Mobile 4@1056
    ("nas_pnasnet_5", 5.1e6),    # PNASNet-5 Mobile
])
def test_mobile_models_have_the_published_parameter_counts(name, published):
    model = _meta_model(name)
    assert model.pretrained_cfg["input_size"] == (3, 224, 224) and model.num_classes == 1000
    assert abs(count_params(model) - published) <= 0.03 * published


def test_large_model_matches_timms_reference():
    ours, ref = _meta_model("nas_pnasnet_5_large"), _meta_model("pnasnet5large")
    assert count_params(ours) == count_params(ref)
    assert ours.pretrained_cfg["input_size"] == ref.pretrained_cfg["input_size"] == (3, 331, 331)


def test_genotype_model_from_a_search_json(tmp_path):
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"best": {"genotype": zoo.get("darts_v1").to_dict(), "reward": 0.5}}))
    model = timm.create_model("nas_genotype", genotype=str(path), num_classes=10, image_size=32, C=16, layers=8,
                              drop_path_rate=0.1)
    reference = timm.create_model("nas_darts_v1", num_classes=10, image_size=32, C=16, layers=8)
    assert count_params(model) == count_params(reference) and model.drop_path == 0.1
    assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_wrong_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="needs genotype"):
        timm.create_model("nas_genotype")
    with pytest.raises(ValueError, match="no dropout"):
        timm.create_model("nas_darts_v2", drop_rate=0.2)
    with pytest.raises(ValueError, match="unsupported model argument"):
        timm.create_model("nas_darts_v2", widths=3)
