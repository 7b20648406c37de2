"""The synthetic task of the Evo-NAS paper, and a benchmark of the strategies on it.

Choose a_1..a_n from {1..n}; the reward
    r(a) = (n+1) / (a_1^2 + sum_k (a_{k+1} - a_k)^2 + (a_n - (n+1))^2)
is 1 exactly at a_k = k and below elsewhere. `SyntheticSpace(n)` has the space
protocol of supernet.space (decisions, encode, decode, sample, mutate), so every
strategy runs on it unchanged; its genotype is the tuple (a_1, ..., a_n).

    python -m search.synthetic --n 10 --trials 2000 --seeds 5 --json synthetic.json --png synthetic.png
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import dataclass

import numpy as np

from supernet.runtime.plots import curve_figure
from supernet.space import as_rng

from .strategy import create_strategy

logger = logging.getLogger(__name__)
AGENTS = ("random", "evolution", "rl", "evo_nas")


@dataclass(frozen=True)
class SyntheticDecision:
    index: int
    num_choices: int
    kind: str = "value"

    @property
    def name(self) -> str:
        return f"a{self.index + 1}"


@dataclass(frozen=True)
class SyntheticSpace:
    n: int

    @property
    def decisions(self) -> list[SyntheticDecision]:
        return [SyntheticDecision(k, self.n) for k in range(self.n)]

    def encode(self, genotype) -> list[int]:
        return [int(a) - 1 for a in genotype]

    def decode(self, seq) -> tuple[int, ...]:
        values = tuple(int(v) + 1 for v in seq)
        if len(values) != self.n or not all(1 <= a <= self.n for a in values):
            raise ValueError(f"a synthetic genotype is {self.n} values in 1..{self.n}, got {values}")
        return values

    def sample(self, rng) -> tuple[int, ...]:
        return self.decode(as_rng(rng).integers(self.n, size=self.n))

    def mutate(self, genotype, rng, kind: str | None = None) -> tuple[int, ...]:
        """Change exactly one value to another one."""
        rng = as_rng(rng)
        seq = self.encode(genotype)
        i = rng.integers(self.n)
        new = rng.integers(self.n - 1)
        seq[i] = new + (new >= seq[i])
        return self.decode(seq)


def reward(genotype) -> float:
    a = np.concatenate([[0], np.asarray(genotype, dtype=np.int64), [len(genotype) + 1]])
    return (len(genotype) + 1) / float(np.sum(np.diff(a) ** 2))


def run_agent(name: str, n: int, trials: int, seed: int, batch: int = 10, **options) -> np.ndarray:
    """Best-so-far reward after each of `trials` evaluations of one agent's run."""
    strategy = create_strategy(name, SyntheticSpace(n), seed=seed, **options)
    rewards = []
    while len(rewards) < trials:
        genotypes = strategy.ask(min(batch, trials - len(rewards)))
        told = [reward(g) for g in genotypes]
        strategy.tell(genotypes, told)
        rewards += told
    return np.maximum.accumulate(rewards)


def benchmark(n: int, trials: int, seeds: int, batch: int = 10, agents=AGENTS) -> dict:
    result = {"n": n, "trials": trials, "seeds": seeds, "batch": batch, "agents": {}}
    for name in agents:
        start = time.perf_counter()
        curves = np.stack([run_agent(name, n, trials, seed, batch) for seed in range(seeds)])
        seconds = time.perf_counter() - start
        result["agents"][name] = {
            "final_mean_best": float(curves[:, -1].mean()),
            "final_std_best": float(curves[:, -1].std()),
            "mean_best": curves.mean(0).round(5).tolist(),
            "std_best": curves.std(0).round(5).tolist(),
            "seconds": round(seconds, 2),
        }
        logger.info("n=%d %-9s final_mean_best %.4f +- %.4f (%.1f s)", n, name,
                    curves[:, -1].mean(), curves[:, -1].std(), seconds)
    return result


def plot(result: dict, path: str) -> None:
    steps = np.arange(1, result["trials"] + 1)
    with curve_figure(path, "trials", "best reward so far",
                      f"synthetic task, n={result['n']}, {result['seeds']} seeds") as ax:
        for name, stats in result["agents"].items():
            mean, std = np.array(stats["mean_best"]), np.array(stats["std_best"])
            ax.plot(steps, mean, label=f"{name} ({stats['final_mean_best']:.3f})")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.2)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m search.synthetic", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10, help="number of decisions (and of choices each)")
    parser.add_argument("--trials", type=int, default=2000, help="evaluations per run")
    parser.add_argument("--seeds", type=int, default=5, help="runs per agent")
    parser.add_argument("--batch", type=int, default=10, help="genotypes per ask")
    parser.add_argument("--agents", nargs="+", default=list(AGENTS), choices=AGENTS)
    parser.add_argument("--json", required=True, help="where to write the results")
    parser.add_argument("--png", help="where to write the best-so-far plot")
    args = parser.parse_args(argv)
    if args.n < 2 or args.trials < 1 or args.seeds < 1 or args.batch < 1:
        parser.error("--n must be at least 2, --trials, --seeds and --batch at least 1")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = benchmark(args.n, args.trials, args.seeds, args.batch, args.agents)
    with open(args.json, "w") as f:
        json.dump(result, f)
    if args.png:
        plot(result, args.png)


if __name__ == "__main__":
    main()
