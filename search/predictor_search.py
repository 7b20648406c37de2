"""Predictor-guided search (as BANANAS and NPENAS search): a search that learns from every score.

The first `initial` candidates are random. From then on each round refits the predictor
(search.predictor) to every score told so far, proposes a pool of `pool` candidates, half of them
mutants of the `parents` best scored genotypes (one to three decisions changed) and half fresh
random ones, drops those already scored or outside the size limits, ranks the rest by the
acquisition and asks the supernet to score only the best. The model's seed follows the round, so a
resumed search refits and proposes exactly what the uninterrupted one does.
"""
from __future__ import annotations

import time

import numpy as np

from .predictor import ACQUISITIONS, MODELS, Predictor, check_choice
from .strategy import Strategy, StrategyError


class PredictorSearch(Strategy):
    def __init__(self, space, seed: int = 0, initial: int = 20, pool: int = 2000, parents: int = 10,
                 acquisition: str = "ucb", kappa: float = 1.0, model: str = "gp", sizes=None, limits=None):
        super().__init__(space, seed)
        check_choice("acquisition", acquisition, ACQUISITIONS)
        check_choice("predictor model", model, MODELS)
        if initial < 2 or pool < 1 or parents < 1:
            raise StrategyError(f"predictor needs initial >= 2, pool >= 1 and parents >= 1, got {initial}, {pool} "
                                f"and {parents}")
        self.seed, self.initial, self.pool, self.parents = seed, initial, pool, parents
        self.acquisition, self.kappa, self.model = acquisition, kappa, model
        self.sizes, self.limits = sizes, limits
        self.told: list[tuple[tuple[int, ...], float]] = []
        self.ranked, self.ranking_seconds = 0, 0.0   # candidates the predictor ranked, and the time it took

    def _allowed(self, genotype, taken: set) -> bool:
        seq = self.encode(genotype)
        if seq in taken:
            return False
        taken.add(seq)
        return self.limits is None or self.limits.check(genotype)["rejected"] is None

    def _random(self, count: int, taken: set) -> list:
        out = []
        for _ in range(100 * count):
            if len(out) == count:
                break
            g = self.space.sample(self.rng)
            if self._allowed(g, taken):
                out.append(g)
        return out

    def _mutants(self, count: int, taken: set) -> list:
        best = sorted(self.told, key=lambda told: -told[1])[:self.parents]
        out = []
        for _ in range(10 * count):
            if len(out) == count:
                break
            g = self.space.decode(best[self.rng.integers(len(best))][0])
            for _ in range(1 + self.rng.integers(3)):
                g = self.space.mutate(g, self.rng)
            if self._allowed(g, taken):
                out.append(g)
        return out

    def predictor(self) -> Predictor:
        """The predictor fitted to every score told so far (its seed follows their count)."""
        return Predictor(self.space, self.model, self.seed * 100_003 + len(self.told), self.sizes).fit(
            [self.space.decode(seq) for seq, _ in self.told], [reward for _, reward in self.told])

    def ask(self, n: int) -> list:
        taken = {seq for seq, _ in self.told}
        if len(self.told) < self.initial:
            return _drawn(self._random(n, taken))
        start = time.perf_counter()
        predictor = self.predictor()
        pool = _drawn(self._mutants(self.pool // 2, taken) + self._random(self.pool - self.pool // 2, taken))
        value = predictor.acquisition(self.acquisition, pool, self.kappa)
        self.ranked += len(pool)
        self.ranking_seconds += time.perf_counter() - start
        return [pool[i] for i in np.argsort(-value, kind="stable")[:n]]

    def tell(self, genotypes, rewards) -> None:
        self.told += [(self.encode(g), float(r)) for g, r in zip(genotypes, rewards)]

    def report(self) -> dict:
        """What the search's summary shows of the predictor: its fit on every score, cross-validated."""
        fitted = self.predictor() if len(self.told) >= 2 else None
        return {"model": self.model, "acquisition": self.acquisition, "records": len(self.told),
                "cross_validated_tau": fitted.cross_validated_tau() if fitted else None,
                "ranked": self.ranked, "ranked_per_s": self.ranked / self.ranking_seconds if self.ranking_seconds else None}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "told": [[list(seq), r] for seq, r in self.told], "ranked": self.ranked,
                "ranking_seconds": self.ranking_seconds}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.told = [(tuple(seq), float(r)) for seq, r in state["told"]]
        self.ranked, self.ranking_seconds = state["ranked"], state["ranking_seconds"]


def _drawn(genotypes: list) -> list:
    """`genotypes`, unless the draws found none: then the size limits leave nothing new to propose."""
    if not genotypes:
        raise StrategyError("the predictor strategy drew no new cell within the size limits; loosen max_params "
                            "or max_macs")
    return genotypes
