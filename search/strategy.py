"""The ask/tell protocol shared by every discrete search strategy, and the registry.

A strategy works over any space object with `.decisions` (each with `.kind`
and `.num_choices`), `.encode(g) -> list[int]`, `.decode(seq)`, `.sample(rng)`
and `.mutate(g, rng)`. Internally it keeps decision sequences (tuples of ints),
so its `state_dict()` holds only tensors, numbers, strings, lists and dicts
(loadable with `torch.load(weights_only=True)`), RNG states included: a search
resumed from it proposes exactly what the uninterrupted one proposes.
"""
from __future__ import annotations

import importlib
import inspect

import numpy as np

from supernet.errors import UserError

# name -> "module:Class"; resolved lazily so listing names imports no torch code.
STRATEGIES = {
    "random": "search.random_search:RandomSearch",
    "evolution": "search.evolution:RegularizedEvolution",
    "rl": "search.rl:Reinforce",
    "evo_nas": "search.evo_nas:EvoNAS",
    "predictor": "search.predictor_search:PredictorSearch",
}
RELAXED = ("gdas", "darts", "sparsemax", "entmax")   # the relaxations that search.bilevel runs
# what a search gives the strategies that take it, rather than the user: the sizes of its networks
# (search.constraints.SizeTable at the supernet's shape) and its size limits (search.constraints.Constraints)
CONTEXT = ("sizes", "limits")


class StrategyError(UserError):
    """An unknown strategy name or option."""


class Strategy:
    """Base class: a seeded numpy Generator, the space, and the RNG part of the state."""

    def __init__(self, space, seed: int = 0):
        self.space = space
        self.rng = np.random.default_rng(seed)

    def ask(self, n: int) -> list:
        """`n` genotypes to evaluate next."""
        raise NotImplementedError

    def tell(self, genotypes, rewards) -> None:
        """Rewards (higher is better) of genotypes, usually those of the last `ask`."""
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]

    def encode(self, genotype) -> tuple[int, ...]:
        return tuple(int(v) for v in self.space.encode(genotype))

    def report(self) -> dict | None:
        """What the search's summary shows of the strategy beyond its candidates (None: nothing)."""
        return None


def tournament(population, sample_size: int, rng: np.random.Generator):
    """The best (highest reward) of `sample_size` members drawn without replacement."""
    idx = rng.choice(len(population), size=min(sample_size, len(population)), replace=False)
    return max((population[i] for i in idx), key=lambda member: member[1])


def names() -> list[str]:
    """Every strategy's name: the discrete ones, then the relaxed ones."""
    return [*STRATEGIES, *RELAXED]


def strategy_class(name: str) -> type[Strategy]:
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    module, cls = STRATEGIES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def check_options(name: str, options: dict) -> None:
    """Refuse, in one line, an unknown strategy or an option it does not take: a discrete strategy's
    options are its constructor's keywords, a relaxed one's search.bilevel.RelaxedOptions."""
    if name in RELAXED:
        from .bilevel import relaxed_options
        relaxed_options(options)
        return
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; choose one of {', '.join(names())}")
    allowed = set(inspect.signature(strategy_class(name).__init__).parameters) - {"self", "space", "seed", *CONTEXT}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise StrategyError(f"strategy {name!r} has no option {unknown[0]!r}; "
                            f"its options are {', '.join(sorted(allowed)) or 'none'}")


def create_strategy(name: str, space, seed: int = 0, context: dict | None = None, **options) -> Strategy:
    """A discrete strategy by registry name; `options` are checked against its constructor, and it gets
    the entries of `context` (CONTEXT) that it takes."""
    check_options(name, options)
    cls = strategy_class(name)
    taken = {key: value for key, value in (context or {}).items() if key in inspect.signature(cls.__init__).parameters}
    return cls(space, seed=seed, **taken, **options)
