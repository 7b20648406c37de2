"""The network around the cells, shared by the supernet and the fixed networks: the stems, the plan of
cells (where the reductions fall, how wide each cell is) and the auxiliary head."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .errors import UserError


@dataclass(frozen=True)
class CellSpec:
    C: int             # channels of each state inside the cell
    reduction: bool
    reduction_prev: bool


def op_stride(spec: CellSpec, input_index: int) -> int:
    """Reduction cells halve the size where an op reads a cell input."""
    return 2 if spec.reduction and input_index < 2 else 1


def cell_plan(C: int, layers: int, reduction_prev: bool = False) -> list[CellSpec]:
    """DARTS layout: reductions at 1/3 and 2/3 of the depth, channels doubled at each."""
    plan = []
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        C = C * 2 if reduction else C
        plan.append(CellSpec(C, reduction, reduction_prev))
        reduction_prev = reduction
    return plan


class Stem(nn.Module):
    """Returns the two inputs of the first cell, (s0, s1).

    cifar: conv 3x3 (stem_multiplier * C), BN; both inputs are its output.
    imagenet: conv3x3/2 (C/2), BN, ReLU, conv3x3/2 (C), BN, then ReLU, conv3x3/2 (C), BN
    (stride 8 in all; the first cell sees a reduced previous input).
    """

    def __init__(self, kind: str, in_channels: int, C: int, stem_multiplier: int = 3):
        super().__init__()
        if kind not in ("cifar", "imagenet"):
            raise UserError(f"unknown stem {kind!r}; choose 'cifar' or 'imagenet'")
        if kind == "cifar":
            c = stem_multiplier * C
            self.stem0 = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
            self.stem1 = None
            self.channels, self.reduction_prev = (c, c), False
        else:
            self.stem0 = nn.Sequential(
                nn.Conv2d(in_channels, C // 2, 3, 2, 1, bias=False), nn.BatchNorm2d(C // 2), nn.ReLU(),
                nn.Conv2d(C // 2, C, 3, 2, 1, bias=False), nn.BatchNorm2d(C))
            self.stem1 = nn.Sequential(nn.ReLU(), nn.Conv2d(C, C, 3, 2, 1, bias=False), nn.BatchNorm2d(C))
            self.channels, self.reduction_prev = (C, C), True

    def forward(self, x):
        s0 = self.stem0(x)
        return (s0, s0) if self.stem1 is None else (s0, self.stem1(s0))


class AuxiliaryHead(nn.Module):
    """The DARTS auxiliary classifier (pool, 1x1 conv 128, 2x2 conv 768, linear),
    pooling adaptively to 2x2 so that it fits any input size."""

    def __init__(self, C_in: int, num_classes: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(), nn.AdaptiveAvgPool2d(2),
            nn.Conv2d(C_in, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(), nn.Flatten())
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))
