"""Sizes of the network a NetSpec describes (counted as supernet.sizes counts them).

`measure` builds the network on the meta device, so even the large models cost
neither memory nor compute.
"""
from __future__ import annotations

import torch

from supernet.sizes import count_macs, count_params

from .spec import NetSpec


def measure(spec: NetSpec) -> dict:
    """{"params": ..., "macs": ...} of the network `spec` describes."""
    with torch.device("meta"):
        net = spec.build()
    return {"params": count_params(net), "macs": count_macs(net, spec.image_size, spec.in_channels)}
