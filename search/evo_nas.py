"""Evo-NAS (Maziarz et al. 2018): aging evolution whose mutations an RNN proposes.

A child's parent is the best of `sample_size` members of the population. The
child copies the parent's decisions except for one decision chosen uniformly
and, independently, each other decision with probability `resample_prob`;
those take the controller's sample at that step among the values other than
the parent's, the controller being conditioned on the child's decisions so far.
Until the population is full the controller samples whole sequences. A child
that repeats an evaluated sequence is drawn again, parent included (up to
`max_redraws` times).

The controller is trained by priority-queue training (Abolafia et al. 2018):
after each `tell`, `pqt_steps` Adam steps maximise the log-likelihood of the
`queue_size` best distinct sequences seen so far plus `entropy_weight` times
the entropy. An untrained controller is near uniform, so the agent starts as
evolution with random mutations; as it learns, mutations move toward the
decisions of the best sequences.

Why these defaults (measured on the synthetic task, search.synthetic):
- without the entropy term (weight 1e-4) PQT memorises the queue: the
  controller puts probability ~1 on the queue's values, so a resampled decision
  gets the parent's value back or an arbitrary one, most children repeat
  earlier ones, and the agent falls behind plain evolution. With weight 1 it
  keeps a ranked, soft distribution;
- a per-decision resample probability of 0.2 changes several decisions per child,
  which breaks good parents more often than it fixes them; one changed
  decision, as in regularized evolution, is better;
- repeats are drawn again because a learned proposal concentrates on a few
  neighbours of the best parents; uniform mutation (evolution) gains nothing from it.
"""
from __future__ import annotations

from collections import deque

import torch

from .controller_strategy import PolicyStrategy
from .strategy import StrategyError, tournament


class EvoNAS(PolicyStrategy):
    def __init__(self, space, seed: int = 0, population_size: int = 100, sample_size: int = 25,
                 resample_prob: float = 0.0, max_redraws: int = 10, queue_size: int = 10,
                 pqt_steps: int = 1, entropy_weight: float = 1.0, hidden: int = 64,
                 lr: float = 3.5e-3, temperature: float | None = None,
                 tanh_constant: float | None = None, op_tanh_reduce: float = 2.5):
        super().__init__(space, seed, hidden, lr, temperature, tanh_constant, op_tanh_reduce)
        if not 1 <= sample_size <= population_size:
            raise StrategyError(f"evo_nas needs 1 <= sample_size <= population_size, "
                             f"got {sample_size} and {population_size}")
        if not 0.0 <= resample_prob <= 1.0:
            raise StrategyError(f"evo_nas needs resample_prob in [0, 1], got {resample_prob}")
        self.population_size = population_size
        self.sample_size = sample_size
        self.resample_prob = resample_prob
        self.max_redraws = max_redraws
        self.queue_size = queue_size
        self.pqt_steps = pqt_steps
        self.entropy_weight = entropy_weight
        self.population: deque[tuple[tuple[int, ...], float]] = deque(maxlen=population_size)
        self.queue: list[tuple[tuple[int, ...], float]] = []   # best first, distinct sequences
        self.seen: set[tuple[int, ...]] = set()

    def _plan(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Parents (-1: none yet) and resample masks for children `rows` of one ask."""
        steps = len(self.space.decisions)
        mutable = [t for t, d in enumerate(self.space.decisions) if d.num_choices > 1]
        parents = torch.full((len(rows), steps), -1, dtype=torch.long)
        resample = torch.ones(len(rows), steps, dtype=torch.bool)
        for k, i in enumerate(rows):
            if len(self.population) + i < self.population_size:
                continue
            parents[k] = torch.tensor(tournament(self.population, self.sample_size, self.rng)[0])
            change = self.rng.random(steps) < self.resample_prob
            change[mutable[self.rng.integers(len(mutable))]] = True
            resample[k] = torch.from_numpy(change)
        return parents, resample

    def ask(self, n: int) -> list:
        seqs = torch.empty(n, len(self.space.decisions), dtype=torch.long)
        rows = list(range(n))
        for _ in range(1 + self.max_redraws):
            seqs[rows] = self.controller.sample(len(rows), self.generator, *self._plan(rows))
            taken = [tuple(r) for r in seqs.tolist()]
            rows = [i for i, r in enumerate(taken) if r in self.seen or r in taken[:i]]
            if not rows:
                break
        return self.decode(seqs)

    def tell(self, genotypes, rewards) -> None:
        told = [(self.encode(g), float(r)) for g, r in zip(genotypes, rewards)]
        self.population.extend(told)
        self.seen.update(seq for seq, _ in told)
        best = dict(self.queue)
        for seq, r in told:
            best[seq] = max(r, best.get(seq, r))
        self.queue = sorted(best.items(), key=lambda item: -item[1])[:self.queue_size]
        seqs = torch.tensor([seq for seq, _ in self.queue], dtype=torch.long)
        for _ in range(self.pqt_steps):
            logp, entropy = self.controller.log_prob(seqs)
            self.step(-logp.mean() - self.entropy_weight * entropy.mean())

    def state_dict(self) -> dict:
        return {**super().state_dict(),
                "population": [[list(s), r] for s, r in self.population],
                "queue": [[list(s), r] for s, r in self.queue],
                "seen": [list(s) for s in self.seen]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.population.clear()
        self.population.extend((tuple(s), float(r)) for s, r in state["population"])
        self.queue = [(tuple(s), float(r)) for s, r in state["queue"]]
        self.seen = {tuple(s) for s in state["seen"]}
