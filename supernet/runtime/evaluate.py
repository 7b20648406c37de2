"""Accuracy of subnets that inherit the supernet's weights.

The supernet's batch-norm running statistics mix every path that was sampled,
so they fit no single subnet. A subnet is therefore scored with batch
statistics (BN in training mode, as SPOS does after re-calibrating), and the
supernet's buffers are restored afterwards: evaluating changes nothing.
"""
from __future__ import annotations

import contextlib

import torch

from .distributed import all_reduce_sum


@contextlib.contextmanager
def batch_statistics(net: torch.nn.Module):
    """Inside, batch norm normalises with each batch's statistics; on exit, the buffers
    (running statistics) and the train/eval mode are as they were."""
    saved = {name: b.clone() for name, b in net.named_buffers()}
    was_training = net.training
    net.train()
    try:
        yield net
    finally:
        net.train(was_training)
        with torch.no_grad():
            for name, b in net.named_buffers():
                b.copy_(saved[name])


@torch.no_grad()
def subnet_accuracies(net, archs, loader, device, autocast=contextlib.nullcontext, max_batches=None,
                      channels_last: bool = False) -> list[float]:
    """Top-1 accuracy on `loader` of each genotype in `archs` run as a single path of `net`.
    Under torchrun, each rank passes its shard of the data; the counts are summed over ranks."""
    counts = torch.zeros(len(archs), 2, dtype=torch.float64, device=device)
    with batch_statistics(net):
        for i, arch in enumerate(archs):
            for b, (x, y) in enumerate(loader):
                if max_batches is not None and b >= max_batches:
                    break
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                with autocast():
                    logits = net(x, arch=arch)
                counts[i, 0] += (logits.argmax(1) == y).sum()
                counts[i, 1] += len(y)
    all_reduce_sum(counts)
    return (counts[:, 0] / counts[:, 1].clamp(min=1)).tolist()
