"""The one training loop of every command that trains weights (supernet-train, nas-retrain, the
relaxed search): device, autocast and scaler, the optimizer step with clipping, the non-finite loss
stop, checkpoints with the same-network check, steps and epochs with `max_steps` and an exact resume,
metrics and progress.

A subclass builds its network, optimizer, scheduler and data, then supplies only what differs:

    train_step(x, y, *step_inputs())   one update; returns the stats its window sums (batch_stats)
    window_figures(totals)             the figures of a window of summed stats: {"train/loss": ...}
    end_epoch(epoch, totals)           what an epoch's end evaluates and records (self.last, metrics)
    summary()                          the final JSON
    non_finite_message(figures, start) the one line that stops a run whose loss is no longer finite

A run goes step by step through epochs of `train_loader`. The figures of a window (log_every
steps, or up to a checkpoint) are summed over ranks, checked and logged; a checkpoint ends every
epoch, every `checkpoint_every` steps and a stop at `max_steps`. Re-running resumes from the last
checkpoint bit-exactly: the epoch cut short is replayed up to where it was (the same batches and
augmentations), then the RNG states are restored. `run()` returns the summary, or None when the
run stopped early at `max_steps`.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import ClassVar

import torch

from ..errors import UserError
from .checkpoint import check_same_network, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .config import to_dict
from .data import resume_epoch
from .distributed import Dist, all_reduce_sum, average_gradients, barrier
from .files import write_json
from .metrics import MetricsLog, Progress
from .precision import NonFiniteLossError, mixed_precision, uses_channels_last

log = logging.getLogger(__name__)


class OutOfMemory(UserError):
    """A step that did not fit the device's memory."""


