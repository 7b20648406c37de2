"""Supernet training: uniform single-path sampling, one architecture per step on every rank.

    python -m supernet.train --config configs/digits_supernet.yaml --out runs/supernet [key=value ...]
    torchrun --nproc_per_node=2 -m supernet.train --config configs/digits_supernet.yaml --out runs/supernet

Each step samples a genotype uniformly from the space (from a generator seeded
by (seed, step), so every rank draws the same one), trains that path with SGD,
a per-update cosine schedule and gradient clipping, and averages the gradients
over ranks. Every epoch it checkpoints and scores `eval_subnets` fixed random
subnets on the validation split. Re-running the same command on the same run
directory resumes exactly where the last checkpoint left off; on a finished
run it does nothing. The run ends by writing `supernet.json`.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2

from .checkpoint import check_same_network, load_checkpoint, rng_state, save_checkpoint, seed_all, set_rng_state
from .cli import command
from .config import ConfigError, load_config, to_dict
from .data import make_loaders, resume_epoch
from .distributed import (
    Dist,
    all_reduce_sum,
    average_gradients,
    barrier,
    broadcast_parameters,
    run_unless_finished,
)
from .evaluate import subnet_accuracies
from .files import write_atomic
from .metrics import MetricsLog, Progress
from .model import SuperNet
from .precision import NonFiniteLossError, mixed_precision
from .space import get_space

log = logging.getLogger(__name__)

SUMMARY_FILE = "supernet.json"
TRAIN_STREAM, EVAL_STREAM = 0, 1     # independent random streams derived from the seed


@dataclass
class TrainConfig:
    """Settings of `supernet-train`; `batch_size` is per process (the global batch is N times it)."""
    RERUN_FREE_KEYS: ClassVar[tuple] = ("workers", "max_steps", "log_every")

    space: str = "nasnet"
    C: int = 8
    layers: int = 5
    stem: Literal["auto", "cifar", "imagenet"] = "auto"    # auto: imagenet when image_size > 64
    dataset: str = "digits"
    data_dir: str = "data"
    download: bool = False
    image_size: int | None = None        # None: the dataset's own
    val_fraction: float = 0.1            # of the training pool, held out for search
    batch_size: int = 64
    accum_steps: int = 1                 # micro-batches per step (each normalised on its own)
    epochs: int = 10
    lr: float = 0.05
    lr_min: float = 0.0
    warmup_epochs: int = 0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0               # 0: off
    amp: Literal["bf16", "fp16", "off"] = "bf16"
    channels_last: bool | None = None    # None: on CUDA only
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    workers: int = 2
    eval_subnets: int = 5
    eval_every: int = 1                  # epochs (the last epoch always evaluates)
    eval_batches: int | None = None      # None: the whole validation split
    checkpoint_every: int = 0            # steps; 0: at the end of each epoch only
    max_steps: int | None = None         # stop (resumably) once this many steps are done in all
    log_every: int = 20

    def __post_init__(self):
        for key in ("C", "layers", "batch_size", "accum_steps", "epochs", "eval_every", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.batch_size % self.accum_steps:
            raise ConfigError(f"batch_size ({self.batch_size}) must be a multiple of accum_steps ({self.accum_steps})")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


def sample_arch(space, seed: int, step: int):
    """The genotype trained at `step`: uniform, and the same on every rank."""
    return space.sample(np.random.default_rng([seed, TRAIN_STREAM, step]))


def eval_archs(space, seed: int, k: int):
    """The `k` fixed random genotypes scored during and after training."""
    rng = np.random.default_rng([seed, EVAL_STREAM])
    return [space.sample(rng) for _ in range(k)]


def build_supernet(space: str, C: int, layers: int, num_classes: int, in_channels: int, stem: str) -> SuperNet:
    return SuperNet(get_space(space), C=C, layers=layers, num_classes=num_classes, stem=stem, in_channels=in_channels)


def load_supernet(run_dir, map_location="cpu") -> SuperNet:
    """The supernet of a `supernet-train` run directory, with its latest checkpointed weights."""
    state = load_checkpoint(run_dir, map_location)
    if state is None:
        raise FileNotFoundError(f"{run_dir} holds no supernet checkpoint; "
                                f"train one with supernet-train --out {run_dir}")
    net = build_supernet(**state["model_args"])
    net.load_state_dict(state["model"])
    return net


class Trainer:
    """One `supernet-train` run in `out` (see the module docstring)."""

    def __init__(self, cfg: TrainConfig, out: Path, dist: Dist):
        self.cfg, self.out, self.dist = cfg, Path(out), dist
        self.space = get_space(cfg.space)
        self.data = make_loaders(cfg.dataset, cfg.data_dir, cfg.batch_size, image_size=cfg.image_size,
                                 val_fraction=cfg.val_fraction, workers=cfg.workers, seed=cfg.seed,
                                 download=cfg.download, rank=dist.rank, world_size=dist.world_size)
        d = self.data
        stem = cfg.stem if cfg.stem != "auto" else ("imagenet" if d.image_size > 64 else "cifar")
        self.model_args = {"space": cfg.space, "C": cfg.C, "layers": cfg.layers, "num_classes": d.num_classes,
                           "in_channels": d.in_channels, "stem": stem}
        seed_all(cfg.seed)   # model init, and in-process augmentation
        self.net = build_supernet(**self.model_args).to(dist.device)
        broadcast_parameters(self.net)
        self.channels_last = dist.device.type == "cuda" if cfg.channels_last is None else cfg.channels_last
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.steps_per_epoch = len(d.train)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.opt = create_optimizer_v2(self.net, opt="momentum", lr=cfg.lr, momentum=cfg.momentum,
                                       weight_decay=cfg.weight_decay)
        self.sched, _ = create_scheduler_v2(self.opt, sched="cosine", num_epochs=cfg.epochs, min_lr=cfg.lr_min,
                                            warmup_epochs=cfg.warmup_epochs, warmup_lr=cfg.lr_min,
                                            step_on_epochs=False, updates_per_epoch=self.steps_per_epoch)
        self.autocast, self.scaler = mixed_precision(cfg.amp, dist.device)
        self.archs = eval_archs(self.space, cfg.seed, cfg.eval_subnets)
        # progress that a checkpoint carries
        self.step, self.t_start = 0, time.perf_counter()
        self.epoch_stats = torch.zeros(3, dtype=torch.float64, device=dist.device)  # loss sum, correct, count
        self.last = {}   # the latest epoch's figures: train loss/acc, val accuracies
        self.rng = None

    def elapsed(self) -> float:
        """Seconds spent on this run, over every process that worked on it."""
        return time.perf_counter() - self.t_start

    # -- checkpoints ---------------------------------------------------
    def state(self) -> dict:
        return {"model": self.net.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(),
                "rng": rng_state(), "step": self.step, "train_time": self.elapsed(),
                "epoch_stats": self.epoch_stats.cpu(), "last": self.last,
                "model_args": self.model_args, "config": to_dict(self.cfg)}

    def save(self):
        if self.dist.is_main:
            save_checkpoint(self.out, self.state())
        barrier()

    def restore(self) -> bool:
        state = load_checkpoint(self.out)
        if state is None:
            return False
        check_same_network(state["model_args"], self.model_args, self.out, "supernet")
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.last = state["step"], state["last"]
        self.t_start = time.perf_counter() - state["train_time"]   # count the time of the earlier processes
        self.epoch_stats = state["epoch_stats"].to(self.dist.device)
        self.rng = state["rng"]     # restored once the resumed epoch's data is where it was
        log.info("resuming %s at step %d/%d", self.out, self.step, self.total_steps)
        return True

    # -- one step --------------------------------------------------------
    def train_step(self, x, y, arch) -> torch.Tensor:
        """Forward/backward over the micro-batches, average gradients over ranks, clip, update.
        Returns (loss sum, correct, count) of this rank's batch."""
        cfg, params = self.cfg, list(self.net.parameters())
        self.opt.zero_grad(set_to_none=True)   # a path's unused params keep no gradient and are not updated
        stats = torch.zeros(3, dtype=torch.float64, device=x.device)
        for xs, ys in zip(x.chunk(cfg.accum_steps), y.chunk(cfg.accum_steps)):
            with self.autocast():
                logits = self.net(xs, arch=arch)
                loss = F.cross_entropy(logits.float(), ys)
            self.scaler.scale(loss / cfg.accum_steps).backward()
            stats += torch.stack([loss.detach().double() * len(ys), (logits.argmax(1) == ys).sum().double(),
                                  torch.tensor(len(ys), dtype=torch.float64, device=x.device)])
        average_gradients(params)
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step_update(self.step + 1)
        return stats

    # -- the loop --------------------------------------------------------
    def run(self) -> dict | None:
        """Train to the end (returns the summary) or to max_steps (returns None)."""
        cfg = self.cfg
        resumed = self.restore()
        metrics = MetricsLog(self.out, enabled=self.dist.is_main, resume_step=self.step)
        progress = Progress(self.total_steps, self.step, cfg.batch_size * self.dist.world_size)
        if not resumed:
            log.info("supernet: %d params; %d steps of %d x %d images on %s", _count(self.net), self.total_steps,
                     cfg.batch_size, self.dist.world_size, self.dist.device)
        try:
            while self.step < self.total_steps:
                if cfg.max_steps is not None and self.step >= cfg.max_steps:
                    log.info("stopped at max_steps=%d; re-run to continue", cfg.max_steps)
                    return None
                self.run_epoch(metrics, progress)
            return self.finish()
        finally:
            metrics.close()

    def run_epoch(self, metrics: MetricsLog, progress: Progress):
        cfg = self.cfg
        epoch, done = divmod(self.step, self.steps_per_epoch)
        batches = resume_epoch(self.data.train, epoch, done)
        if self.rng is not None:
            set_rng_state(self.rng)
            self.rng = None
        window = torch.zeros_like(self.epoch_stats)
        window_start = self.step
        for x, y in batches:
            x = x.to(self.dist.device, non_blocking=True)
            y = y.to(self.dist.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            window += self.train_step(x, y, sample_arch(self.space, cfg.seed, self.step))
            self.step += 1
            end_of_epoch = self.step % self.steps_per_epoch == 0
            stop = cfg.max_steps is not None and self.step >= cfg.max_steps
            checkpoint = end_of_epoch or stop or (cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0)
            if checkpoint or self.step % cfg.log_every == 0:
                self.log_window(window, window_start, metrics, progress)
                window.zero_()
                window_start = self.step
            if end_of_epoch:
                self.end_epoch(epoch, metrics)
            if checkpoint:
                self.save()
            if stop:
                return

    def log_window(self, window, window_start, metrics, progress):
        """Sum the window's stats over ranks, stop on a non-finite loss, log loss/acc/lr."""
        total = all_reduce_sum(window.clone()).tolist()
        loss, acc = total[0] / max(total[2], 1), total[1] / max(total[2], 1)
        if not math.isfinite(loss):
            raise NonFiniteLossError(
                f"the training loss became {loss} between steps {window_start} and {self.step}; the run stopped, "
                f"and {self.out} keeps its last good checkpoint (try a lower lr, or amp=off)")
        self.epoch_stats += window
        lr = self.opt.param_groups[0]["lr"]
        metrics.log(self.step, epoch=self.step / self.steps_per_epoch,
                    **{"train/loss": loss, "train/acc": acc, "lr": lr})
        log.info("%s | loss %.4f acc %.4f lr %.4g", progress.line(self.step), loss, acc, lr)

    def end_epoch(self, epoch: int, metrics: MetricsLog):
        cfg, d = self.cfg, self.data
        total = all_reduce_sum(self.epoch_stats.clone()).tolist()
        self.epoch_stats.zero_()
        self.last = {"epoch": epoch + 1, "train_loss": total[0] / total[2], "train_acc": total[1] / total[2]}
        last_epoch = epoch + 1 == cfg.epochs
        if d.val is not None and self.archs and ((epoch + 1) % cfg.eval_every == 0 or last_epoch):
            accs = subnet_accuracies(self.net, self.archs, d.val, self.dist.device, self.autocast,
                                     cfg.eval_batches, self.channels_last)
            self.last["val_acc"] = accs
            metrics.log(self.step, epoch=epoch + 1, **{"val/acc_mean": float(np.mean(accs)),
                                                       "val/acc_max": max(accs), "val/acc": accs})
            log.info("epoch %d/%d: val accuracy of %d subnets: mean %.4f, best %.4f", epoch + 1, cfg.epochs,
                     len(accs), np.mean(accs), max(accs))

    def finish(self) -> dict:
        cfg, last = self.cfg, self.last
        accs = last.get("val_acc")
        summary = {
            "epochs": cfg.epochs, "steps": self.step, "train_loss": last["train_loss"], "train_acc": last["train_acc"],
            "val_acc_mean": float(np.mean(accs)) if accs else None, "val_acc": accs,
            "eval_subnets": [g.to_dict() for g in self.archs], "params": _count(self.net),
            "wall_time_s": round(self.elapsed(), 3), "device": _device_name(self.dist.device),
            "world_size": self.dist.world_size, "global_batch": cfg.batch_size * self.dist.world_size,
            "amp": cfg.amp, "space": cfg.space, "dataset": cfg.dataset,
        }
        if self.dist.is_main:
            write_atomic(self.out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
            log.info("done: %s", self.out / SUMMARY_FILE)
        return summary


def _count(net) -> int:
    return sum(p.numel() for p in net.parameters())


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def train(cfg: TrainConfig, out) -> dict | None:
    """Train (or resume, or do nothing if finished) the run in `out`; the summary, None if stopped early."""
    return run_unless_finished(out, SUMMARY_FILE, cfg.device, lambda dist: Trainer(cfg, out, dist))


@command
def main(argv=None):
    cfg, out = load_config(TrainConfig, argv, description="Train a weight-sharing supernet (single path).")
    train(cfg, out)


if __name__ == "__main__":
    main()
