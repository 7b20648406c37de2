"""Training a genotype from scratch: the DARTS protocols, resumable, on CPU or GPUs under torchrun.

    nas-retrain --config configs/cifar10_retrain.yaml --out runs/darts_v2 genotype=darts_v2
    torchrun --nproc_per_node=8 -m retrain --config configs/imagenet_mobile.yaml --out runs/in genotype=darts_v2

Each epoch sets the drop-path rate to drop_path * epoch / epochs (DARTS' linear ramp) and the
learning rate from timm's scheduler (cosine to lr_min, or x decay_rate per epoch), then trains
with SGD, the auxiliary loss weighted by auxiliary_weight, label smoothing and gradient
clipping; EMA weights (timm ModelEmaV3) are kept when ema_decay > 0. Under torchrun the model
is wrapped in DistributedDataParallel and each process takes its share of each global batch.
A checkpoint ends every epoch, and re-running the command resumes from it. The run ends by
writing model.safetensors (the final weights, loadable through timm: retrain.timm_models) and
retrain.json with the test accuracy (with val_fraction, that on the held-out training photos), the
parameters, the mult-adds and the network's settings.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3, accuracy
from torch.nn.parallel import DistributedDataParallel

from supernet.genotype_lookup import resolve_genotype
from supernet.runtime.config import ConfigError, load_config
from supernet.runtime.data import make_loaders
from supernet.runtime.distributed import Dist, all_reduce_sum, device_name, run_unless_finished
from supernet.runtime.loop import TrainLoop, batch_stats

from .sizes import measure
from .spec import NetSpec
from .weights import WEIGHTS_FILE, save_weights

log = logging.getLogger(__name__)

SUMMARY_FILE = "retrain.json"


@dataclass
class RetrainConfig:
    """Settings of `nas-retrain`; the defaults are the DARTS CIFAR-10 protocol. `batch_size` is per process."""
    RERUN_FREE_KEYS: ClassVar[tuple] = ("workers", "max_steps", "log_every", "eval_every")

    genotype: str | dict = "darts_v2"    # zoo cell, search.json, genotype JSON file, or the genotype inline
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
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"   # auto: bf16 on CUDA, off on CPU
    channels_last: bool | None = None    # None: on CUDA only
    compile: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    # > 0: this fraction of the training photos is held out (the split supernet-train and nas-search hold
    # out with the same fraction), the rest trains, and the run reports its accuracy on them (val_acc),
    # never touching the test split: for choosing among cells without looking at the test photos
    val_fraction: float = 0.0
    workers: int = 2
    eval_every: int = 1                  # epochs between test evaluations (the last one always)
    max_steps: int | None = None         # stop (resumably) once this many steps are done in all
    log_every: int = 50

    def __post_init__(self):
        for key in ("C", "layers", "batch_size", "epochs", "eval_every", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


class Retrainer(TrainLoop):
    """One `nas-retrain` run in `out` (see the module docstring)."""
    summary_file = SUMMARY_FILE
    what = "network"
    window_metrics = False   # metrics.jsonl holds one record per epoch, its training figures included

    def __init__(self, cfg: RetrainConfig, out: Path, dist: Dist):
        genotype, convention = resolve_genotype(cfg.genotype)
        self.data = d = make_loaders(cfg.dataset, cfg.data_dir, cfg.batch_size, image_size=cfg.image_size,
                                     val_fraction=cfg.val_fraction, workers=cfg.workers, seed=cfg.seed, download=cfg.download,
                                     cutout=cfg.cutout, rank=dist.rank, world_size=dist.world_size)
        self.train_loader, self.epochs = d.train, cfg.epochs
        self.split = "val" if cfg.val_fraction > 0 else "test"   # the split evaluate() reports
        if getattr(d, self.split) is None:
            raise ConfigError(f"val_fraction {cfg.val_fraction} holds out none of {cfg.dataset}'s training photos")
        super().__init__(cfg, out, dist, amp=cfg.amp, channels_last=cfg.channels_last, grad_clip=cfg.grad_clip,
                         log_every=cfg.log_every, max_steps=cfg.max_steps)
        self.spec = NetSpec(genotype, cfg.C, cfg.layers, d.num_classes, d.image_size, d.in_channels,
                            convention if cfg.convention == "auto" else cfg.convention, cfg.stem_multiplier,
                            cfg.skip_reduction_input)
        self.network = self.spec.to_dict()
        self.sizes = measure(self.spec)
        torch.manual_seed(cfg.seed)
        self.net = self.spec.build(auxiliary=cfg.auxiliary_weight > 0)
        self.prepare_model()
        self.ema = ModelEmaV3(self.net, decay=cfg.ema_decay) if cfg.ema_decay > 0 else None
        model, self.ddp = self.net, dist.enabled
        if self.ddp:
            model = DistributedDataParallel(model, device_ids=[dist.local_rank] if dist.device.type == "cuda" else None)
        self.model = torch.compile(model) if cfg.compile else model
        self.opt = create_optimizer_v2(self.net, opt="momentum", lr=cfg.lr, momentum=cfg.momentum,
                                       weight_decay=cfg.weight_decay, filter_bias_and_bn=False)  # DARTS decays all
        self.sched, _ = create_scheduler_v2(self.opt, sched=cfg.sched, num_epochs=cfg.epochs, min_lr=cfg.lr_min,
                                            decay_epochs=1, decay_rate=cfg.decay_rate,
                                            warmup_epochs=cfg.warmup_epochs, warmup_lr=cfg.lr_min)

    def describe(self) -> str:
        cfg, spec = self.cfg, self.spec
        name = cfg.genotype if isinstance(cfg.genotype, str) else "the inline genotype"
        return (f"{name}, {spec.convention} convention, C={cfg.C}, {cfg.layers} cells: "
                f"{self.sizes['params']} params, {self.sizes['macs'] / 1e6:.1f}M mult-adds at "
                f"{spec.image_size}x{spec.image_size}; {cfg.epochs} epochs on {self.dist.device}")

    def extra_state(self) -> dict:
        return {"ema": self.ema.module.state_dict() if self.ema else None}

    def load_extra_state(self, state: dict):
        if self.ema:
            self.ema.module.load_state_dict(state["ema"])

    # -- training ------------------------------------------------------
    def start_epoch(self, epoch: int):
        self.net.drop_path = self.cfg.drop_path * epoch / self.cfg.epochs
        self.model.train()

    def loss(self, x, y):
        out = self.model(x)
        logits, aux = out if isinstance(out, tuple) else (out, None)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.cfg.label_smoothing)
        if aux is not None:
            loss = loss + self.cfg.auxiliary_weight * F.cross_entropy(
                aux.float(), y, label_smoothing=self.cfg.label_smoothing)
        return loss, logits

    def train_step(self, x, y) -> torch.Tensor:
        with self.autocast():
            loss, logits = self.loss(x, y)
        self.opt.zero_grad(set_to_none=True)
        self.backward(loss)
        self.optimizer_step()
        if self.ema:
            self.ema.update(self.net, step=self.step + 1)
        return batch_stats(loss, logits, y)

    def window_figures(self, totals: list[float]) -> dict:
        return {"train/loss": totals[0] / max(totals[2], 1), "train/acc": totals[1] / max(totals[2], 1)}

    def non_finite_message(self, figures: dict, window_start: int) -> str:
        epoch = (self.step - 1) // self.steps_per_epoch + 1
        return (f"the training loss became {figures['train/loss']} in epoch {epoch}; "
                f"{self.out} keeps the checkpoint before it (try a lower lr, or amp=off)")

    def end_epoch(self, epoch: int, totals: list[float]):
        cfg = self.cfg
        self.last = {"epoch": epoch + 1, "train_loss": totals[0] / totals[2], "train_acc": totals[1] / totals[2]}
        if (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs:
            self.last.update(self.evaluate())
        self.metrics.log(self.step, epoch=epoch + 1, lr=self.opt.param_groups[0]["lr"], drop_path=self.net.drop_path,
                         **{k.replace("_", "/", 1): v for k, v in self.last.items() if k != "epoch"})
        log.info("epoch %d/%d: %s", epoch + 1, cfg.epochs,
                 ", ".join(f"{k} {v:.4f}" for k, v in self.last.items() if k != "epoch"))

    @torch.no_grad()
    def accuracy(self, net) -> tuple[float, float]:
        """(top-1, top-5) on self.split; each rank counts its shard, the counts are summed."""
        net.eval()
        counts = torch.zeros(3, dtype=torch.float64, device=self.dist.device)
        for x, y in getattr(self.data, self.split):
            x, y = self.to_device(x), y.to(self.dist.device, non_blocking=True)
            with self.autocast():
                logits = net(x)
            top1, top5 = accuracy(logits.float(), y, topk=(1, min(5, logits.shape[1])))
            counts += torch.tensor([round(top1.item() * len(y) / 100), round(top5.item() * len(y) / 100), len(y)],
                                   dtype=torch.float64, device=counts.device)
        c = all_reduce_sum(counts).tolist()
        return c[0] / max(c[2], 1), c[1] / max(c[2], 1)

    def evaluate(self) -> dict:
        top1, top5 = self.accuracy(self.net)
        result = {f"{self.split}_acc": top1, f"{self.split}_top5": top5}
        if self.ema:
            result[f"{self.split}_acc_ema"] = self.accuracy(self.ema.module)[0]
        return result

    def summary(self) -> dict:
        cfg = self.cfg
        return {
            "genotype": self.spec.genotype.to_dict(), "genotype_source": cfg.genotype,
            "convention": self.spec.convention, "C": cfg.C, "layers": cfg.layers, **self.sizes,
            "dataset": cfg.dataset, "image_size": self.spec.image_size, "classes": self.data.classes, "epochs": cfg.epochs,
            **{k: v for k, v in self.last.items() if k != "epoch"},
            "wall_time_s": round(self.elapsed(), 3), "world_size": self.dist.world_size,
            "global_batch": cfg.batch_size * self.dist.world_size, "amp": cfg.amp,
            "device": device_name(self.dist.device), "network": self.network, "weights": WEIGHTS_FILE,
        }

    def finish(self) -> dict:
        if self.dist.is_main:   # the weights first: a run whose retrain.json exists has them
            save_weights(self.net, self.spec, self.out / WEIGHTS_FILE)
        return super().finish()


def retrain(cfg: RetrainConfig, out) -> dict | None:
    """Train (or resume, or do nothing if finished) the run in `out`; the summary, None if stopped early."""
    return run_unless_finished(out, SUMMARY_FILE, cfg.device, lambda dist: Retrainer(cfg, out, dist))


def train_from_argv(argv=None):
    cfg, out = load_config(RetrainConfig, argv, description="Train a genotype from scratch.")
    return retrain(cfg, out)
