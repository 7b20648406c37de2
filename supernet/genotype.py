"""The Genotype: a cell pair in the DARTS notation, with stable JSON and string forms.

A cell is a sequence of (op, input) pairs, two per block (slot a then slot b);
input 0 and 1 are the cell inputs h_{i-2} and h_{i-1}, input k >= 2 is block k-2.
`*_concat` lists the states that the cell output concatenates.
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

from .errors import UserError

Pairs = tuple[tuple[str, int], ...]


class GenotypeError(UserError):
    """A genotype that is malformed or does not fit a space."""


def _pairs(value, field: str) -> Pairs:
    try:
        pairs = tuple((str(op), int(j)) for op, j in value)
    except (TypeError, ValueError):
        raise GenotypeError(f"{field} must be a list of (op, input) pairs, got {value!r}") from None
    if not pairs or len(pairs) % 2:
        raise GenotypeError(f"{field} must hold two (op, input) pairs per block, got {len(pairs)} pairs")
    for k, (_, j) in enumerate(pairs):
        if not 0 <= j < k // 2 + 2:
            raise GenotypeError(f"{field}: block {k // 2} cannot take input {j} (choices are 0..{k // 2 + 1})")
    return pairs


def _concat(value, field: str, num_blocks: int) -> tuple[int, ...]:
    try:
        concat = tuple(int(j) for j in value)
    except (TypeError, ValueError):
        raise GenotypeError(f"{field} must be a list of state indices, got {value!r}") from None
    if not concat or any(not 0 <= j < num_blocks + 2 for j in concat) or len(set(concat)) != len(concat):
        raise GenotypeError(f"{field} must list distinct states in 0..{num_blocks + 1}, got {list(concat)}")
    return concat


@dataclass(frozen=True)
class Genotype:
    normal: Pairs
    normal_concat: tuple[int, ...]
    reduce: Pairs
    reduce_concat: tuple[int, ...]

    def __post_init__(self):
        for kind in ("normal", "reduce"):
            pairs = _pairs(getattr(self, kind), kind)
            object.__setattr__(self, kind, pairs)
            concat = _concat(getattr(self, f"{kind}_concat"), f"{kind}_concat", len(pairs) // 2)
            object.__setattr__(self, f"{kind}_concat", concat)

    @property
    def num_blocks(self) -> int:
        return len(self.normal) // 2

    def cell(self, reduction: bool) -> tuple[Pairs, tuple[int, ...]]:
        return (self.reduce, self.reduce_concat) if reduction else (self.normal, self.normal_concat)

    def to_dict(self) -> dict:
        return {
            "normal": [list(p) for p in self.normal],
            "normal_concat": list(self.normal_concat),
            "reduce": [list(p) for p in self.reduce],
            "reduce_concat": list(self.reduce_concat),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> Genotype:
        keys = {"normal", "normal_concat", "reduce", "reduce_concat"}
        if not isinstance(d, dict) or set(d) != keys:
            got = sorted(d) if isinstance(d, dict) else type(d).__name__
            raise GenotypeError(f"a genotype needs exactly the keys {sorted(keys)}, got {got}")
        return cls(d["normal"], d["normal_concat"], d["reduce"], d["reduce_concat"])

    @classmethod
    def from_json(cls, s: str) -> Genotype:
        try:
            d = json.loads(s)
        except json.JSONDecodeError as e:
            raise GenotypeError(f"not a genotype JSON: {e}") from None
        return cls.from_dict(d)

    def __str__(self) -> str:
        return (f"Genotype(normal={list(self.normal)}, normal_concat={list(self.normal_concat)}, "
                f"reduce={list(self.reduce)}, reduce_concat={list(self.reduce_concat)})")

    @classmethod
    def parse(cls, s: str) -> Genotype:
        """Read the JSON form or the DARTS notation `Genotype(normal=[...], normal_concat=range(2, 6), ...)`."""
        s = s.strip()
        if s.startswith("{"):
            return cls.from_json(s)
        m = re.fullmatch(r"Genotype\((.*)\)", s, flags=re.DOTALL)
        if not m:
            raise GenotypeError(f"cannot parse genotype {s[:80]!r}: expected JSON or 'Genotype(normal=[...], ...)'")
        body = re.sub(r"range\(\s*(\d+)\s*,\s*(\d+)\s*\)",
                      lambda r: str(list(range(int(r[1]), int(r[2])))), m[1])
        try:
            call = ast.parse(f"f({body})", mode="eval").body
            fields = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        except (SyntaxError, ValueError) as e:
            raise GenotypeError(f"cannot parse genotype {s[:80]!r}: {e}") from None
        return cls.from_dict(fields)
