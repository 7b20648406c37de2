"""Continuous relaxations of the decision sequence.

The architecture parameters are one vector of logits per entry of
`space.decisions`. A mapping turns each vector into the weights that
`SuperNet.forward(x, weights=w)` takes (a distribution over that decision's
choices); the supernet skips every term whose weight is exactly 0, so the
one-hot GDAS sample and the sparse (sparse|ent)max weights cost only what they
select. Each mapping is one function in `MAPPINGS`, swappable by name:

- `darts`: softmax, every term computed;
- `gdas`: hard Gumbel-softmax with straight-through gradients (Dong & Yang 2019):
  p = softmax((log_softmax(logits) + g) / tau), w = one_hot(argmax p) - p.detach() + p;
- `sparsemax`: Euclidean projection onto the simplex (`entmax.sparsemax`);
- `entmax`: 1.5-entmax by sorting (`entmax.entmax15`), any other alpha by bisection.

The derived architecture is the argmax of each decision's logits, never "none",
with the two slots of a block kept distinct (see `derive`). Since no derived
cell holds "none", the relaxations never weigh it either (its weight is exactly
0, so it never runs): with it, the mixture learns to scale blocks down through
an op the derived cell lacks, and the sparse mappings collapse onto it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import entmax
import torch
from torch import Tensor, nn

from supernet.errors import UserError
from supernet.genotype import Genotype
from supernet.space import SearchSpace


@dataclass
class RelaxOptions:
    """What the mappings need besides the logits."""
    tau: float = 1.0                           # gdas temperature
    generator: torch.Generator | None = None   # gdas Gumbel noise (on the logits' device)
    alpha: float = 1.5                         # entmax alpha; 1.5 is solved exactly, others by bisection


Mapping = Callable[[Tensor, RelaxOptions], Tensor]
MAPPINGS: dict[str, Mapping] = {}


def register(name: str):
    def add(fn: Mapping) -> Mapping:
        MAPPINGS[name] = fn
        return fn
    return add


def get_mapping(name: str) -> Mapping:
    if name not in MAPPINGS:
        raise UserError(f"unknown relaxation {name!r}; choose one of {', '.join(MAPPINGS)}")
    return MAPPINGS[name]


def gumbel_noise(like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Standard Gumbel samples shaped like `like`: -log(E), E ~ Exp(1)."""
    return -torch.empty_like(like).exponential_(generator=generator).log()


def hard_gumbel_softmax(logits: Tensor, tau: float, noise: Tensor) -> Tensor:
    """One-hot forward at argmax of the soft sample p, gradient of p (straight-through)."""
    soft = ((logits.log_softmax(-1) + noise) / tau).softmax(-1)
    hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(-1, keepdim=True), 1.0)
    # 0 - p + p is exactly 0, so unselected terms keep weight 0 and are skipped.
    return hard - soft.detach() + soft


@register("darts")
def softmax_weights(logits: Tensor, options: RelaxOptions) -> Tensor:
    return logits.softmax(-1)


@register("gdas")
def gdas_weights(logits: Tensor, options: RelaxOptions) -> Tensor:
    return hard_gumbel_softmax(logits, options.tau, gumbel_noise(logits, options.generator))


@register("sparsemax")
def sparsemax_weights(logits: Tensor, options: RelaxOptions) -> Tensor:
    return entmax.sparsemax(logits, dim=-1)


@register("entmax")
def entmax_weights(logits: Tensor, options: RelaxOptions) -> Tensor:
    if options.alpha == 1.5:
        return entmax.entmax15(logits, dim=-1)
    return entmax.entmax_bisect(logits, alpha=options.alpha, dim=-1)


def gdas_temperature(epoch: int, epochs: int, tau_max: float = 10.0, tau_min: float = 0.1) -> float:
    """GDAS's schedule: linear in the epoch from tau_max (first) to tau_min (last)."""
    if epochs <= 1:
        return tau_min
    return tau_max - (tau_max - tau_min) * epoch / (epochs - 1)


NOT_AN_OP = "none"


