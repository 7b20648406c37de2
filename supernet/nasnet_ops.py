"""Operations as the NASNet-A / PNASNet-5 / AmoebaNet reference code builds them (TF-slim
`nasnet_utils`, tensorflow/tpu `amoeba_net/network_utils`, and timm's ports of the first two).

They differ from the DARTS ops (supernet/ops.py): an op may change the channel count (the
first stem cell reads the raw stem conv output), separable convs are stacked twice with the
middle width equal to the output, a pool that changes the width is followed by 1x1 conv + BN,
an identity at stride 2 is ReLU-conv1x1/2-BN, plain convs go through a 1x1 bottleneck of a
quarter of the width, padding is TF's 'SAME' (asymmetric at stride 2 on even sizes) and BN
uses eps 1e-3. Ops that start with a ReLU leave it out and set `relu_input`, so a cell can
apply it once per state for every op that reads the state.
"""
from __future__ import annotations

import torch
from timm.layers import create_conv2d, create_pool2d
from torch import nn

from .genotype import GenotypeError

BN_EPS, BN_MOMENTUM = 1e-3, 0.1


def bn(C: int, affine: bool = True) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(C, eps=BN_EPS, momentum=BN_MOMENTUM, affine=affine)


def conv(C_in: int, C_out: int, kernel, stride=1, dilation: int = 1, groups: int = 1) -> nn.Module:
    return create_conv2d(C_in, C_out, kernel, stride=stride, dilation=dilation, groups=groups, padding="same")


class Op(nn.Sequential):
    """An op; `relu_input` says its input must be ReLU'd first (done by the cell)."""

    def __init__(self, *layers, relu_input: bool):
        super().__init__(*layers)
        self.relu_input = relu_input


def conv_bn(C_in: int, C_out: int, stride: int = 1, affine: bool = True) -> Op:
    """1x1 conv + BN behind a ReLU (TF's strided identity, 1x1 op and input projections)."""
    return Op(conv(C_in, C_out, 1, stride), bn(C_out, affine), relu_input=True)


def sep_conv(C_in: int, C: int, k: int, stride: int, affine: bool) -> Op:
    return Op(conv(C_in, C_in, k, stride, groups=C_in), conv(C_in, C, 1), bn(C, affine), nn.ReLU(inplace=True),
              conv(C, C, k, groups=C), conv(C, C, 1), bn(C, affine), relu_input=True)


def pool(kind: str, k: int, C_in: int, C: int, stride: int, affine: bool) -> Op:
    extra = {"count_include_pad": False} if kind == "avg" else {}
    layers = [create_pool2d(kind, k, stride, padding="same", **extra)]
    if C_in != C:
        layers += [conv(C_in, C, 1), bn(C, affine)]
    return Op(*layers, relu_input=False)


def identity(C_in: int, C: int, stride: int, affine: bool) -> Op:
    if stride == 1 and C_in == C:
        return Op(relu_input=False)
    return conv_bn(C_in, C, stride, affine)


def _conv_layers(c_in: int, c_out: int, kernels, stride: int, dilation: int, affine: bool) -> list[nn.Module]:
    if len(kernels) == 1:
        return [conv(c_in, c_out, kernels[0], stride, dilation)]
    row, column = kernels  # 1xk then kx1, each striding along its own axis
    return [conv(c_in, c_out, row, (1, stride)), bn(c_out, affine), nn.ReLU(inplace=True),
            conv(c_out, c_out, column, (stride, 1))]


def bottleneck_conv(C_in: int, C: int, kernels, stride: int, dilation: int, affine: bool, width: float) -> Op:
    """AmoebaNet's plain convs: 1x1 down to `width * C`, the conv(s), 1x1 back up to C."""
    r = int(width * C)
    if r < 1:  # too narrow for a bottleneck
        return Op(*_conv_layers(C_in, C, kernels, stride, dilation, affine), bn(C, affine), relu_input=True)
    return Op(conv(C_in, r, 1), bn(r, affine), nn.ReLU(inplace=True),
              *_conv_layers(r, r, kernels, stride, dilation, affine), bn(r, affine), nn.ReLU(inplace=True),
              conv(r, C, 1), bn(C, affine), relu_input=True)


def _bottleneck(kernels, dilation=1, width=0.25):
    return lambda C_in, C, stride, affine: bottleneck_conv(C_in, C, kernels, stride, dilation, affine, width)


NASNET_CONVENTION_OPS = {
    "skip_connect": identity,
    "avg_pool_3x3": lambda C_in, C, stride, affine: pool("avg", 3, C_in, C, stride, affine),
    "max_pool_3x3": lambda C_in, C, stride, affine: pool("max", 3, C_in, C, stride, affine),
    "max_pool_5x5": lambda C_in, C, stride, affine: pool("max", 5, C_in, C, stride, affine),
    "max_pool_7x7": lambda C_in, C, stride, affine: pool("max", 7, C_in, C, stride, affine),
    "sep_conv_3x3": lambda C_in, C, stride, affine: sep_conv(C_in, C, 3, stride, affine),
    "sep_conv_5x5": lambda C_in, C, stride, affine: sep_conv(C_in, C, 5, stride, affine),
    "sep_conv_7x7": lambda C_in, C, stride, affine: sep_conv(C_in, C, 7, stride, affine),
    "conv_1x1": conv_bn,
    "conv_3x3": _bottleneck([(3, 3)]),
    "conv_3x1_1x3": _bottleneck([(1, 3), (3, 1)], width=3 / 8),
    "conv_7x1_1x7": _bottleneck([(1, 7), (7, 1)]),
    "dil_conv_3x3": _bottleneck([(3, 3)], dilation=2),
    "dil_conv_5x5": _bottleneck([(5, 5)], dilation=2),
}


def nasnet_op(name: str, C_in: int, C: int, stride: int, affine: bool) -> Op:
    if name not in NASNET_CONVENTION_OPS:
        raise GenotypeError(f"op {name!r} has no NASNet-convention form (ops: {', '.join(NASNET_CONVENTION_OPS)})")
    return NASNET_CONVENTION_OPS[name](C_in, C, stride, affine)


class FactorizedReduction(nn.Module):
    """Halves the size: 1x1 convs on the even pixel grid and on the grid shifted by one
    (zero-padded at the far edge), concatenated, then BN; no ReLU (callers add it)."""

    def __init__(self, C_in: int, C: int, affine: bool = True):
        super().__init__()
        self.conv_1 = nn.Conv2d(C_in, C // 2, 1, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C - C // 2, 1, bias=False)
        self.bn = bn(C, affine)

    def forward(self, x):
        shifted = nn.functional.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.bn(torch.cat([self.conv_1(x[:, :, ::2, ::2]), self.conv_2(shifted[:, :, ::2, ::2])], 1))
