"""How a genotype is scored on the supernet's shared weights: one definition for supernet-train's
end-of-epoch figures, nas-search's evaluator and tools/ranking.py.

`supernet.subnet(g)` (a fixed network holding copies of the shared weights; the supernet itself is
left untouched) has its batch-norm statistics recalibrated on training batches (running statistics
reset, momentum None for a cumulative average, train-mode forwards without gradients) and is then
scored in eval mode on held-out batches: its top-1 accuracy, the mean probability it gives the
true class and the mean log-probability of the true class (the negative validation loss), of the
same predictions. `metric` says which is the score that a search and
tools/ranking.py rank by: the probability is the smoother figure, and it ranks the benchmark's cells
better, from the shared weights alone and fine-tuned (README, "How well shared weights rank").
supernet-train reports the accuracy, which compares with standalone training. The supernet's own
running statistics mix every path that was sampled, so they fit no single subnet. With `bn="batch"`,
each held-out batch is instead normalised with its own statistics (BN in training mode), with no
recalibration.

With `finetune_steps` above 0, the subnet first trains that many SGD steps from the inherited
weights (momentum 0.9, cosine learning rate from `finetune_lr` to 0) on the same fixed training
batches, before its BN statistics are recalibrated. On the ranking benchmark this ranks cells
better than the shared weights alone. With 10 steps the trained weights lead an untrained
supernet fine-tuned the same way, and searches on them find better cells; with 50 the untrained
one ranks as well: see the README's "How well shared weights rank". `metric="finetune_probability"`
ranks instead by the mean probability of the true class that each fine-tuning batch gets just
before the step that trains on it (a figure of how fast the subnet learns, as in training-speed
estimates; on the benchmark it ranks no better than the validation probability after the steps).

With `head="refit"`, the subnet's linear classifier is refit, after the recalibration, to the
subnet's own pooled features of the calibration batches (a multinomial logistic regression by
L-BFGS from the inherited classifier, the weights' L2 penalty HEAD_WEIGHT_DECAY): the shared features
are scored without the shared classifier, which was trained on the mixture of every sampled path
rather than on this one. On the benchmark it ranks about as 10 fine-tuning steps do at about half
their cost, but an untrained supernet ranks better under it (README, "The recipe, and why").
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, fields
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UserError

BN_MODES = ("recalibrate", "batch")
HEADS = ("inherited", "refit")
HEAD_WEIGHT_DECAY = 1e-3   # the refit classifier's L2 penalty (times the squared weights, beside the mean loss)
HEAD_ITERATIONS = 100      # L-BFGS iterations of the refit (it converges well within them at these sizes)
Metric = Literal["accuracy", "probability", "log_probability", "finetune_probability"]
METRICS = {"accuracy": "validation accuracy", "probability": "validation true-class probability",   # in reports
           "log_probability": "validation true-class log-probability",
           "finetune_probability": "true-class probability of the fine-tuning batches"}


@dataclass(frozen=True)
class Scoring:
    """How a subnet is scored (see the module docstring)."""
    bn: str = "recalibrate"
    head: str = "inherited"
    calibration_batches: int = 5
    finetune_steps: int = 0
    finetune_lr: float = 0.05
    metric: Metric = "accuracy"

    def __post_init__(self):
        if self.bn not in BN_MODES:
            raise UserError(f"bn must be one of {', '.join(BN_MODES)}, got {self.bn!r}")
        if self.head not in HEADS:
            raise UserError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.metric not in METRICS:
            raise UserError(f"metric must be one of {', '.join(METRICS)}, got {self.metric!r}")
        if self.metric == "finetune_probability" and not self.finetune_steps:
            raise UserError("metric finetune_probability needs finetune_steps >= 1")
        if self.calibration_batches < 1 or self.finetune_steps < 0 or self.finetune_lr <= 0:
            raise UserError("scoring needs calibration_batches >= 1, finetune_steps >= 0 and finetune_lr > 0, got "
                            f"{self.calibration_batches}, {self.finetune_steps}, {self.finetune_lr}")

    @property
    def train_batches(self) -> int:
        """How many fixed training batches the scoring uses (calibration and fine-tuning alike)."""
        return max(self.calibration_batches, self.finetune_steps)


DEFAULT_SCORING = Scoring()
SCORING_KEYS = tuple(f.name for f in fields(Scoring))


def scoring_from(settings: dict, **overrides) -> Scoring:
    """The Scoring of a config's keys (a supernet run's, say), where `overrides` are not None."""
    chosen = {key: value for key, value in settings.items() if key in SCORING_KEYS}
    chosen.update({key: value for key, value in overrides.items() if value is not None})
    return Scoring(**chosen)


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
def metric_sums(net: nn.Module, batches, autocast=contextlib.nullcontext) -> tuple[float, float, float, int]:
    """(correct top-1 predictions, summed probability and summed log-probability of the true classes,
    images) of `net` as it is (its mode unchanged) over `batches`."""
    correct, probability, log_probability, images = 0.0, 0.0, 0.0, 0
    for x, y in batches:
        with autocast():
            logits = net(x).float()
        true_class = logits.log_softmax(1).gather(1, y[:, None])
        correct += (logits.argmax(1) == y).sum().item()
        probability += true_class.exp().sum().item()
        log_probability += true_class.sum().item()
        images += len(y)
    return correct, probability, log_probability, images


def finetune(net: nn.Module, batches, steps: int, lr: float, autocast=contextlib.nullcontext) -> float:
    """`steps` SGD steps of `net` on `batches` (cycled), the learning rate falling from `lr` to 0; returns
    the mean probability of the true class that each batch got before its step."""
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=3e-4)
    net.train()
    probability = 0.0   # a tensor from the first step on: summed on the device, one host sync at the end
    for step in range(steps):
        x, y = batches[step % len(batches)]
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        with autocast():
            logits = net(x)
            loss = F.cross_entropy(logits, y)
        probability = probability + logits.detach().float().softmax(1).gather(1, y[:, None]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(probability) / steps


def refit_head(net: nn.Module, batches, autocast=contextlib.nullcontext) -> None:
    """Refit `net`'s linear classifier to its pooled features of `batches` (`net` as it is, its mode
    unchanged): the mean cross-entropy plus HEAD_WEIGHT_DECAY times the squared weights, minimised by
    L-BFGS from the classifier's present weights."""
    with torch.no_grad():
        features, labels = [], []
        for x, y in batches:
            with autocast():
                features.append(net.forward_head(net.forward_features(x), pre_logits=True).float())
            labels.append(y)
        features, labels = torch.cat(features), torch.cat(labels)
    head = net.get_classifier()
    weight = head.weight.detach().float().clone().requires_grad_()
    bias = head.bias.detach().float().clone().requires_grad_()
    opt = torch.optim.LBFGS([weight, bias], max_iter=HEAD_ITERATIONS, line_search_fn="strong_wolfe")

    def loss():
        opt.zero_grad()
        value = F.cross_entropy(torch.addmm(bias, features, weight.T), labels) + HEAD_WEIGHT_DECAY * weight.square().sum()
        value.backward()
        return value

    opt.step(loss)
    with torch.no_grad():
        head.weight.copy_(weight)
        head.bias.copy_(bias)


