"""The fixed network of a genotype in the DARTS convention, for weight inheritance and retraining."""
from __future__ import annotations

import torch
from torch import nn

from .backbone import CellSpec, Stem, cell_plan, op_stride
from .genotype import Genotype, GenotypeError
from .network_base import FixedNetwork, dropped, level
from .ops import OPS, FactorizedReduce, ReLUConvBN, is_identity


def preprocess(C_pp: int, C_p: int, spec: CellSpec, affine: bool) -> tuple[nn.Module, nn.Module]:
    """The 1x1 convs that bring both cell inputs to C channels (the older one
    also halved when the previous cell reduced)."""
    pre0 = FactorizedReduce(C_pp, spec.C, affine) if spec.reduction_prev else ReLUConvBN(C_pp, spec.C, 1, 1, 0, affine)
    return pre0, ReLUConvBN(C_p, spec.C, 1, 1, 0, affine)


class Cell(nn.Module):
    def __init__(self, pairs, concat, C_pp: int, C_p: int, spec: CellSpec, affine: bool, ops: dict = OPS):
        super().__init__()
        if spec.reduction and min(concat) < 2:
            raise GenotypeError(f"a reduction cell cannot concatenate its inputs (larger than its output), "
                                f"got reduce_concat={list(concat)}")
        unknown = [op for op, _ in pairs if op not in ops]
        if unknown:
            raise GenotypeError(f"op {unknown[0]!r} is not a DARTS-convention op (ops: {', '.join(OPS)})")
        self.reduction = spec.reduction
        self.preprocess0, self.preprocess1 = preprocess(C_pp, C_p, spec, affine)
        self.ops = nn.ModuleList(ops[op](spec.C, op_stride(spec, j), affine) for op, j in pairs)
        self.inputs = [j for _, j in pairs]
        self.droppable = [not is_identity(op) for op in self.ops]
        self.concat = list(concat)

    def forward(self, s0, s1, drop_prob: float = 0.0):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        h = states[0]   # slot a's output, until slot b's is added to it
        for k, op in enumerate(self.ops):
            y = dropped(op(states[self.inputs[k]]), drop_prob, self.training, self.droppable[k])
            if k % 2 == 0:
                h = y
            else:
                states.append(h + y)
        return torch.cat([states[i] for i in self.concat], dim=1)


class DartsNetwork(FixedNetwork):
    """Cells, stem and chaining as the DARTS code builds them (drop-path at one rate in every cell);
    `ops` is the op set (a supernet's subnet takes the supernet's)."""
    imagenet_stem_levels = 1   # the feature maps of the ImageNet stem in feature_info: stem0 (/4)

    def __init__(self, genotype: Genotype, C: int, layers: int, num_classes: int, stem: str = "cifar",
                 auxiliary: bool = False, drop_path: float = 0.0, affine: bool = True, in_channels: int = 3,
                 stem_multiplier: int = 3, ops: dict = OPS):
        super().__init__(genotype, drop_path)
        self.stem = Stem(stem, in_channels, C, stem_multiplier)
        self.aux_index = 2 * layers // 3
        imagenet = stem == "imagenet"
        self._build(genotype, cell_plan(C, layers, self.stem.reduction_prev), self.stem.channels,
                    lambda *cell: Cell(*cell, affine, ops), num_classes, auxiliary,
                    [level(C, 4, "stem.stem0")] if imagenet else [], 8 if imagenet else 1)

    def _features(self, x, levels: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        s0, s1 = self.stem(x)
        if levels is not None and self.stem.stem1 is not None:
            levels.append(s0)
        aux: torch.Tensor | None = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path)
            if i == self.aux_index and self.aux_head is not None and self.training:
                aux = self.aux_head(s1)
            if levels is not None and i in self.level_cells:
                levels.append(s1)
        return s1, aux
