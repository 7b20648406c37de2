"""Regularized (aging) evolution, Real et al. 2019.

The first `population_size` proposals are random; after that each child is the
best of `sample_size` members drawn from the population, mutated in exactly one
decision (`space.mutate`). Every told child joins the population and the
oldest member dies, whatever its reward.
"""
from __future__ import annotations

from collections import deque

from .strategy import Strategy, StrategyError, tournament


class RegularizedEvolution(Strategy):
    def __init__(self, space, seed: int = 0, population_size: int = 100, sample_size: int = 25):
        super().__init__(space, seed)
        if not 1 <= sample_size <= population_size:
            raise StrategyError(f"evolution needs 1 <= sample_size <= population_size, "
                             f"got {sample_size} and {population_size}")
        self.population_size = population_size
        self.sample_size = sample_size
        self.population: deque[tuple[tuple[int, ...], float]] = deque(maxlen=population_size)

    def ask(self, n: int) -> list:
        out = []
        for i in range(n):
            if len(self.population) + i < self.population_size:
                out.append(self.space.sample(self.rng))
            else:
                parent, _ = tournament(self.population, self.sample_size, self.rng)
                out.append(self.space.mutate(self.space.decode(parent), self.rng))
        return out

    def tell(self, genotypes, rewards) -> None:
        for g, r in zip(genotypes, rewards):
            self.population.append((self.encode(g), float(r)))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "population": [[list(s), r] for s, r in self.population]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.population.clear()
        self.population.extend((tuple(s), float(r)) for s, r in state["population"])
