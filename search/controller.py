"""An LSTM policy over a space's decision sequence (the NASNet / ENAS controller).

The controller emits the decisions one by one; the embedding of each chosen
decision is the next step's input (a learned vector starts the sequence). Each
decision kind and size (e.g. "input" with 4 choices, "op" with 13) has its own
softmax head and embedding table, shared by all decisions of that kind and
size. As in ENAS, logits are divided by `temperature` and squashed to
`tanh_constant * tanh(logits)` (op logits by `tanh_constant / op_tanh_reduce`)
when those options are set. Parameters start U[-0.1, 0.1].
"""
from __future__ import annotations

import torch
from torch import nn


def _head_key(decision) -> str:
    return f"{decision.kind}_{decision.num_choices}"


class Controller(nn.Module):
    def __init__(self, decisions, hidden: int = 64, temperature: float | None = None,
                 tanh_constant: float | None = None, op_tanh_reduce: float = 2.5,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.keys = [_head_key(d) for d in decisions]
        self.kinds = [d.kind for d in decisions]
        sizes = {_head_key(d): d.num_choices for d in decisions}
        self.temperature = temperature
        self.tanh_constant = tanh_constant
        self.op_tanh_reduce = op_tanh_reduce
        self.start = nn.Parameter(torch.empty(1, hidden))
        self.lstm = nn.LSTMCell(hidden, hidden)
        self.heads = nn.ModuleDict({k: nn.Linear(hidden, c) for k, c in sizes.items()})
        self.embeddings = nn.ModuleDict({k: nn.Embedding(c, hidden) for k, c in sizes.items()})
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-0.1, 0.1, generator=generator)

    def _logits(self, t: int, h: torch.Tensor) -> torch.Tensor:
        logits = self.heads[self.keys[t]](h)
        if self.temperature is not None:
            logits = logits / self.temperature
        if self.tanh_constant is not None:
            scale = self.tanh_constant / (self.op_tanh_reduce if self.kinds[t] == "op" else 1.0)
            logits = scale * torch.tanh(logits)
        return logits

    @torch.no_grad()
    def sample(self, batch: int, generator: torch.Generator, parents: torch.Tensor | None = None,
               resample: torch.Tensor | None = None) -> torch.Tensor:
        """`batch` sequences (long, batch x steps). With `parents` (batch x steps, -1
        where a row has no parent), step t of row b copies `parents[b, t]` unless
        `resample[b, t]`, in which case it samples a value other than the parent's.
        Later steps are conditioned on the decisions actually taken."""
        x = self.start.expand(batch, -1)
        state = None
        out = torch.empty(batch, len(self.keys), dtype=torch.long)
        for t, key in enumerate(self.keys):
            state = self.lstm(x, state)
            probs = torch.softmax(self._logits(t, state[0]), dim=-1)
            if parents is not None:
                parent, change = parents[:, t], resample[:, t]
                avoid = (change & (parent >= 0))[:, None] & (torch.arange(probs.shape[1]) == parent[:, None])
                probs = probs.masked_fill(avoid, 0.0)
            choice = torch.multinomial(probs, 1, generator=generator)[:, 0]
            if parents is not None:
                choice = torch.where(change, choice, parent)
            out[:, t] = choice
            x = self.embeddings[key](choice)
        return out

    def log_prob(self, seqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sequence: the sum over steps of log-probability and of entropy (teacher forced)."""
        batch = seqs.shape[0]
        x = self.start.expand(batch, -1)
        state = None
        logp = torch.zeros(batch)
        entropy = torch.zeros(batch)
        for t, key in enumerate(self.keys):
            state = self.lstm(x, state)
            log_probs = torch.log_softmax(self._logits(t, state[0]), dim=-1)
            logp = logp + log_probs.gather(1, seqs[:, t:t + 1])[:, 0]
            entropy = entropy - (log_probs.exp() * log_probs).sum(-1)
            x = self.embeddings[key](seqs[:, t])
        return logp, entropy
