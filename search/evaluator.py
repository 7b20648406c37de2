"""Scores genotypes with the supernet's inherited weights.

A candidate is first checked against the size constraints of the fixed network
it stands for (see `search.constraints`); one that breaks them is rejected
unscored (reward 0). Otherwise `supernet.subnet(g)` (a fixed network holding
copies of the shared weights; the supernet itself is left untouched) has its
batch-norm statistics recalibrated on the calibration batches (running
statistics reset, momentum None for a cumulative average, train-mode forwards
without gradients), and its reward is its top-1 accuracy in eval mode on the
held-out validation batches, never the test split. Both sets of batches are
fixed once and held on the device, so every candidate is scored on the same
images. Repeated genotypes come from a cache. Under torchrun the candidates of
one call are shared out across ranks and the records gathered on every rank.
"""
from __future__ import annotations

import contextlib
import time

import torch
import torch.distributed as dist
from torch import nn

from supernet.errors import UserError

from .constraints import Constraints


def take_batches(loader, count: int | None, device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The first `count` batches of `loader` (all when None), on `device`."""
    batches = []
    for x, y in loader:
        if count is not None and len(batches) >= count:
            break
        batches.append((x.to(device), y.to(device)))
    return batches


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
def accuracy(net: nn.Module, batches, autocast=contextlib.nullcontext) -> float:
    correct = total = 0
    for x, y in batches:
        with autocast():
            correct += (net(x).argmax(1) == y).sum().item()
        total += len(y)
    return correct / max(total, 1)


BN_MODES = ("recalibrate", "batch")


class Evaluator:
    """Scores candidates (see the module docstring); `bn="batch"` instead normalises each validation
    batch with its own statistics (BN in training mode), without recalibration."""

    def __init__(self, supernet, calibration, validation, constraints: Constraints | None = None,
                 autocast=contextlib.nullcontext, bn: str = "recalibrate"):
        if bn not in BN_MODES:
            raise UserError(f"bn must be one of {', '.join(BN_MODES)}, got {bn!r}")
        if not validation:
            raise UserError("the search needs validation images; the supernet run has no validation split "
                             "(train it with val_fraction above 0)")
        self.supernet = supernet
        self.calibration, self.validation = calibration, validation
        self.constraints = constraints
        self.autocast, self.bn = autocast, bn
        self.cache: dict = {}

    def score(self, genotype) -> float:
        """Validation accuracy of the subnet of `genotype` (after BN recalibration)."""
        net = self.supernet.subnet(genotype)
        if self.bn == "recalibrate":
            recalibrate_bn(net, self.calibration, self.autocast)
        else:
            net.train()
        return accuracy(net, self.validation, self.autocast)

    def record(self, genotype) -> dict:
        """{reward, accuracy, rejected (reason or None), params, macs, seconds, cached} of one genotype."""
        start = time.perf_counter()
        rec = {"accuracy": None, "rejected": None, "params": None, "macs": None}
        if self.constraints is not None:
            rec.update(self.constraints.check(genotype))
        if rec["rejected"] is None:
            rec["accuracy"] = self.score(genotype)
        rec["reward"] = rec["accuracy"] if rec["rejected"] is None else 0.0
        rec["seconds"] = round(time.perf_counter() - start, 4)
        return rec

    def evaluate(self, genotypes) -> list[dict]:
        """One record per genotype (in order); uncached ones are shared out across ranks."""
        todo = [i for i, g in enumerate(genotypes) if g not in self.cache and g not in genotypes[:i]]
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        mine = {i: self.record(genotypes[i]) for i in todo[rank::world]}
        if world > 1:
            gathered = [None] * world
            dist.all_gather_object(gathered, mine)
            mine = {i: rec for part in gathered for i, rec in part.items()}
        for i, rec in mine.items():
            self.cache[genotypes[i]] = rec
        return [{**self.cache[g], "cached": i not in mine} for i, g in enumerate(genotypes)]