def batch_stats(loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(loss sum, correct, count) of one batch, in float64, for summing over steps and ranks."""
    return torch.stack([loss.detach().double() * len(y), (logits.detach().argmax(1) == y).sum().double(),
                        torch.tensor(len(y), dtype=torch.float64, device=y.device)])


class TrainLoop:
    summary_file: ClassVar[str | None] = None   # the final JSON the loop writes (None: its caller writes one)
    what: ClassVar[str] = "network"             # a foreign checkpoint is "of another <what>"
    optimizer_key: ClassVar[str] = "optimizer"  # the optimizer's key in the checkpoint
    window_metrics: ClassVar[bool] = True       # record every window in metrics.jsonl (else the console only)
    memory_keys: ClassVar[str] = "batch_size, image_size or C"   # what a run out of memory can lower

    def __init__(self, cfg, out, dist: Dist, *, amp: str, channels_last: bool | None, grad_clip: float,
                 log_every: int, accum_steps: int = 1, max_steps: int | None = None, checkpoint_every: int = 0):
        self.cfg, self.out, self.dist = cfg, Path(out), dist
        self.autocast, self.scaler = mixed_precision(amp, dist.device)
        self.channels_last = uses_channels_last(channels_last, dist.device)
        self.grad_clip, self.log_every, self.accum_steps = grad_clip, log_every, accum_steps
        self.max_steps, self.checkpoint_every = max_steps, checkpoint_every
        self.ddp = False   # whether the model (DistributedDataParallel) averages the gradients over ranks itself
        # what a checkpoint carries besides weights and optimizer states
        self.step, self.train_time, self.last = 0, 0.0, {}
        self.epoch_totals: torch.Tensor | None = None
        self.saved_rng = None   # RNG states to restore once the resumed epoch is where it was

    # -- what a subclass sets up: net, model, opt, sched, train_loader, epochs, network ---------------
    model: torch.nn.Module      # what the forward pass calls (the net, or its DDP / compiled wrapper)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def elapsed(self) -> float:
        """Seconds spent on this run, over every process that worked on it."""
        return time.perf_counter() - self.t_start

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dist.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x

    def prepare_model(self):
        """Move the net to the device (channels_last where set)."""
        self.net.to(self.dist.device)
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        if not hasattr(self, "model"):
            self.model = self.net

    # -- the update ------------------------------------------------------------------------------
    def micro_batches(self, x, y):
        """The `accum_steps` micro-batches of a step (each normalised on its own)."""
        return zip(x.chunk(self.accum_steps), y.chunk(self.accum_steps))

    def backward(self, loss: torch.Tensor):
        self.scaler.scale(loss / self.accum_steps).backward()

    def optimizer_step(self):
        """Average the gradients over ranks (unless DDP did), clip, step, update the scaler."""
        params = list(self.net.parameters())
        if not self.ddp:
            average_gradients(params)
        if self.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()

    # -- hooks -------------------------------------------------------------------------------------
    def step_inputs(self) -> tuple:
        """What `train_step` takes besides the batch (the supernet's path, the search's validation batch)."""
        return ()

    def start_epoch(self, epoch: int):
        self.model.train()

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict):
        pass

    def describe(self) -> str:
        return f"{self.total_steps} steps on {self.dist.device}"

    # -- checkpoints -------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.net.state_dict(), self.optimizer_key: self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(), "rng": rng_state(),
                "step": self.step, "train_time": self.elapsed(), "epoch_totals": self.epoch_totals.cpu(),
                "last": self.last, "network": self.network, "config": to_dict(self.cfg), **self.extra_state()}

    def save(self):
        if self.dist.is_main:
            save_checkpoint(self.out, self.state())
        barrier()

    def restore(self) -> bool:
        state = load_checkpoint(self.out)
        if state is None:
            return False
        check_same_network(state["network"], self.network, self.out, self.what)
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state[self.optimizer_key])
        self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.train_time, self.last = state["step"], state["train_time"], state["last"]
        self.epoch_totals = state["epoch_totals"].to(self.dist.device)
        self.saved_rng = state["rng"]
        self.load_extra_state(state)
        log.info("resuming %s at step %d/%d", self.out, self.step, self.total_steps)
        return True

    # -- the loop ----------------------------------------------------------------------------------
    def run(self) -> dict | None:
        """Train to the end (the summary) or to max_steps (None)."""
        resumed = self.restore()
        self.t_start = time.perf_counter() - self.train_time
        self.metrics = MetricsLog(self.out, enabled=self.dist.is_main, resume_step=self.step)
        self.progress = Progress(self.total_steps, self.step, self.train_loader.batch_size * self.dist.world_size)
        if not resumed:
            log.info("%s", self.describe())
        try:
            while self.step < self.total_steps:
                if self.max_steps is not None and self.step >= self.max_steps:
                    log.info("stopped at step %d of %d; re-run to continue", self.step, self.total_steps)
                    return None
                self.run_epoch()
            return self.finish()
        except torch.OutOfMemoryError:
            raise OutOfMemory(f"the GPU ran out of memory at step {self.step}; {self.out} keeps its last good "
                              f"checkpoint: lower {self.memory_keys}") from None
        finally:
            self.metrics.close()

    def run_epoch(self):
        epoch, done = divmod(self.step, self.steps_per_epoch)
        batches = resume_epoch(self.train_loader, epoch, done)
        if self.saved_rng is not None:
            set_rng_state(self.saved_rng)
            self.saved_rng = None
        self.sched.step(epoch)   # an epoch-wise schedule; a per-update one steps below
        self.start_epoch(epoch)
        window, window_start = None, self.step
        for x, y in batches:
            stats = self.train_step(self.to_device(x), y.to(self.dist.device, non_blocking=True), *self.step_inputs())
            window = stats if window is None else window + stats
            self.step += 1
            self.sched.step_update(self.step)
            end_of_epoch = self.step % self.steps_per_epoch == 0
            stop = self.max_steps is not None and self.step >= self.max_steps
            checkpoint = end_of_epoch or stop or (self.checkpoint_every and self.step % self.checkpoint_every == 0)
            if checkpoint or self.step % self.log_every == 0:
                self.log_window(window, window_start)
                window, window_start = None, self.step
            if end_of_epoch:
                totals = all_reduce_sum(self.epoch_totals.clone()).tolist()
                self.epoch_totals.zero_()
                self.end_epoch(epoch, totals)
            if checkpoint:
                self.save()
            if stop:
                return

    def log_window(self, window: torch.Tensor, window_start: int):
        """Sum the window's stats over ranks, stop on a non-finite loss, log the figures."""
        figures = self.window_figures(all_reduce_sum(window.clone()).tolist())
        if not all(math.isfinite(v) for v in figures.values()):
            raise NonFiniteLossError(self.non_finite_message(figures, window_start))
        self.epoch_totals = window if self.epoch_totals is None else self.epoch_totals + window
        figures["lr"] = self.opt.param_groups[0]["lr"]
        if self.window_metrics:
            self.metrics.log(self.step, epoch=self.step / self.steps_per_epoch, **figures)
        log.info("%s | %s", self.progress.line(self.step), " ".join(f"{k} {v:.4g}" for k, v in figures.items()))

    def finish(self) -> dict:
        summary = self.summary()
        if self.dist.is_main and self.summary_file:
            write_json(self.out / self.summary_file, summary, indent=2)
            log.info("done: %s", self.out / self.summary_file)
        return summary
