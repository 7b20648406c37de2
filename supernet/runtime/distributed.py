"""torch.distributed as torchrun sets it up, and gradient averaging for single-path supernets.

A single-path supernet is not wrapped in DistributedDataParallel: the set of
parameters that receive gradients changes every step (only the sampled path
runs), which DDP's reducer does not allow without `find_unused_parameters`
and its per-step graph walk. Every rank samples the same architecture each
step, so every rank has gradients for the same parameters, in the same order;
`average_gradients` all-reduces exactly those, flattened into buckets.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ..errors import UserError

log = logging.getLogger(__name__)

BUCKET_BYTES = 25 * 2**20


@dataclass(frozen=True)
class Dist:
    """Where this process runs: its rank among world_size processes and its device."""
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a process on its own (read from torchrun's environment, so it
    holds before the process group is set up)."""
    return int(os.environ.get("RANK", "0")) == 0


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto' (CUDA when available), 'cpu' or 'cuda'; CUDA picks the local rank's GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise UserError("device=cuda, but CUDA is not available here; use device=cpu or device=auto")
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    if name != "cpu":
        raise UserError(f"unknown device {name!r}; choose auto, cpu or cuda")
    return torch.device("cpu")


def device_name(device: torch.device) -> str:
    """The GPU's name, or "cpu"."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def init_distributed(device: str = "auto") -> Dist:
    """Join the torchrun job described by the environment (NCCL on CUDA, gloo on CPU; a job of one
    process too, so that its launch path is the one of N), or describe the single process when
    there is none."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local_rank)
    launched = world_size > 1 or "TORCHELASTIC_RUN_ID" in os.environ
    if launched and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                device_id=dev if dev.type == "cuda" else None)
        log.info("process group: %d processes, backend %s", world_size, dist.get_backend())
    return Dist(rank, world_size, local_rank, dev)


_sessions = 0   # how many `distributed_session`s are open in this process


@contextlib.contextmanager
def distributed_session(device: str = "auto"):
    """The torch.distributed session of a command (`init_distributed`'s Dist): the process group is
    joined once, by the outermost session, and left when that one closes, so that the stages of
    one pipeline share it (a process group cannot be joined again once left)."""
    global _sessions
    where = init_distributed(device)
    _sessions += 1
    try:
        yield where
    finally:
        _sessions -= 1
        if _sessions == 0 and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier():
    if _active():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over ranks in place and return it (a no-op on one process)."""
    if _active():
        dist.all_reduce(tensor)
    return tensor


@torch.no_grad()
def broadcast_parameters(module: torch.nn.Module, src: int = 0):
    """Copy rank src's parameters and buffers to every rank."""
    if _active():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=src)


def _buckets(grads, bucket_bytes: int):
    """Runs of consecutive same-dtype gradients of at most bucket_bytes (a larger gradient goes alone)."""
    bucket, size = [], 0
    for g in grads:
        nbytes = g.numel() * g.element_size()
        if bucket and (g.dtype != bucket[0].dtype or size + nbytes > bucket_bytes):
            yield bucket
            bucket, size = [], 0
        bucket.append(g)
        size += nbytes
    if bucket:
        yield bucket


@torch.no_grad()
def average_gradients(params, bucket_bytes: int = BUCKET_BYTES):
    """Average over ranks the gradients of the `params` that have one, in flat buckets.
    Every rank must hold gradients for the same params, in the same order."""
    if not _active():
        return
    world_size = dist.get_world_size()
    for bucket in _buckets([p.grad for p in params if p.grad is not None], bucket_bytes):
        flat = torch.cat([g.reshape(-1) for g in bucket])
        dist.all_reduce(flat)
        flat /= world_size
        offset = 0
        for g in bucket:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()


def run_unless_finished(out, summary_file: str, device: str, make_runner):
    """The summary of the finished run in `out` (its `summary_file`, nothing re-run), or else
    `make_runner(dist).run()` inside a torch.distributed session (a single process without torchrun)."""
    summary_path = Path(out) / summary_file
    if summary_path.exists():
        log.info("%s is finished; nothing to do", out)
        return json.loads(summary_path.read_text())
    with distributed_session(device) as where:
        return make_runner(where).run()
