"""The N@F rule of NASNet: N normal cells per stage, F filters in the penultimate layer.

A network of first-stage width C has 4C channels per state in its last stage (two
reductions), so its penultimate layer (the last cell's concatenation) has
F = 4 * C * len(normal_concat) filters: NASNet-A 6@4032 is C = 168, DARTS' 14 cells of
48 channels are 4@768. Three stages of N normal cells and two reduction cells make
3N + 2 cells; PNASNet-5 counts its reductions among its 3N cells (the stages of its
reference network hold N, N-1 and N-1 normal cells).

`scale` picks the widest network within a mult-add or parameter budget at a fixed N (layers).
"""
from __future__ import annotations

import re
from dataclasses import replace

import numpy as np

from supernet.errors import UserError
from supernet.genotype import Genotype

from .sizes import measure
from .spec import NetSpec

REDUCTIONS_AMONG_N = {"pnasnet_5"}   # zoo cells whose reference networks count reductions in N
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def layers_for(N: int, reductions_among_n: bool = False) -> int:
    if N < 1:
        raise UserError(f"N must be at least 1, got {N}")
    return 3 * N if reductions_among_n else 3 * N + 2


def width_for(genotype: Genotype, F: int) -> int:
    """The first-stage width C of penultimate filters F."""
    per_C = 4 * len(genotype.normal_concat)
    if F < per_C or F % per_C:
        raise UserError(f"F={F} is not a multiple of {per_C} (4 x the {len(genotype.normal_concat)} "
                         f"states the normal cell concatenates)")
    return F // per_C


def filters_of(genotype: Genotype, C: int) -> int:
    return 4 * len(genotype.normal_concat) * C


def parse_amount(text: str) -> int:
    """'600M' -> 600_000_000; also k/K, G, plain and scientific numbers."""
    m = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([kKmMgG]?)\s*", str(text))
    try:
        value = float(m[1]) * _SUFFIX[m[2].lower()] if m else None
    except ValueError:
        value = None
    if value is None or value <= 0:
        raise UserError(f"cannot read the budget {text!r}; write e.g. 600M, 5.3M or 2e9")
    return int(value)


MIN_C, MAX_C = 4, 4096     # C/4 channels in the first NASNet stem cell need C >= 4


def scale(spec: NetSpec, budget: int, metric: str = "macs") -> tuple[NetSpec, dict]:
    """The widest `spec` (largest C, same layers) whose `metric` ("macs" or "params") fits
    `budget`, and its sizes.

    Sizes are nearly quadratic in C (every conv's width is linear in it), so three small
    networks predict the answer; a search outward from the prediction, and a bisection of
    the bracket it finds, make it exact (sizes grow with C)."""
    if metric not in ("macs", "params"):
        raise ValueError(f"metric must be 'macs' or 'params', got {metric!r}")
    cache = {}

    def size(C: int) -> int:
        if C not in cache:
            cache[C] = measure(replace(spec, C=C))
        return cache[C][metric]

    if size(MIN_C) > budget:
        raise UserError(f"no width fits: even C={MIN_C} has {size(MIN_C):,} {metric} > {budget:,}")
    points = [MIN_C, 2 * MIN_C, 4 * MIN_C]
    a, b, c = np.polyfit(points, [size(C) for C in points], 2)
    roots = [r.real for r in np.roots([a, b, c - budget]) if abs(r.imag) < 1e-9 and r.real > 0]
    guess = int(min(max(roots, default=MIN_C), MAX_C))
    lo, hi, step = MIN_C, MAX_C + 1, 1     # size(lo) fits; size(hi) does not (MAX_C + 1: never measured)
    if size(max(guess, MIN_C)) <= budget:
        lo = max(guess, MIN_C)
        while lo + step <= MAX_C and size(lo + step) <= budget:
            lo, step = lo + step, step * 2
        hi = min(lo + step, MAX_C + 1)
    else:
        hi = guess
        while hi - step > MIN_C and size(hi - step) > budget:
            hi, step = hi - step, step * 2
        lo = max(hi - step, MIN_C)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if size(mid) <= budget else (lo, mid)
    return replace(spec, C=lo), cache[lo]
