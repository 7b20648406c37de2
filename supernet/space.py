"""Search spaces: the op list, the number of blocks, and the decision sequence.

Every architecture is a fixed-length sequence of integer decisions: for each
cell type (normal, reduce) and each block b, `input_a`, `op_a`, `input_b`,
`op_b`. `input_*` of block b has b+2 choices (the two cell inputs, then the
earlier blocks). The cell output is fixed by the space's concat rule: "unused" (NASNet: every
state no block reads, the inputs of a reduction cell excepted) or "blocks"
(DARTS: every block).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UserError
from .genotype import Genotype, GenotypeError

CELL_TYPES = ("normal", "reduce")
SLOTS = ("a", "b")


@dataclass(frozen=True)
class Decision:
    cell: str        # "normal" or "reduce"
    block: int
    slot: str        # "a" or "b"
    kind: str        # "input" or "op"
    num_choices: int

    @property
    def name(self) -> str:
        return f"{self.cell}.{self.block}.{self.kind}_{self.slot}"


def as_rng(rng) -> np.random.Generator:
    """A numpy Generator from a Generator or an int seed."""
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def used_states(pairs) -> set[int]:
    return {j for _, j in pairs}


@dataclass(frozen=True)
class SearchSpace:
    name: str
    ops: tuple[str, ...]
    num_blocks: int
    concat: str      # "unused": the states no block reads; "blocks": every block

    @property
    def decisions(self) -> list[Decision]:
        out = []
        for cell in CELL_TYPES:
            for b in range(self.num_blocks):
                for slot in SLOTS:
                    out.append(Decision(cell, b, slot, "input", b + 2))
                    out.append(Decision(cell, b, slot, "op", len(self.ops)))
        return out

    def concat_states(self, reduction: bool) -> tuple[int, ...]:
        """Every state that a cell output of this space may concatenate: never
        the inputs of a reduction cell, which are larger than its outputs."""
        first = 2 if reduction or self.concat == "blocks" else 0
        return tuple(range(first, self.num_blocks + 2))

    def cell_concat(self, pairs, reduction: bool) -> tuple[int, ...]:
        """The states the cell output concatenates under this space's rule."""
        used = used_states(pairs) if self.concat == "unused" else set()
        return tuple(j for j in self.concat_states(reduction) if j not in used)

    def encode(self, genotype: Genotype) -> list[int]:
        """One integer per entry of `decisions`; the concat is not encoded (the rule gives it)."""
        if genotype.num_blocks != self.num_blocks or len(genotype.reduce) != len(genotype.normal):
            raise GenotypeError(f"space {self.name!r} has {self.num_blocks} blocks per cell, "
                                f"the genotype has {len(genotype.normal) // 2} and {len(genotype.reduce) // 2}")
        seq = []
        for cell in CELL_TYPES:
            for op, j in getattr(genotype, cell):
                if op not in self.ops:
                    raise GenotypeError(f"op {op!r} is not in space {self.name!r} (ops: {', '.join(self.ops)})")
                seq += [j, self.ops.index(op)]
        return seq

    def decode(self, seq) -> Genotype:
        decisions = self.decisions
        seq = [int(v) for v in seq]
        if len(seq) != len(decisions):
            raise GenotypeError(f"space {self.name!r} needs {len(decisions)} decisions, got {len(seq)}")
        for d, v in zip(decisions, seq):
            if not 0 <= v < d.num_choices:
                raise GenotypeError(f"decision {d.name} must be in 0..{d.num_choices - 1}, got {v}")
        half = len(seq) // 2
        cells = []
        for reduction, part in ((False, seq[:half]), (True, seq[half:])):
            pairs = tuple((self.ops[part[k + 1]], part[k]) for k in range(0, len(part), 2))
            cells += [pairs, self.cell_concat(pairs, reduction)]
        return Genotype(*cells)

    def sample(self, rng) -> Genotype:
        rng = as_rng(rng)
        return self.decode([rng.integers(d.num_choices) for d in self.decisions])

    def mutate(self, genotype: Genotype, rng, kind: str | None = None) -> Genotype:
        """Change exactly one decision to another value: an input (hidden-state
        mutation) or an op, as in regularized evolution; `kind` picks which,
        otherwise each is equally likely."""
        rng = as_rng(rng)
        kind = kind or ("input", "op")[rng.integers(2)]
        seq = self.encode(genotype)
        candidates = [i for i, d in enumerate(self.decisions) if d.kind == kind and d.num_choices > 1]
        i = candidates[rng.integers(len(candidates))]
        new = rng.integers(self.decisions[i].num_choices - 1)
        seq[i] = new + (new >= seq[i])
        return self.decode(seq)


NASNET_OPS = (
    "skip_connect", "conv_3x1_1x3", "conv_7x1_1x7", "dil_conv_3x3", "avg_pool_3x3",
    "max_pool_3x3", "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3",
    "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
)
DARTS_OPS = (
    "none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
    "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5",
)

SPACES = {
    "nasnet": SearchSpace("nasnet", NASNET_OPS, num_blocks=5, concat="unused"),
    "darts": SearchSpace("darts", DARTS_OPS, num_blocks=4, concat="blocks"),
}


def get_space(name: str) -> SearchSpace:
    if name not in SPACES:
        raise UserError(f"unknown search space {name!r}; choose one of {', '.join(SPACES)}")
    return SPACES[name]
