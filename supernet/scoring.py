"""How a genotype is scored on the supernet's shared weights: one definition for supernet-train's
end-of-epoch figures, nas-search's evaluator and tools/ranking.py.

`supernet.subnet(g)` (a fixed network holding copies of the shared weights; the supernet itself is
left untouched) first trains `finetune_steps` SGD steps of its own on fixed training batches
(momentum 0.9, cosine learning rate from `finetune_lr` to 0), then has its batch-norm statistics
recalibrated on `calibration_batches` of them (running statistics reset, momentum None for a
cumulative average, train-mode forwards without gradients): the supernet's own running statistics
mix every path that was sampled, so they fit no single subnet. It is then scored in eval mode on
held-out batches: its top-1 accuracy and the mean probability it gives the true class, of the same
predictions. `metric` says which of the two a search and tools/ranking.py rank by; supernet-train
reports the accuracy, which compares with standalone training. Why these settings, and what the
alternatives measured: docs/options.md.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError

Metric = Literal["accuracy", "probability"]
METRICS = {"accuracy": "validation accuracy", "probability": "validation true-class probability"}   # in reports


@dataclass(frozen=True)
class Scoring:
    """How a subnet is scored (see the module docstring): the one declaration of the scoring keys, which
    supernet-train's `scoring`, nas-search's and tools/ranking.py's take."""
    calibration_batches: int = 5
    finetune_steps: int = 10
    finetune_lr: float = 0.05
    metric: Metric = "probability"

    def __post_init__(self):
        if self.metric not in METRICS:
            raise UserError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.calibration_batches < 1 or self.finetune_steps < 0 or self.finetune_lr <= 0:
            raise UserError("scoring needs calibration_batches >= 1, finetune_steps >= 0 and finetune_lr > 0, got "
                            f"{self.calibration_batches}, {self.finetune_steps}, {self.finetune_lr}")

    @property
    def train_batches(self) -> int:
        """How many fixed training batches the scoring uses (calibration and fine-tuning alike)."""
        return max(self.calibration_batches, self.finetune_steps)


DEFAULT_SCORING = Scoring()


def batch_norms(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_bn(net: nn.Module, batches, autocast=contextlib.nullcontext) -> None:
    """Reset the running statistics and replace them by their cumulative average
    over `batches` (train-mode forwards); `net` is left in eval mode."""
    for bn in batch_norms(net):
        bn.reset_running_stats()
        bn.momentum = None
    net.train()
    for x, _ in batches:
        with autocast():
            net(x)
    net.eval()


@torch.no_grad()
def metric_sums(net: nn.Module, batches, autocast=contextlib.nullcontext) -> tuple[float, float, int]:
    """(correct top-1 predictions, summed probability of the true classes, images) of `net` as it is (its
    mode unchanged) over `batches`."""
    correct, probability, images = 0.0, 0.0, 0
    for x, y in batches:
        with autocast():
            logits = net(x).float()
        correct += (logits.argmax(1) == y).sum().item()
        probability += logits.log_softmax(1).gather(1, y[:, None]).exp().sum().item()
        images += len(y)
    return correct, probability, images


def finetune(net: nn.Module, batches, steps: int, lr: float, autocast=contextlib.nullcontext) -> None:
    """`steps` SGD steps of `net` on `batches` (cycled), the learning rate falling from `lr` to 0."""
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=3e-4)
    net.train()
    for step in range(steps):
        x, y = batches[step % len(batches)]
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        with autocast():
            logits = net(x)
            loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def scored_subnet(supernet, genotype, train, scoring: Scoring = DEFAULT_SCORING, autocast=contextlib.nullcontext,
                  channels_last: bool = False) -> nn.Module:
    """The subnet of `genotype` ready to be scored: fine-tuned and its BN statistics recalibrated on
    `train`, the fixed training batches (at least `scoring.train_batches` of them), as `scoring` says.
    `channels_last` (for batches taken so) runs the subnet in that memory format."""
    net = supernet.subnet(genotype)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    finetune(net, train, scoring.finetune_steps, scoring.finetune_lr, autocast)
    recalibrate_bn(net, train[:scoring.calibration_batches], autocast)
    return net


def score_counts(supernet, genotype, train, validation, scoring: Scoring = DEFAULT_SCORING,
                 autocast=contextlib.nullcontext, channels_last: bool = False) -> tuple[float, float, int]:
    """metric_sums on `validation` of the scored_subnet of `genotype`."""
    return metric_sums(scored_subnet(supernet, genotype, train, scoring, autocast, channels_last), validation, autocast)


def score_metrics(supernet, genotype, train, validation, scoring: Scoring = DEFAULT_SCORING,
                  autocast=contextlib.nullcontext, channels_last: bool = False) -> dict[str, float]:
    """The metrics of the scored_subnet of `genotype` on `validation`: its top-1 `accuracy` and the mean
    `probability` of the true class."""
    correct, probability, images = score_counts(supernet, genotype, train, validation, scoring, autocast, channels_last)
    return {"accuracy": correct / max(images, 1), "probability": probability / max(images, 1)}


def score(supernet, genotype, train, validation, scoring: Scoring = DEFAULT_SCORING,
          autocast=contextlib.nullcontext, channels_last: bool = False) -> float:
    """The subnet of `genotype`'s score: its `scoring.metric` (see score_metrics)."""
    return score_metrics(supernet, genotype, train, validation, scoring, autocast, channels_last)[scoring.metric]
