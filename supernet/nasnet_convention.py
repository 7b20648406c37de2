"""The fixed network in the NASNet convention: cells, stems and chaining as TF-slim's NASNet /
PNASNet and tensorflow/tpu's AmoebaNet build them, timm's `nasnetalarge` / `pnasnet5large`
being the PyTorch references.

- A cell brings h_{i-1} to C channels with ReLU-1x1-BN; h_{i-2} is factorized-reduced (ReLU
  first) when larger, 1x1-projected when wider, and taken raw when there is none (the first
  cell after the stem conv); ops read states of any width (nasnet_ops). The output concatenates
  the genotype's concat states, a state of another size or width passing a factorized reduction.
- ImageNet stem: conv 3x3/2 'VALID' (32 x stem_multiplier), BN, then two reduction cells of
  C/4 and C/2 channels. CIFAR stem: conv 3x3 (C x stem_multiplier), BN.
- `layers` counts the cells after the stem, reductions at layers//3 and 2*layers//3: N normal
  cells per stage give layers = 3N + 2 (NASNet-A), while PNASNet-5 counts its reductions among
  its 3N cells. NASNet-A Large feeds the cell after a reduction the state two before it
  (`skip_reduction_input`, TF's skip_reduction_layer_input).
- Drop-path keeps identities, and its rate grows with depth: cell i of n drops `drop_path * (i+1)/n`.
- Features end with a ReLU; the auxiliary head reads the cell before the second reduction.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import CellSpec, cell_plan, op_stride
from .errors import UserError
from .genotype import Genotype
from .nasnet_ops import FactorizedReduction, bn, conv_bn, nasnet_op
from .network_base import FixedNetwork, dropped, level


def _input_adjust(C_pp: int | None, C: int, larger: bool, affine: bool) -> nn.Module | None:
    """Brings h_{i-2} to the cell's size and width (None: there is no h_{i-2}, use h_{i-1} raw)."""
    if C_pp is None:
        return None
    if larger:
        return nn.Sequential(nn.ReLU(), FactorizedReduction(C_pp, C, affine))
    return nn.Sequential(nn.ReLU(), conv_bn(C_pp, C, 1, affine)) if C_pp != C else nn.Identity()


def _concat_adjust(C_in: int, C: int, larger: bool, affine: bool) -> nn.Module:
    if larger:
        return FactorizedReduction(C_in, C, affine)
    return nn.Sequential(nn.Conv2d(C_in, C, 1, bias=False), bn(C, affine)) if C_in != C else nn.Identity()


