"""Zero-cost proxies: scores of an untrained network that a user might rank cells by instead of a
supernet (Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS"). They are the baselines
a supernet must beat to be worth its training (tools/ranking.py).

- `params`: the parameter count of the fixed network;
- `concat_width`: how many states the normal and the reduction cell concatenate into their outputs
  (wider outputs feed more channels to the next cell; on the benchmark's photos this alone ranks
  cells well: docs/ranking.md);
- `grad_norm`: the norm of the loss gradient at initialisation, on one batch;
- `synflow`: sum over parameters of |theta * dR/dtheta| with R the output sum of the network with
  absolute weights on an all-ones input (Tanaka et al. 2020), in float64, BN as at initialisation.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from supernet.sizes import count_params


def grad_norm(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.train()
    net.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()
    return float(torch.sqrt(sum(p.grad.pow(2).sum() for p in net.parameters() if p.grad is not None)))


def synflow(net: torch.nn.Module, x: torch.Tensor) -> float:
    net = net.double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
    net.zero_grad(set_to_none=True)
    net(torch.ones_like(x, dtype=torch.float64)).sum().backward()
    return float(sum((p.detach() * p.grad).abs().sum() for p in net.parameters() if p.grad is not None))


def concat_width(genotype) -> float:
    """How many states the genotype's normal and reduction cells concatenate."""
    return float(len(genotype.normal_concat) + len(genotype.reduce_concat))


PROXIES = {
    "params": lambda make, x, y: float(count_params(make())),
    "concat_width": lambda make, x, y: concat_width(make().genotype),
    "grad_norm": lambda make, x, y: grad_norm(make(), x, y),
    "synflow": lambda make, x, y: synflow(make(), x),
}


def proxy_scores(make_net, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """Every proxy of the network `make_net()` builds (freshly initialised from `seed` for each), on one batch."""
    scores = {}
    for name, proxy in PROXIES.items():
        torch.manual_seed(seed)
        scores[name] = proxy(make_net, x, y)
    return scores
