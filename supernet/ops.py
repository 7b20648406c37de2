"""Candidate operations, each built as `OPS[name](C, stride, affine)`.

ReLU-conv-BN ordering as in NASNet and DARTS. Every op maps C channels to C
channels and an H x W input to ceil(H / stride) x ceil(W / stride), for odd
and even sizes alike.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _sliced(weight: torch.Tensor, in_channels: torch.Tensor | None) -> torch.Tensor:
    """The weight columns of the input channels present (a supernet feeds a
    concatenation of a subset of states; a fixed network feeds them all)."""
    return weight if in_channels is None else weight.index_select(1, in_channels)


class ReLUConvBN(nn.Module):
    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super().__init__()
        # a strided 1x1 conv runs as the same conv of every stride-th pixel: the same figures, off the CPU
        # channels-last kernel of strided 1x1 convs, whose backward corrupts the heap on larger images
        # (docs/memory.md)
        self.step = stride if kernel_size == 1 else 1
        self.conv = nn.Conv2d(C_in, C_out, kernel_size, stride // self.step, padding, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x, in_channels: torch.Tensor | None = None):
        c = self.conv
        x = F.relu(x)[:, :, ::self.step, ::self.step]
        return self.bn(F.conv2d(x, _sliced(c.weight, in_channels), None, c.stride, c.padding))


class FactorizedReduce(nn.Module):
    """Halves the size with two 1x1 stride-2 convs on pixel grids offset by one, each run as the 1x1 conv
    of every other pixel (as ReLUConvBN's, docs/memory.md)."""

    def __init__(self, C_in, C_out, affine=True):
        super().__init__()
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out - C_out // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x, in_channels: torch.Tensor | None = None):
        x = F.relu(x)
        # shift by one pixel, zero-padding the far edge so odd sizes give ceil(H/2) on both paths
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        a = F.conv2d(x[:, :, ::2, ::2], _sliced(self.conv_1.weight, in_channels))
        b = F.conv2d(shifted[:, :, ::2, ::2], _sliced(self.conv_2.weight, in_channels))
        return self.bn(torch.cat([a, b], dim=1))


class SepConv(nn.Sequential):
    """Depthwise-separable conv applied twice (the first at the op's stride)."""

    def __init__(self, C, kernel_size, stride, affine=True):
        p = kernel_size // 2
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(C, C, kernel_size, stride, p, groups=C, bias=False),
            nn.Conv2d(C, C, 1, bias=False),
            nn.BatchNorm2d(C, affine=affine),
            nn.ReLU(),
            nn.Conv2d(C, C, kernel_size, 1, p, groups=C, bias=False),
            nn.Conv2d(C, C, 1, bias=False),
            nn.BatchNorm2d(C, affine=affine),
        )


class DilConv(nn.Sequential):
    """Dilated (rate 2) depthwise-separable conv."""

    def __init__(self, C, kernel_size, stride, affine=True):
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(C, C, kernel_size, stride, kernel_size - 1, dilation=2, groups=C, bias=False),
            nn.Conv2d(C, C, 1, bias=False),
            nn.BatchNorm2d(C, affine=affine),
        )


class FactorizedConv(nn.Sequential):
    """A 1xk conv then a kx1 conv (NASNet's '1x7 then 7x1')."""

    def __init__(self, C, k, stride, affine=True):
        super().__init__(
            nn.ReLU(),
            nn.Conv2d(C, C, (1, k), (1, stride), (0, k // 2), bias=False),
            nn.Conv2d(C, C, (k, 1), (stride, 1), (k // 2, 0), bias=False),
            nn.BatchNorm2d(C, affine=affine),
        )


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


def _identity(C, stride, affine):
    return nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine)


def _max_pool(k):
    return lambda C, stride, affine: nn.MaxPool2d(k, stride, k // 2)


OPS = {
    "none": lambda C, stride, affine: Zero(stride),
    "skip_connect": _identity,
    "avg_pool_3x3": lambda C, stride, affine: nn.AvgPool2d(3, stride, 1, count_include_pad=False),
    "max_pool_3x3": _max_pool(3),
    "max_pool_5x5": _max_pool(5),
    "max_pool_7x7": _max_pool(7),
    "conv_1x1": lambda C, stride, affine: ReLUConvBN(C, C, 1, stride, 0, affine),
    "conv_3x3": lambda C, stride, affine: ReLUConvBN(C, C, 3, stride, 1, affine),
    "conv_3x1_1x3": lambda C, stride, affine: FactorizedConv(C, 3, stride, affine),
    "conv_7x1_1x7": lambda C, stride, affine: FactorizedConv(C, 7, stride, affine),
    "sep_conv_3x3": lambda C, stride, affine: SepConv(C, 3, stride, affine),
    "sep_conv_5x5": lambda C, stride, affine: SepConv(C, 5, stride, affine),
    "sep_conv_7x7": lambda C, stride, affine: SepConv(C, 7, stride, affine),
    "dil_conv_3x3": lambda C, stride, affine: DilConv(C, 3, stride, affine),
    "dil_conv_5x5": lambda C, stride, affine: DilConv(C, 5, stride, affine),
}


def with_output_bn(ops: dict) -> dict:
    """`ops` with a BN (no affine) after every op that ends without one (pools, the identity): the
    supernet's form when `op_bn` is set, as the DARTS search model normalises its pools. Whatever
    the path, every candidate's output then has the same statistics."""
    def normalized(make):
        def build(C, stride, affine):
            op = make(C, stride, affine)
            if isinstance(op, Zero) or any(isinstance(m, nn.BatchNorm2d) for m in op.modules()):
                return op
            return nn.Sequential(op, nn.BatchNorm2d(C, affine=False))
        return build
    return {name: normalized(make) for name, make in ops.items()}


def is_identity(op: nn.Module) -> bool:
    """Drop-path skips identities, as in the DARTS protocol."""
    return isinstance(op, nn.Identity)
