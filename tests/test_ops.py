import os
import subprocess
import sys

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


@pytest.mark.parametrize("name", ["conv_1x1", "skip_connect"])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_strided_1x1_convolutions_equal_torchs_strided_convolution(name, memory_format):
    """The ops' strided 1x1 convolutions (conv_1x1 at stride 2, the factorized reduce) give the
    outputs and gradients of F.conv2d at stride 2, an independent computation."""
    torch.manual_seed(0)
    op = OPS[name](8, 2, True).to(memory_format=memory_format)
    x = torch.randn(4, 8, 9, 9).contiguous(memory_format=memory_format).requires_grad_()
    g = torch.randn(4, 8, 5, 5)
    op(x).backward(g)
    expected = {n: p.grad.clone() for n, p in op.named_parameters()}, x.grad.clone()
    strided = torch.nn.functional.conv2d
    convs = [m for m in op.modules() if isinstance(m, torch.nn.Conv2d)]
    x2 = x.detach().clone().requires_grad_()
    op.zero_grad()
    relu = torch.relu(x2)
    if name == "conv_1x1":
        out = op.bn(strided(relu, convs[0].weight, stride=2))
    else:
        shifted = torch.nn.functional.pad(relu[:, :, 1:, 1:], (0, 1, 0, 1))
        out = op.bn(torch.cat([strided(relu, convs[0].weight, stride=2), strided(shifted, convs[1].weight, stride=2)], 1))
    out.backward(g)
    for n, p in op.named_parameters():
        torch.testing.assert_close(p.grad, expected[0][n])
    torch.testing.assert_close(x2.grad, expected[1])


def test_strided_1x1_ops_train_channels_last_at_64px_without_corrupting_memory():
    """torch's CPU channels-last kernel of a strided 1x1 convolution corrupts the heap in backward
    at this size; the ops keep off it (glibc's checks abort the process where they do not)."""
    code = ("import torch\nfrom supernet.ops import OPS\n"
            "for name in ('conv_1x1', 'skip_connect'):\n"
            "    op = OPS[name](8, 2, False).to(memory_format=torch.channels_last)\n"
            "    for _ in range(10):\n"
            "        x = torch.randn(64, 8, 64, 64).contiguous(memory_format=torch.channels_last).requires_grad_()\n"
            "        op(x).sum().backward()\n")
    env = {**os.environ, "MALLOC_CHECK_": "3", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
