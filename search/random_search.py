"""Random search: uniform samples from the space; it learns nothing from rewards."""
from __future__ import annotations

from .strategy import Strategy


class RandomSearch(Strategy):
    def ask(self, n: int) -> list:
        return [self.space.sample(self.rng) for _ in range(n)]

    def tell(self, genotypes, rewards) -> None:
        pass
