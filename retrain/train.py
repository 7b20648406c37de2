"""Training a genotype from scratch: the DARTS protocols, resumable, on CPU or GPUs under torchrun.

    nas-retrain --config configs/cifar10_retrain.yaml --out runs/darts_v2 genotype=darts_v2
    torchrun --nproc_per_node=8 -m retrain --config configs/imagenet_mobile.yaml --out runs/in genotype=darts_v2

Each epoch sets the drop-path rate to drop_path * epoch / epochs (DARTS' linear ramp) and the
learning rate from timm's scheduler (cosine to lr_min, or x decay_rate per epoch), then trains
with SGD, the auxiliary loss weighted by auxiliary_weight, label smoothing and gradient
clipping; EMA weights (timm ModelEmaV3) are kept when ema_decay > 0. Under torchrun the model
is wrapped in DistributedDataParallel and each process takes its share of each global batch.
A checkpoint ends every epoch, and re-running the command resumes from it. The run ends by
writing retrain.json with the test accuracy, the parameters and the mult-adds.
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel

from supernet.checkpoint import check_same_network, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from supernet.config import ConfigError, load_config, to_dict
from supernet.data import make_loaders, set_epoch
from supernet.distributed import Dist, all_reduce_sum, barrier, run_unless_finished
from supernet.files import write_atomic
from supernet.metrics import MetricsLog, Progress
from supernet.precision import NonFiniteLossError, mixed_precision

from .genotype_source import resolve_genotype
from .sizes import measure
from .spec import NetSpec

log = logging.getLogger(__name__)

SUMMARY_FILE = "retrain.json"


@dataclass
class RetrainConfig:
    """Settings of `nas-retrain`; the defaults are the DARTS CIFAR-10 protocol. `batch_size` is per process."""
    RERUN_FREE_KEYS: ClassVar[tuple] = ("workers", "max_epochs", "log_every", "eval_every")

    genotype: str = "darts_v2"           # zoo cell, search.json or genotype JSON file
    convention: Literal["auto", "darts", "nasnet"] = "auto"   # auto: the genotype's own
    C: int = 36
    layers: int = 20
    stem_multiplier: int = 3
    skip_reduction_input: bool = False
    dataset: str = "cifar10"
    data_dir: str = "data"
    download: bool = False
    image_size: int | None = None        # None: the dataset's own
    batch_size: int = 96
    epochs: int = 600
    lr: float = 0.025
    lr_min: float = 0.0
    sched: Literal["cosine", "step"] = "cosine"
    decay_rate: float = 0.97             # step: lr x decay_rate after every epoch
    warmup_epochs: int = 0
    momentum: float = 0.9
    weight_decay: float = 3e-4
    label_smoothing: float = 0.0
    cutout: int = 16                     # 0: off
    drop_path: float = 0.2               # reached at the last epoch
    auxiliary_weight: float = 0.4        # 0: no auxiliary head
    grad_clip: float = 5.0               # 0: off
    ema_decay: float = 0.0               # 0: off
    amp: Literal["bf16", "fp16", "off"] = "bf16"
    channels_last: bool | None = None    # None: on CUDA only
    compile: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    workers: int = 2
    eval_every: int = 1                  # epochs between test evaluations (the last one always)
    max_epochs: int | None = None        # stop (resumably) once this many epochs are done in all
    log_every: int = 50

    def __post_init__(self):
        for key in ("C", "layers", "batch_size", "epochs", "eval_every", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")


class Retrainer:
    """One `nas-retrain` run in `out` (see the module docstring)."""

    def __init__(self, cfg: RetrainConfig, out: Path, dist: Dist):
        self.cfg, self.out, self.dist = cfg, Path(out), dist
        genotype, convention = resolve_genotype(cfg.genotype)
        self.data = d = make_loaders(cfg.dataset, cfg.data_dir, cfg.batch_size, image_size=cfg.image_size,
                                     val_fraction=0.0, workers=cfg.workers, seed=cfg.seed, download=cfg.download,
                                     cutout=cfg.cutout, rank=dist.rank, world_size=dist.world_size)
        self.spec = NetSpec(genotype, cfg.C, cfg.layers, d.num_classes, d.image_size, d.in_channels,
                            convention if cfg.convention == "auto" else cfg.convention, cfg.stem_multiplier,
                            cfg.skip_reduction_input)
        self.sizes = measure(self.spec)
        torch.manual_seed(cfg.seed)
        self.net = self.spec.build(auxiliary=cfg.auxiliary_weight > 0).to(dist.device)
        self.channels_last = dist.device.type == "cuda" if cfg.channels_last is None else cfg.channels_last
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.ema = ModelEmaV3(self.net, decay=cfg.ema_decay) if cfg.ema_decay > 0 else None
        model = self.net
        if dist.enabled:
            model = DistributedDataParallel(model, device_ids=[dist.local_rank] if dist.device.type == "cuda" else None)
        self.model = torch.compile(model) if cfg.compile else model
        self.opt = create_optimizer_v2(self.net, opt="momentum", lr=cfg.lr, momentum=cfg.momentum,
                                       weight_decay=cfg.weight_decay, filter_bias_and_bn=False)  # DARTS decays all
        self.sched, _ = create_scheduler_v2(self.opt, sched=cfg.sched, num_epochs=cfg.epochs, min_lr=cfg.lr_min,
                                            decay_epochs=1, decay_rate=cfg.decay_rate,
                                            warmup_epochs=cfg.warmup_epochs, warmup_lr=cfg.lr_min)
        self.autocast, self.scaler = mixed_precision(cfg.amp, dist.device)
        self.epoch, self.step, self.train_time, self.last = 0, 0, 0.0, {}

    # -- checkpoints ---------------------------------------------------
    def save(self):
        if self.dist.is_main:
            save_checkpoint(self.out, {
                "model": self.net.state_dict(), "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(), "scaler": self.scaler.state_dict(),
                "ema": self.ema.module.state_dict() if self.ema else None, "rng": rng_state(),
                "epoch": self.epoch, "step": self.step, "train_time": self.elapsed(), "last": self.last,
                "spec": self.spec.to_dict(), "config": to_dict(self.cfg)})
        barrier()

    def restore(self) -> bool:
        state = load_checkpoint(self.out, map_location=self.dist.device)
        if state is None:
            return False
        check_same_network(state["spec"], self.spec.to_dict(), self.out, "network")
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema:
            self.ema.module.load_state_dict(state["ema"])
        set_rng_state(state["rng"])
        self.epoch, self.step, self.train_time, self.last = (state["epoch"], state["step"], state["train_time"],
                                                             state["last"])
        log.info("resuming %s after epoch %d/%d", self.out, self.epoch, self.cfg.epochs)
        return True

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    # -- training ------------------------------------------------------
    def loss(self, x, y):
        out = self.model(x)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.cfg.label_smoothing)
        if aux is not None:
            loss = loss + self.cfg.auxiliary_weight * F.cross_entropy(
                aux.float(), y, label_smoothing=self.cfg.label_smoothing)
        return loss, logits

    def train_epoch(self, metrics: MetricsLog, progress: Progress):
        cfg, dev = self.cfg, self.dist.device
        set_epoch(self.data.train, self.epoch)
        self.sched.step(self.epoch)
        self.net.drop_path = cfg.drop_path * self.epoch / cfg.epochs
        self.model.train()
        stats = torch.zeros(3, dtype=torch.float64, device=dev)   # loss sum, correct, count
        for x, y in self.data.train:
            x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.autocast():
                loss, logits = self.loss(x, y)
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                self.scaler.unscale_(self.opt)
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.grad_clip)
            self.scaler.step(self.opt)
            self.scaler.update()
            self.step += 1
            if self.ema:
                self.ema.update(self.net, step=self.step)
            stats += torch.stack([loss.detach().double() * len(y), (logits.argmax(1) == y).sum().double(),
                                  torch.tensor(len(y), dtype=torch.float64, device=dev)])
            if self.step % cfg.log_every == 0:
                log.info("%s | loss %.4f", progress.line(self.step), loss.item())
        total = all_reduce_sum(stats).tolist()
        self.epoch += 1
        self.last = {"epoch": self.epoch, "train_loss": total[0] / total[2], "train_acc": total[1] / total[2]}
        if not math.isfinite(self.last["train_loss"]):
            raise NonFiniteLossError(f"the training loss became {self.last['train_loss']} in epoch {self.epoch}; "
                                     f"{self.out} keeps the checkpoint before it (try a lower lr, or amp=off)")
        if self.epoch % cfg.eval_every == 0 or self.epoch == cfg.epochs:
            self.last.update(self.evaluate())
        metrics.log(self.step, epoch=self.epoch, lr=self.opt.param_groups[0]["lr"], drop_path=self.net.drop_path,
                    **{k.replace("_", "/", 1): v for k, v in self.last.items() if k != "epoch"})
        log.info("epoch %d/%d: %s", self.epoch, cfg.epochs,
                 ", ".join(f"{k} {v:.4f}" for k, v in self.last.items() if k != "epoch"))

    @torch.no_grad()
    def accuracy(self, net) -> tuple[float, float]:
        """(top-1, top-5) on the test split; each rank counts its shard, the counts are summed."""
        net.eval()
        counts = torch.zeros(3, dtype=torch.float64, device=self.dist.device)
        for x, y in self.data.test:
            x, y = x.to(self.dist.device, non_blocking=True), y.to(self.dist.device, non_blocking=True)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self.autocast():
                logits = net(x)
            top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
            counts += torch.stack([(top5[:, 0] == y).sum(), (top5 == y[:, None]).any(1).sum(),
                                   torch.tensor(len(y), device=y.device)]).double()
        c = all_reduce_sum(counts).tolist()
        return c[0] / max(c[2], 1), c[1] / max(c[2], 1)

    def evaluate(self) -> dict:
        top1, top5 = self.accuracy(self.net)
        result = {"test_acc": top1, "test_top5": top5}
        if self.ema:
            result["test_acc_ema"] = self.accuracy(self.ema.module)[0]
        return result

    def run(self) -> dict | None:
        cfg = self.cfg
        resumed = self.restore()
        self.t_start = time.perf_counter() - self.train_time
        metrics = MetricsLog(self.out, enabled=self.dist.is_main, resume_step=self.step)
        steps_per_epoch = len(self.data.train)
        progress = Progress(cfg.epochs * steps_per_epoch, self.step, cfg.batch_size * self.dist.world_size)
        if not resumed:
            log.info("%s, %s convention, C=%d, %d cells: %d params, %.1fM mult-adds at %dx%d; %d epochs on %s",
                     cfg.genotype, self.spec.convention, cfg.C, cfg.layers, self.sizes["params"],
                     self.sizes["macs"] / 1e6, self.spec.image_size, self.spec.image_size, cfg.epochs,
                     self.dist.device)
        try:
            while self.epoch < cfg.epochs:
                if cfg.max_epochs is not None and self.epoch >= cfg.max_epochs:
                    log.info("stopped at max_epochs=%d; re-run to continue", cfg.max_epochs)
                    return None
                self.train_epoch(metrics, progress)
                self.save()
            return self.finish()
        finally:
            metrics.close()

    def finish(self) -> dict:
        cfg = self.cfg
        summary = {
            "genotype": self.spec.genotype.to_dict(), "genotype_source": cfg.genotype,
            "convention": self.spec.convention, "C": cfg.C, "layers": cfg.layers, **self.sizes,
            "dataset": cfg.dataset, "image_size": self.spec.image_size, "epochs": cfg.epochs,
            **{k: v for k, v in self.last.items() if k != "epoch"},
            "wall_time_s": round(self.elapsed(), 3), "world_size": self.dist.world_size,
            "global_batch": cfg.batch_size * self.dist.world_size, "amp": cfg.amp,
            "device": torch.cuda.get_device_name(self.dist.device) if self.dist.device.type == "cuda" else "cpu",
        }
        if self.dist.is_main:
            write_atomic(self.out / SUMMARY_FILE, json.dumps(summary, indent=2) + "\n")
            log.info("done: test accuracy %.4f; %s", summary["test_acc"], self.out / SUMMARY_FILE)
        return summary


def retrain(cfg: RetrainConfig, out) -> dict | None:
    """Train (or resume, or do nothing if finished) the run in `out`; the summary, None if stopped early."""
    return run_unless_finished(out, SUMMARY_FILE, cfg.device, lambda dist: Retrainer(cfg, out, dist))


def train_from_argv(argv=None):
    cfg, out = load_config(RetrainConfig, argv, description="Train a genotype from scratch.")
    return retrain(cfg, out)
