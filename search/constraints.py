"""Size limits on the fixed network a candidate stands for (e.g. the 600M mult-add mobile budget).

The network is `build_network(genotype, C, layers, ...)` at the target size (which may differ from the
supernet's). Its parameters (without an auxiliary head) and mult-adds, counted as supernet.sizes counts
them, are summed from a SizeTable of its parts, so that a search can check thousands of candidates.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

from supernet.backbone import Stem, cell_plan, op_stride
from supernet.darts_convention import preprocess
from supernet.ops import OPS


def _cost(module: torch.nn.Module, shape: tuple) -> tuple[int, int]:
    """(parameters, mult-adds of one input of `shape`) of `module`, built on the meta device."""
    params = sum(p.numel() for p in module.parameters())
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module.eval()(torch.zeros(1, *shape, device="meta"))
    return params, counter.get_total_flops() // 2


class SizeTable:
    """Parameters and mult-adds of the DARTS-convention network of any genotype at one shape, summed from
    the costs of its parts (the stem, each cell's preprocessing and ops, the classifier), each part
    measured once on the meta device: a genotype costs a few lookups instead of building its network.
    Counted as supernet.sizes counts them, which the tests compare it with."""

    def __init__(self, C: int, layers: int, num_classes: int, image_size: int, in_channels: int = 3,
                 stem: str = "cifar", stem_multiplier: int = 3):
        with torch.device("meta"):
            stem_module = Stem(stem, in_channels, C, stem_multiplier)
            self.base = _cost(stem_module, (in_channels, image_size, image_size))
        self.plan = cell_plan(C, layers, stem_module.reduction_prev)
        self.stem_channels, self.num_classes = stem_module.channels, num_classes
        resolution, self.resolutions = image_size // (8 if stem == "imagenet" else 1), []
        for spec in self.plan:   # what each cell's ops read; a reduction cell's output is half of it
            self.resolutions.append(resolution)
            resolution //= 2 if spec.reduction else 1
        self._parts: dict = {}

    def _part(self, key: tuple, make, shape: tuple) -> tuple[int, int]:
        if key not in self._parts:
            with torch.device("meta"):
                self._parts[key] = _cost(make(), shape)
        return self._parts[key]

    def _preprocess(self, i: int, which: int, channels: int) -> tuple[int, int]:
        spec, r = self.plan[i], self.resolutions[i]
        older = which == 0 and spec.reduction_prev   # the older input, twice the size, halved
        side = 2 * r if older else r
        return self._part(("pre", i, which, channels), lambda: preprocess(channels, channels, spec, True)[which],
                          (channels, side, side))

    def _op(self, i: int, op: str, j: int) -> tuple[int, int]:
        spec, r = self.plan[i], self.resolutions[i]
        stride = op_stride(spec, j)
        r_in = r if j < 2 or not spec.reduction else r // 2
        return self._part(("op", i, op, stride), lambda: OPS[op](spec.C, stride, True), (spec.C, r_in, r_in))

    def size(self, genotype) -> dict:
        """{"params": ..., "macs": ...} of the network of `genotype` at this shape."""
        params, macs = self.base
        C_pp, C_p = self.stem_channels
        for i, spec in enumerate(self.plan):
            pairs, concat = genotype.cell(spec.reduction)
            parts = [self._preprocess(i, 0, C_pp), self._preprocess(i, 1, C_p), *(self._op(i, op, j) for op, j in pairs)]
            params += sum(p for p, _ in parts)
            macs += sum(m for _, m in parts)
            C_pp, C_p = C_p, len(concat) * spec.C
        return {"params": params + C_p * self.num_classes + self.num_classes, "macs": macs + C_p * self.num_classes}



@dataclass(frozen=True)
class Constraints:
    C: int
    layers: int
    num_classes: int
    image_size: int
    in_channels: int = 3
    max_params: int | None = None
    max_macs: int | None = None
    table: SizeTable = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        stem = "imagenet" if self.image_size > 64 else "cifar"
        object.__setattr__(self, "table", SizeTable(self.C, self.layers, self.num_classes, self.image_size,
                                                    self.in_channels, stem))

    def size(self, genotype) -> dict:
        """{"params": ..., "macs": ...} of the target network of `genotype`."""
        return self.table.size(genotype)

    def check(self, genotype) -> dict:
        """The size, and `rejected`: None, or which limit the network breaks."""
        size = self.size(genotype)
        rejected = None
        if self.max_params is not None and size["params"] > self.max_params:
            rejected = f"params {size['params']} > max_params {self.max_params}"
        elif self.max_macs is not None and size["macs"] > self.max_macs:
            rejected = f"macs {size['macs']} > max_macs {self.max_macs}"
        return {**size, "rejected": rejected}