def derive(space: SearchSpace, logits: list[Tensor]) -> Genotype:
    """The argmax of each decision, with two refinements (as DARTS derives: two distinct
    edges per node, never "none"): an op decision never picks "none", and where slot b's
    argmax (input, op) would repeat slot a's, slot b takes its best other pair, scored by
    log p_b(input) + log q_b(op). The weights of the two slots of a block get the same
    gradient, so without this the relaxations tend to derive every block as one op twice."""
    scores = [logit.detach().float().log_softmax(-1).clone() for logit in logits]
    for d, score in zip(space.decisions, scores):
        if d.kind == "op" and NOT_AN_OP in space.ops:
            score[space.ops.index(NOT_AN_OP)] = -float("inf")
    seq = []
    for k in range(0, len(scores), 4):   # input_a, op_a, input_b, op_b of one block (space.decisions order)
        input_a, op_a = int(scores[k].argmax()), int(scores[k + 1].argmax())
        pairs_b = scores[k + 2][:, None] + scores[k + 3][None, :]
        pairs_b[input_a, op_a] = -float("inf")
        seq += [input_a, op_a, *divmod(int(pairs_b.argmax()), pairs_b.shape[1])]
    return space.decode(seq)


def relaxed_choices(space: SearchSpace, decision) -> list[int]:
    """The choices of `decision` that a relaxation weighs: all but "none"."""
    if decision.kind == "op" and NOT_AN_OP in space.ops:
        return [i for i, op in enumerate(space.ops) if op != NOT_AN_OP]
    return list(range(decision.num_choices))


class ArchParams(nn.Module):
    """One vector of logits per decision of `space`, initialised near zero (DARTS: 1e-3 * N(0, 1))."""

    def __init__(self, space: SearchSpace, init_scale: float = 1e-3, seed: int = 0):
        super().__init__()
        self.space = space
        gen = torch.Generator().manual_seed(seed)
        self.logits = nn.ParameterList(
            nn.Parameter(init_scale * torch.randn(d.num_choices, generator=gen)) for d in space.decisions)
        for i, d in enumerate(space.decisions):
            self.register_buffer(f"choices{i}", torch.tensor(relaxed_choices(space, d)), persistent=False)

    def weights(self, mapping: str, options: RelaxOptions | None = None) -> list[Tensor]:
        """The weight list for `SuperNet.forward(x, weights=...)`; "none" gets exactly 0."""
        fn, options = get_mapping(mapping), options or RelaxOptions()
        out = []
        for i, logit in enumerate(self.logits):
            choices = getattr(self, f"choices{i}")
            if len(choices) == len(logit):
                out.append(fn(logit, options))
            else:
                out.append(logit.new_zeros(len(logit)).index_put((choices,), fn(logit[choices], options)))
        return out

    def distribution(self, mapping: str, alpha: float = 1.5) -> list[Tensor]:
        """The noise-free weights, for logging: gdas shows softmax(logits), the others their own mapping."""
        with torch.no_grad():
            return self.weights("darts" if mapping == "gdas" else mapping, RelaxOptions(alpha=alpha))

    def derive(self) -> Genotype:
        return derive(self.space, list(self.logits))


def entropy(weights: list[Tensor]) -> list[float]:
    """Entropy (nats) of each decision's weights, 0 log 0 = 0."""
    return [float(torch.special.entr(w.detach().float()).sum()) for w in weights]


def sparsity(weights: list[Tensor]) -> float:
    """Share of exact zeros over all choices of all decisions."""
    flat = torch.cat([w.detach().flatten() for w in weights])
    return float((flat == 0).float().mean())


def summarize(space: SearchSpace, weights: list[Tensor]) -> dict:
    """Per-decision weights and entropy, plus mean entropy and sparsity, as plain JSON values."""
    ent = entropy(weights)
    return {
        "entropy": sum(ent) / len(ent),
        "sparsity": sparsity(weights),
        "decisions": {d.name: {"weights": [round(v, 6) for v in w.detach().float().tolist()], "entropy": e}
                      for d, w, e in zip(space.decisions, weights, ent)},
    }
