"""REINFORCE on the LSTM controller (NASNet / ENAS style).

Each `tell` is one Adam step on -(R - b) * log p(sequence) - entropy_weight * H,
averaged over the told sequences; the baseline b is a moving average of the
rewards, b <- b - (1 - baseline_decay) * (b - R), started at the first batch's mean.
"""
from __future__ import annotations

import torch

from .controller_strategy import PolicyStrategy


class Reinforce(PolicyStrategy):
    def __init__(self, space, seed: int = 0, hidden: int = 64, lr: float = 3.5e-3,
                 temperature: float | None = None, tanh_constant: float | None = 1.1,
                 op_tanh_reduce: float = 2.5, entropy_weight: float = 1e-4,
                 baseline_decay: float = 0.99):
        super().__init__(space, seed, hidden, lr, temperature, tanh_constant, op_tanh_reduce)
        self.entropy_weight = entropy_weight
        self.baseline_decay = baseline_decay
        self.baseline: float | None = None

    def ask(self, n: int) -> list:
        return self.decode(self.controller.sample(n, self.generator))

    def tell(self, genotypes, rewards) -> None:
        rewards = [float(r) for r in rewards]
        if self.baseline is None:
            self.baseline = sum(rewards) / len(rewards)
        advantages = torch.tensor([r - self.baseline for r in rewards])
        for r in rewards:
            self.baseline -= (1 - self.baseline_decay) * (self.baseline - r)
        logp, entropy = self.controller.log_prob(self.sequences(genotypes))
        self.step(-(advantages * logp).mean() - self.entropy_weight * entropy.mean())

    def state_dict(self) -> dict:
        return {**super().state_dict(), "baseline": self.baseline}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.baseline = state["baseline"]