def scored_subnet(supernet, genotype, train, scoring: Scoring = DEFAULT_SCORING, autocast=contextlib.nullcontext,
                  channels_last: bool = False) -> tuple[nn.Module, float | None]:
    """The subnet of `genotype` ready to be scored: fine-tuned, its BN statistics recalibrated and its
    classifier refit on `train`, the fixed training batches (at least `scoring.train_batches` of them), as `scoring` says
    (see the module docstring); and its fine-tuning's figure (finetune), None without fine-tuning.
    `channels_last` (for batches taken so) runs the subnet in that memory format."""
    net = supernet.subnet(genotype)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    online = finetune(net, train, scoring.finetune_steps, scoring.finetune_lr, autocast) if scoring.finetune_steps else None
    if scoring.bn == "recalibrate":
        recalibrate_bn(net, train[:scoring.calibration_batches], autocast)
    else:
        net.train()
    if scoring.head == "refit":
        refit_head(net, train[:scoring.calibration_batches], autocast)
    return net, online


def score_counts(supernet, genotype, train, validation, scoring: Scoring = DEFAULT_SCORING,
                 autocast=contextlib.nullcontext, channels_last: bool = False) -> tuple[float, float, float, int]:
    """metric_sums on `validation` of the scored_subnet of `genotype`."""
    net, _ = scored_subnet(supernet, genotype, train, scoring, autocast, channels_last)
    return metric_sums(net, validation, autocast)


def score_metrics(supernet, genotype, train, validation, scoring: Scoring = DEFAULT_SCORING,
                  autocast=contextlib.nullcontext, channels_last: bool = False) -> dict[str, float | None]:
    """The metrics of the scored_subnet of `genotype`: its top-1 `accuracy`, the mean `probability` and
    `log_probability` of the true class on `validation`, and `finetune_probability` (None without
    fine-tuning)."""
    net, online = scored_subnet(supernet, genotype, train, scoring, autocast, channels_last)
    correct, probability, log_probability, images = metric_sums(net, validation, autocast)
    return {"accuracy": correct / max(images, 1), "probability": probability / max(images, 1),
            "log_probability": log_probability / max(images, 1), "finetune_probability": online}


def score(supernet, genotype, train, validation, scoring: Scoring = DEFAULT_SCORING,
          autocast=contextlib.nullcontext, channels_last: bool = False) -> float:
    """The subnet of `genotype`'s score: its `scoring.metric` (see score_metrics)."""
    return score_metrics(supernet, genotype, train, validation, scoring, autocast, channels_last)[scoring.metric]
