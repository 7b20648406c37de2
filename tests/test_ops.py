import pytest
import torch

from supernet.ops import OPS
from supernet.space import DARTS_OPS, NASNET_OPS


def test_op_lists_are_covered():
    assert set(NASNET_OPS) | set(DARTS_OPS) == set(OPS)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 9, 32])
def test_shape_contract(name, stride, size):
    op = OPS[name](6, stride, affine=False)
    y = op(torch.randn(2, 6, size, size + 1))
    expect = (2, 6, -(-size // stride), -(-(size + 1) // stride))
    assert tuple(y.shape) == expect


@pytest.mark.parametrize("affine", [False, True])
def test_affine_switch(affine):
    op = OPS["sep_conv_3x3"](4, 1, affine)
    bns = [m for m in op.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all((m.weight is not None) == affine for m in bns)
