"""Scores genotypes with the supernet's inherited weights, for a search.

A candidate is first checked against the size constraints of the fixed network
it stands for (see `search.constraints`); one that breaks them is rejected
unscored (reward 0). Otherwise its reward is its score (supernet.scoring: the
subnet's top-1 accuracy, or the mean probability of the true class, after a
brief fine-tuning and BN recalibration on the training batches) on the
held-out validation batches, never the test split; on a run of several supernets
(supernet.train's `runs`), the mean of its scores on each. Both sets of batches are
fixed once and held on the device, so every candidate is scored on the same
images. Repeated genotypes come from a cache. Under torchrun the candidates of
one call are shared out across ranks and the records gathered on every rank.
"""
from __future__ import annotations

import contextlib
import time

import torch.distributed as dist

from supernet.errors import UserError
from supernet.scoring import DEFAULT_SCORING, Scoring, score

from .constraints import Constraints


class Evaluator:
    """Scores candidates (see the module docstring) on `supernets` (a run's, load_supernets); `train`
    holds at least `scoring.train_batches`; `channels_last` where the batches were taken so."""

    def __init__(self, supernets: list, train, validation, constraints: Constraints | None = None,
                 autocast=contextlib.nullcontext, scoring: Scoring = DEFAULT_SCORING, channels_last: bool = False):
        if not validation:
            raise UserError("the search needs validation images; the supernet run has no validation split "
                             "(train it with val_fraction above 0)")
        self.supernets = supernets
        self.train, self.validation = train, validation
        self.constraints = constraints
        self.autocast, self.scoring, self.channels_last = autocast, scoring, channels_last
        self.cache: dict = {}

    def score(self, genotype) -> float:
        """The validation score of the subnet of `genotype` (supernet.scoring: accuracy unless told
        otherwise), its mean over the supernets."""
        return sum(score(net, genotype, self.train, self.validation, self.scoring, self.autocast, self.channels_last)
                   for net in self.supernets) / len(self.supernets)

    def record(self, genotype) -> dict:
        """{reward, score, rejected (reason or None), params, macs, seconds, cached} of one genotype."""
        start = time.perf_counter()
        rec = {"score": None, "rejected": None, "params": None, "macs": None}
        if self.constraints is not None:
            rec.update(self.constraints.check(genotype))
        if rec["rejected"] is None:
            rec["score"] = self.score(genotype)
        rec["reward"] = rec["score"] if rec["rejected"] is None else 0.0
        rec["seconds"] = round(time.perf_counter() - start, 4)
        return rec

    def evaluate(self, genotypes) -> list[dict]:
        """One record per genotype (in order); uncached ones are shared out across ranks."""
        todo = [i for i, g in enumerate(genotypes) if g not in self.cache and g not in genotypes[:i]]
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        mine = {i: self.record(genotypes[i]) for i in todo[rank::world]}
        if world > 1:
            gathered = [None] * world
            dist.all_gather_object(gathered, mine)
            mine = {i: rec for part in gathered for i, rec in part.items()}
        for i, rec in mine.items():
            self.cache[genotypes[i]] = rec
        return [{**self.cache[g], "cached": i not in mine} for i, g in enumerate(genotypes)]
