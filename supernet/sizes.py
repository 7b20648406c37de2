"""Parameter and mult-add counts of a network, as the papers count them.

Parameters exclude the auxiliary head (a training-only branch). Mult-adds are half
the FLOPs that torch.utils.flop_counter counts for one image in eval mode:
convolutions (depthwise included) and the classifier; pooling, BN, ReLU and additions
are not counted (as in the papers' conv + FC counts).
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def count_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for name, p in net.named_parameters() if not name.startswith("aux_head."))


def count_macs(net: torch.nn.Module, image_size: int, in_channels: int = 3) -> int:
    """Mult-adds of one forward pass of one image (eval mode; the net's mode is restored)."""
    device = next(net.parameters()).device
    x = torch.zeros(1, in_channels, image_size, image_size, device=device)
    was_training = net.training
    net.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(x)
    finally:
        net.train(was_training)
    return counter.get_total_flops() // 2
