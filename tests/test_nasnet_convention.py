"""The NASNet convention builds the zoo's NASNet-A and PNASNet-5 as timm's reference networks:
same parameters and mult-adds at their published sizes, same outputs with the same weights."""
import pytest
import timm
import torch
from timm.models.nasnet import NASNetALarge

from retrain.spec import NetSpec
from supernet import zoo
from supernet.network import build_network
from supernet.sizes import count_macs, count_params


def _meta_sizes(build, image_size):
    with torch.device("meta"):
        net = build()
    return count_params(net), count_macs(net, image_size)


def _within(ours, reference, tolerance):
    return abs(ours - reference) <= tolerance * reference


@pytest.mark.parametrize("cell, C, layers, skip, timm_name", [
    ("nasnet_a", 168, 20, True, "nasnetalarge"),     # 6@4032
    ("pnasnet_5", 216, 12, False, "pnasnet5large"),  # 4@4320, reductions counted among the 3N cells
])
def test_large_networks_have_timms_sizes(cell, C, layers, skip, timm_name):
    spec = NetSpec(zoo.get(cell), C, layers, 1000, 331, convention="nasnet", skip_reduction_input=skip)
    params, macs = _meta_sizes(spec.build, 331)
    ref_params, ref_macs = _meta_sizes(lambda: timm.create_model(timm_name, pretrained=False), 331)
    assert _within(params, ref_params, 0.005), (params, ref_params)
    assert _within(macs, ref_macs, 0.005), (macs, ref_macs)


def _copy_weights(src: torch.nn.Module, dst: torch.nn.Module):
    """src's tensors into dst, pairing tensors of equal shape in registration order."""
    pool = list(src.state_dict().values())
    taken = [False] * len(pool)
    state = {}
    for key, value in dst.state_dict().items():
        i = next(i for i, t in enumerate(pool) if not taken[i] and t.shape == value.shape)
        taken[i], state[key] = True, pool[i]
    assert all(taken)
    dst.load_state_dict(state)


def test_nasnet_a_computes_what_timms_nasnet_computes():
    torch.manual_seed(0)
    ref = NASNetALarge(num_classes=10, stem_size=12, num_features=24 * 8)   # a narrow 6@192
    ours = build_network(zoo.get("nasnet_a"), 8, 20, 10, stem="imagenet", convention="nasnet",
                   stem_multiplier=12 / 32, skip_reduction_input=True)
    _copy_weights(ref, ours)
    x = torch.randn(2, 3, 123, 123)   # odd sizes: TF 'SAME' padding matters
    # training mode: batch statistics make every path count
    torch.testing.assert_close(ours.train()(x), ref.train()(x))
    plain = build_network(zoo.get("nasnet_a"), 8, 20, 10, stem="imagenet", convention="nasnet", stem_multiplier=12 / 32)
    _copy_weights(ref, plain)
    assert not torch.allclose(plain.train()(x), ref(x), atol=1e-3)   # the chaining after reductions is seen


def test_pnasnet_5_computes_what_timms_pnasnet_computes():
    torch.manual_seed(0)
    ref = timm.create_model("pnasnet5large", num_classes=10)
    ours = build_network(zoo.get("pnasnet_5"), 216, 12, 10, stem="imagenet", convention="nasnet")
    _copy_weights(ref, ours)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(ours.train()(x), ref.train()(x))


def test_nasnet_a_mobile_size():
    spec = NetSpec(zoo.get("nasnet_a"), 44, 14, 1000, 224, convention="nasnet", stem_multiplier=1)   # 4@1056
    params, macs = _meta_sizes(spec.build, 224)
    assert _within(params, 5.3e6, 0.03), params
    assert _within(macs, 564e6, 0.01), macs   # the paper's 564M mult-adds


@pytest.mark.parametrize("name", ["nasnet_a", "amoebanet_a", "pnasnet_5", "enas", "darts_v2"])
@pytest.mark.parametrize("image_size", [32, 224])
def test_forward_shapes(name, image_size):
    net = NetSpec(zoo.get(name), 8, 5, 7, image_size, convention="nasnet").build(auxiliary=True).eval()
    assert net(torch.randn(2, 3, image_size, image_size)).shape == (2, 7)
    logits, aux = net.train()(torch.randn(2, 3, image_size, image_size))
    assert logits.shape == aux.shape == (2, 7)


def test_every_nasnet_space_op_builds_and_keeps_shapes():
    from supernet.nasnet_ops import NASNET_CONVENTION_OPS, nasnet_op
    for name in NASNET_CONVENTION_OPS:
        for stride, size in ((1, 9), (2, 9), (2, 10)):
            op = nasnet_op(name, 6, 4, stride, affine=True)
            assert op(torch.randn(2, 6, size, size)).shape == (2, 4, -(-size // stride), -(-size // stride)), name
