"""Supernet training within a memory budget: how each step runs so that it fits.

Path dropout's first steps run the dense mixture, every op of every kept input: a NASNet cell of 5
blocks then runs hundreds of op terms where a single path runs ten, and the activations that autograd
keeps for the backward pass grow with them, with the batch and with the image's area. On a CPU an
overdrawn step is killed by the kernel without a word; on a GPU it ends in an out-of-memory error.

`MemoryPlan` measures those activations once, in one forward pass of the dense mixture on two
images, term by term: what each op keeps for backward, and what the rest of the network keeps (the
stem, the cells' inputs and states, the classifier). A step's activations are then the rest plus the
terms its path runs. With its ops checkpointed (torch.utils.checkpoint: an op's activations are
recomputed in backward instead of kept, so the gradients, and what is learned, are those of the plain
step; only batch norm's running statistics are updated twice, and scoring recalibrates them anyway)
they are the rest plus one op's at a time. Each step runs as it is where that fits the budget,
checkpointed where that fits, and otherwise checkpointed and split into micro-batches (each normalised
on its own, as `accum_steps` does: the one case that changes what is learned).
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError

log = logging.getLogger(__name__)

GB = 2**30
PROBE_IMAGES = 2
OVERHEAD = 1.3   # a step's memory over its saved activations: the backward pass's and the allocator's own
CPU_SHARE, CUDA_SHARE = 0.4, 0.8   # of the memory available, the default budget


class MemoryBudgetError(UserError):
    """A supernet step that cannot fit the memory budget however it runs."""


def default_budget(device: torch.device, processes: int = 1) -> int:
    """Bytes a step may use when no budget is set: a share of the free memory of the process's GPU, or of
    the memory the system has available, split among the `processes` on this machine."""
    if device.type == "cuda":
        return int(CUDA_SHARE * torch.cuda.mem_get_info(device)[0])
    return int(CPU_SHARE * available_bytes() / processes)


def available_bytes() -> int:
    """The memory the system can give without swapping: Linux's MemAvailable, which counts the page cache
    it can drop (free pages alone shrink as soon as a dataset has been read), else the free pages."""
    try:
        with open("/proc/meminfo") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:"))
        return kb * 1024
    except (OSError, StopIteration):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def saved_bytes(step) -> int:
    """Bytes of the distinct storages autograd saves for backward while `step()` runs its forward pass."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return sum(storages.values())


def kept_terms(weights) -> list[np.ndarray]:
    """For each cell type (normal, then reduction), one boolean (input, op) mask per block: the terms
    that a relaxed path (one weight vector per decision, the normal cells' first) runs."""
    masks = []
    for cell in np.split(np.arange(len(weights)), 2):
        kept = [np.asarray(w.cpu() if torch.is_tensor(w) else w) != 0 for w in weights[cell[0]:cell[-1] + 1]]
        masks.append([np.outer(kept[k], kept[k + 1]) | np.outer(kept[k + 2], kept[k + 3])
                      for k in range(0, len(kept), 4)])
    return masks


def term_bytes(net, images: torch.Tensor, autocast=contextlib.nullcontext) -> tuple[list, float]:
    """What the dense mixture keeps for backward, an image: per cell type and block, an (input, op)
    array of each term's bytes summed over the cells of that type; and the bytes of the rest. A storage
    an op reads (a cell state) counts in the rest, however many ops read it."""
    owner, inputs, costs, rest = [None], set(), {}, [0]
    stored = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in stored:
            stored[ptr] = t.untyped_storage().nbytes()
            if owner[-1] is None or ptr in inputs:
                rest[0] += stored[ptr]
            else:
                costs[owner[-1]] = costs.get(owner[-1], 0) + stored[ptr]
        return t

    handles = []
    for cell in net.cells:
        for b, by_input in enumerate(cell.edges):
            for j, ops in enumerate(by_input):
                for o, op in enumerate(ops):
                    key = (cell.reduction, b, j, o)

                    def enter(module, args, key=key):
                        owner.append(key)
                        inputs.add(args[0].untyped_storage().data_ptr())

                    def leave(module, args, output):
                        owner.pop()

                    handles += [op.register_forward_pre_hook(enter), op.register_forward_hook(leave)]
    dense = [torch.ones(d.num_choices, device=images.device) for d in net.space.decisions]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast():
            net(images, weights=dense)
    finally:
        for handle in handles:
            handle.remove()
    per_cell = [[np.zeros((b + 2, len(net.space.ops))) for b in range(net.space.num_blocks)] for _ in range(2)]
    for (reduction, b, j, o), nbytes in costs.items():
        per_cell[reduction][b][j, o] += nbytes / len(images)
    return per_cell, rest[0] / len(images)


