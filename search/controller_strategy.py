"""The part shared by strategies that own a Controller: its seeded construction,
its Adam optimizer, the torch generator it samples with, and their state."""
from __future__ import annotations

import torch

from .controller import Controller
from .strategy import Strategy


class PolicyStrategy(Strategy):
    def __init__(self, space, seed: int, hidden: int, lr: float, temperature: float | None,
                 tanh_constant: float | None, op_tanh_reduce: float):
        super().__init__(space, seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.controller = Controller(space.decisions, hidden, temperature, tanh_constant,
                                     op_tanh_reduce, generator=self.generator)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=lr)

    def sequences(self, genotypes) -> torch.Tensor:
        return torch.tensor([self.encode(g) for g in genotypes], dtype=torch.long)

    def decode(self, seqs: torch.Tensor) -> list:
        return [self.space.decode(s) for s in seqs.tolist()]

    def step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def state_dict(self) -> dict:
        return {**super().state_dict(), "torch_rng": self.generator.get_state(),
                "controller": self.controller.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["torch_rng"])
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