class NasnetCell(nn.Module):
    def __init__(self, pairs, concat, C_pp: int | None, C_p: int, spec: CellSpec, affine: bool = True):
        super().__init__()
        self.reduction = spec.reduction
        self.preprocess0 = _input_adjust(C_pp, spec.C, spec.reduction_prev, affine)
        self.preprocess1 = nn.Sequential(nn.ReLU(), conv_bn(C_p, spec.C, 1, affine))
        widths = [C_p if C_pp is None else spec.C, spec.C] + [spec.C] * (len(pairs) // 2)
        self.ops = nn.ModuleList(nasnet_op(op, widths[j], spec.C, op_stride(spec, j), affine) for op, j in pairs)
        self.inputs = [j for _, j in pairs]
        self.droppable = [op != "skip_connect" for op, _ in pairs]
        self.concat = list(concat)
        self.concat_adjust = nn.ModuleList(
            _concat_adjust(widths[j], spec.C, spec.reduction and j < 2, affine) for j in self.concat)

    def forward(self, s0: torch.Tensor | None, s1: torch.Tensor, drop_prob: float = 0.0):
        first = s1
        if self.preprocess0 is not None:
            assert s0 is not None
            first = self.preprocess0(s0)
        states = [first, self.preprocess1(s1)]
        relu: dict[int, torch.Tensor] = {}  # each state's ReLU, computed once for all the ops that start with one
        h = first   # slot a's output, until slot b's is added to it
        for k, op in enumerate(self.ops):
            j = self.inputs[k]
            if op.relu_input and j not in relu:
                relu[j] = F.relu(states[j])
            y = dropped(op(relu[j] if op.relu_input else states[j]), drop_prob, self.training, self.droppable[k])
            if k % 2 == 0:
                h = y
            else:
                states.append(h + y)
        return torch.cat([adjust(states[self.concat[i]]) for i, adjust in enumerate(self.concat_adjust)], dim=1)


class NasnetStem(nn.Module):
    """Returns the first cell's inputs (s0, s1); s0 is None after the CIFAR stem."""

    def __init__(self, kind: str, genotype: Genotype, in_channels: int, C: int, stem_multiplier: int, affine: bool):
        super().__init__()
        if kind not in ("cifar", "imagenet"):
            raise UserError(f"unknown stem {kind!r}; choose 'cifar' or 'imagenet'")
        width = int(32 * stem_multiplier) if kind == "imagenet" else C * stem_multiplier
        stride, padding = (2, 0) if kind == "imagenet" else (1, 1)
        self.conv0 = nn.Sequential(nn.Conv2d(in_channels, width, 3, stride, padding, bias=False), bn(width, affine))
        self.cells = nn.ModuleList()
        C_pp, C_p, reduction_prev = None, width, False
        # the feature levels of the ImageNet stem: its conv (/2) and first cell (/4); the second (/8)
        # has the resolution of the first stage
        self.feature_info = [level(width, 2, "stem.conv0")] if kind == "imagenet" else []
        if kind == "imagenet":
            pairs, concat = genotype.cell(True)
            for C_cell in (C // 4, C // 2):
                spec = CellSpec(C_cell, True, reduction_prev)
                self.cells.append(NasnetCell(pairs, concat, C_pp, C_p, spec, affine))
                C_pp, C_p, reduction_prev = C_p, len(concat) * C_cell, True
            self.feature_info.append(level(len(concat) * (C // 4), 4, "stem.cells.0"))
        self.channels, self.reduction_prev = (C_pp, C_p), reduction_prev

    def forward(self, x, drop_probs: list[float], levels: list[torch.Tensor] | None = None):
        s0: torch.Tensor | None = None
        s1 = self.conv0(x)
        if levels is not None and len(self.cells) > 0:
            levels.append(s1)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, drop_probs[i])
            if levels is not None and i == 0:
                levels.append(s1)
        return s0, s1


class NasnetNetwork(FixedNetwork):
    """Cells, stems and chaining as the NASNet-A / PNASNet-5 reference code builds them (see the module docstring)."""
    imagenet_stem_levels = 2   # the feature maps of the ImageNet stem in feature_info: conv0 (/2), first cell (/4)

    def __init__(self, genotype: Genotype, C: int, layers: int, num_classes: int, stem: str = "cifar",
                 auxiliary: bool = False, drop_path: float = 0.0, affine: bool = True, in_channels: int = 3,
                 stem_multiplier: int = 3, skip_reduction_input: bool = False):
        super().__init__(genotype, drop_path)
        self.skip_reduction_input = skip_reduction_input
        self.stem = NasnetStem(stem, genotype, in_channels, C, stem_multiplier, affine)
        self.aux_index = 2 * layers // 3 - 1
        self._build(genotype, cell_plan(C, layers, self.stem.reduction_prev), self.stem.channels,
                    lambda *cell: NasnetCell(*cell, affine), num_classes, auxiliary, self.stem.feature_info,
                    8 if stem == "imagenet" else 1, keeps_older=lambda spec: spec.reduction and skip_reduction_input)

    def _drop_probs(self) -> list[float]:
        n = len(self.stem.cells) + len(self.cells)
        return [self.drop_path * (i + 1) / n for i in range(n)]

    def _features(self, x, levels: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        probs = self._drop_probs()
        stem_cells = len(self.stem.cells)
        s0, s1 = self.stem(x, probs[:stem_cells], levels)
        aux: torch.Tensor | None = None
        for i, cell in enumerate(self.cells):
            out = cell(s0, s1, probs[stem_cells + i])
            s0, s1 = (s0 if cell.reduction and self.skip_reduction_input else s1), out
            if i == self.aux_index and self.aux_head is not None and self.training:
                aux = self.aux_head(s1)
            if levels is not None and i in self.level_cells:
                levels.append(F.relu(s1) if i + 1 == len(self.cells) else s1)
        return F.relu(s1), aux
