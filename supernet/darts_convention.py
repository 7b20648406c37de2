"""The fixed network of a genotype in the DARTS convention, for weight inheritance and retraining."""
from __future__ import annotations

import torch
from timm.layers import drop_path
from torch import nn

from .genotype import Genotype, GenotypeError
from .layout import CellSpec, Stem, cell_plan, op_stride
from .network_base import FixedNetwork
from .ops import OPS, FactorizedReduce, ReLUConvBN, is_identity


def preprocess(C_pp: int, C_p: int, spec: CellSpec, affine: bool) -> tuple[nn.Module, nn.Module]:
    """The 1x1 convs that bring both cell inputs to C channels (the older one
    also halved when the previous cell reduced)."""
    pre0 = FactorizedReduce(C_pp, spec.C, affine) if spec.reduction_prev else ReLUConvBN(C_pp, spec.C, 1, 1, 0, affine)
    return pre0, ReLUConvBN(C_p, spec.C, 1, 1, 0, affine)


class Cell(nn.Module):
    def __init__(self, pairs, concat, C_pp: int, C_p: int, spec: CellSpec, affine: bool):
        super().__init__()
        if spec.reduction and min(concat) < 2:
            raise GenotypeError(f"a reduction cell cannot concatenate its inputs (larger than its output), "
                                f"got reduce_concat={list(concat)}")
        unknown = [op for op, _ in pairs if op not in OPS]
        if unknown:
            raise GenotypeError(f"op {unknown[0]!r} is not a DARTS-convention op (ops: {', '.join(OPS)})")
        self.reduction = spec.reduction
        self.preprocess0, self.preprocess1 = preprocess(C_pp, C_p, spec, affine)
        self.ops = nn.ModuleList(OPS[op](spec.C, op_stride(spec, j), affine) for op, j in pairs)
        self.inputs = [j for _, j in pairs]
        self.concat = list(concat)

    def forward(self, s0, s1, drop_prob: float = 0.0):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for b in range(len(self.ops) // 2):
            h = 0
            for k in (2 * b, 2 * b + 1):
                y = self.ops[k](states[self.inputs[k]])
                if drop_prob > 0 and self.training and not is_identity(self.ops[k]):
                    y = drop_path(y, drop_prob, self.training)
                h = h + y
            states.append(h)
        return torch.cat([states[i] for i in self.concat], dim=1)


class DartsNetwork(FixedNetwork):
    """Cells, stem and chaining as the DARTS code builds them (drop-path at one rate in every cell)."""

    def __init__(self, genotype: Genotype, C: int, layers: int, num_classes: int, stem: str = "cifar",
                 auxiliary: bool = False, drop_path: float = 0.0, affine: bool = True, in_channels: int = 3,
                 stem_multiplier: int = 3):
        super().__init__(genotype, drop_path)
        self.stem = Stem(stem, in_channels, C, stem_multiplier)
        C_pp, C_p = self.stem.channels
        self.cells = nn.ModuleList()
        self.aux_index = 2 * layers // 3
        for i, spec in enumerate(cell_plan(C, layers, self.stem.reduction_prev)):
            pairs, concat = genotype.cell(spec.reduction)
            self.cells.append(Cell(pairs, concat, C_pp, C_p, spec, affine))
            C_pp, C_p = C_p, len(concat) * spec.C
            if i == self.aux_index:
                C_aux = C_p
        self._build_head(C_p, C_aux, num_classes, auxiliary)

    def forward_features(self, x):
        s0, s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path)
            if i == self.aux_index and self.aux_head is not None and self.training:
                aux = self.aux_head(s1)
        return s1, aux