@dataclass(frozen=True)
class StepPlan:
    """How one step runs: its ops checkpointed or not, its batch in how many micro-batches."""
    checkpoint: bool
    micro_batches: int


class MemoryPlan:
    """How each step of a supernet run fits `budget` bytes (see the module docstring)."""

    def __init__(self, net, images: torch.Tensor, batch_size: int, accum_steps: int, budget: int,
                 autocast=contextlib.nullcontext):
        """`images`: PROBE_IMAGES images as training feeds them (device, memory format)."""
        self.costs, self.rest = term_bytes(net, images, autocast)
        self.batch_size, self.budget = batch_size, budget
        self.splits = [k for k in range(accum_steps, batch_size + 1) if batch_size % k == 0 and k % accum_steps == 0]
        self.space = net.space
        self.dense = kept_terms([torch.ones(d.num_choices) for d in net.space.decisions])   # the costliest path

    def estimate(self, kept: list, checkpoint: bool) -> float:
        """Bytes a step of the whole batch takes, its path running the `kept` terms (kept_terms)."""
        terms = [cost[mask] for cell, masks in zip(self.costs, kept) for cost, mask in zip(cell, masks)]
        terms = np.concatenate(terms)
        ops = terms.max(initial=0.0) if checkpoint else terms.sum()
        return OVERHEAD * self.batch_size * (self.rest + ops)

    def plan(self, kept: list) -> StepPlan:
        """The quickest way to run a step whose path runs the `kept` terms within the budget: as it is,
        checkpointed, or checkpointed in micro-batches."""
        for option in [StepPlan(False, self.splits[0])] + [StepPlan(True, k) for k in self.splits]:
            if self.estimate(kept, option.checkpoint) / option.micro_batches <= self.budget:
                return option
        raise MemoryBudgetError(
            f"a supernet step needs about {self.estimate(kept, True) / self.batch_size / GB:.3f} GB an image even "
            f"with its ops checkpointed, more than the memory budget of {self.budget / GB:.3f} GB; lower "
            "batch_size, image_size or C, or raise memory_budget")

    def step(self, path: dict) -> StepPlan:
        """How the step of `path` (the supernet's forward arguments: a relaxed path's `weights`, or a
        single path's `arch`) runs."""
        return self.plan(self.kept(path))

    def kept(self, path: dict) -> list:
        """The terms (kept_terms) that `path` runs."""
        if "weights" in path:
            return kept_terms(path["weights"])
        choices = self.space.encode(path["arch"])
        return kept_terms([np.arange(d.num_choices) == v for d, v in zip(self.space.decisions, choices)])

    def describe(self, costliest: list) -> str:
        """The plan in a line, for a run whose costliest path runs the `costliest` terms."""
        plain, checkpointed = (self.estimate(costliest, c) / GB for c in (False, True))
        plan = self.plan(costliest)
        if not plan.checkpoint:
            how = "every step runs as it is"
        else:
            how = "the steps that would not fit run with their ops checkpointed"
            how += "" if plan.micro_batches == self.splits[0] else f", the costliest in {plan.micro_batches} micro-batches"
        return (f"memory: the costliest step takes about {plain:.3g} GB as it runs, {checkpointed:.3g} GB with its ops "
                f"checkpointed; budget {self.budget / GB:.3g} GB: {how}")
