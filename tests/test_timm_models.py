"""After `import retrain`, the zoo's networks and any genotype are timm models."""
import json

import pytest
import timm
import torch

import retrain.timm_models
from retrain.cli import main as retrain_main
from retrain.spec import NetSpec
from supernet import zoo
from supernet.errors import UserError
from supernet.runtime.checkpoint import load_checkpoint
from supernet.runtime.data import make_loaders
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


def test_nas_genotype_builds_darts_v2_when_given_no_genotype():
    assert _meta_model("nas_genotype").genotype == zoo.get("darts_v2")


def test_wrong_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="no dropout"):
        timm.create_model("nas_darts_v2", drop_rate=0.2)
    with pytest.raises(ValueError, match="unsupported model argument"):
        timm.create_model("nas_darts_v2", widths=3)


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    """Two finished digits retrainings of darts_v2, 4 and 6 channels wide."""
    out = tmp_path_factory.mktemp("retrained")
    for C in (4, 6):
        retrain_main(["--out", str(out / f"C{C}"), "genotype=darts_v2", f"C={C}", "layers=3", "dataset=digits",
                      "epochs=1", "cutout=0", "amp=off", "workers=0", "batch_size=64", "auxiliary_weight=0.4"])
    return out


def _through_timm(run, weights=None, **kwargs):
    return timm.create_model("nas_genotype", genotype=str(run / "retrain.json"), pretrained=True,
                             pretrained_cfg_overlay={"file": str(weights or run / "model.safetensors")}, **kwargs)


def test_a_retrained_network_loads_through_timm_with_its_final_weights(retrained):
    run = retrained / "C4"
    network = json.loads((run / "retrain.json").read_text())["network"]
    final = NetSpec.from_dict(network).build(auxiliary=True)
    final.load_state_dict(load_checkpoint(run)["model"])   # the run's final model, from its last checkpoint
    model = _through_timm(run).eval()
    assert model.num_classes == 10 and model.pretrained_cfg["input_size"] == (1, 8, 8)
    x = next(iter(make_loaders("digits", "", 32, workers=0).test))[0]
    with torch.no_grad():
        assert torch.equal(model(x), final.eval()(x))


def test_weights_of_another_network_are_one_clear_error(retrained):
    with pytest.raises(UserError, match=r"C4/model.safetensors holds the weights of another network \(C: 4 -> 6\)"):
        _through_timm(retrained / "C6", weights=retrained / "C4" / "model.safetensors")
    with pytest.raises(UserError, match=r"holds the weights of another network \(genotype\)"):
        timm.create_model("nas_genotype", genotype="darts_v1", C=4, layers=3, num_classes=10, in_chans=1,
                          image_size=8, pretrained=True,
                          pretrained_cfg_overlay={"file": str(retrained / "C4" / "model.safetensors")})


def test_export_to_onnx_and_torchscript_gives_the_networks_outputs(retrained, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    retrain_main(["export", str(retrained / "C4"), "--onnx", str(tmp_path / "m.onnx"),
                  "--torchscript", str(tmp_path / "m.pt")])
    model = _through_timm(retrained / "C4").eval()
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        expected = model(x)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(onnx_out), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.jit.load(str(tmp_path / "m.pt"))(x), expected)
