"""Numerics shared by every training loop: the mixed-precision switch and the non-finite loss stop."""
from __future__ import annotations

import contextlib
import functools

import torch

from ..errors import UserError
from .config import ConfigError


def mixed_precision(amp: str, device: torch.device):
    """(autocast context factory, GradScaler) for amp in auto | bf16 | fp16 | off; auto is bf16 on CUDA
    and off on CPU, where bf16 autocast is slow unless the CPU computes bf16 natively."""
    device = torch.device(device)
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" else "off"
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("amp=fp16 needs CUDA; use amp=bf16 or amp=off on CPU")
    if amp == "off":
        return contextlib.nullcontext, torch.amp.GradScaler(device.type, enabled=False)
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    autocast = functools.partial(torch.autocast, device.type, dtype=dtype)
    return autocast, torch.amp.GradScaler(device.type, enabled=amp == "fp16")


def uses_channels_last(setting: bool | None, device) -> bool:
    """A `channels_last` setting resolved for `device` (None: on CUDA only)."""
    return torch.device(device).type == "cuda" if setting is None else setting


class NonFiniteLossError(UserError):
    """The training loss became NaN or infinite."""
