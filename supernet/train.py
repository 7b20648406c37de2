"""Supernet training: what each step trains is drawn the same on every rank.

    python -m supernet.train --config configs/digits_supernet.yaml --out runs/supernet [key=value ...]
    torchrun --nproc_per_node=2 -m supernet.train --config configs/digits_supernet.yaml --out runs/supernet

Each step draws its paths from a generator seeded by (seed, step), so every rank draws the same
(`sampling`, see sample_paths: Bender et al.'s path dropout by default, uniform single paths as in
SPOS, or FairNAS's fair sets of them) and trains them with the config's optimizer, a per-update
cosine schedule and gradient clipping, and averages the gradients over ranks. It checkpoints at the
end of every epoch (and every `checkpoint_every` steps), and every `eval_every` epochs scores
`eval_subnets` fixed random subnets on the validation split (supernet.scoring). With `runs` above 1
it is that many independent runs of successive seeds (IndependentRuns): a genotype's score averages
its scores on each of them. The defaults are the recipe that docs/options.md measured.
Re-running the same command on the same run directory resumes exactly where the last checkpoint
left off; on a finished run it does nothing. The run ends by writing `supernet.json`. The loop
itself (checkpoints, resume, AMP, clipping, metrics) is supernet.runtime.loop's.
"""
from __future__ import annotations

import copy
import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2

from .model import SuperNetSpec
from .runtime.checkpoint import SUPERNET_FILE, seed_all
from .runtime.cli import command
from .runtime.config import ConfigError, load_config, save_config
from .runtime.data import make_loaders, set_epoch, take_batches
from .runtime.distributed import Dist, all_reduce_sum, broadcast_parameters, device_name, run_unless_finished
from .runtime.files import write_json
from .runtime.loop import TrainLoop, batch_stats
from .runtime.memory import GB, PROBE_IMAGES, MemoryPlan, StepPlan, default_budget
from .scoring import Scoring, score_counts
from .space import get_space

log = logging.getLogger(__name__)

SUMMARY_FILE = SUPERNET_FILE
TRAIN_STREAM, EVAL_STREAM = 0, 1   # independent random streams of the seed


@dataclass
class TrainConfig:
    """Settings of `supernet-train`; the defaults are the recipe (docs/options.md), so a config needs only
    its data, size and budget. `batch_size` is per process (the global batch is N times it)."""
    RERUN_FREE_KEYS: ClassVar[tuple] = ("workers", "max_steps", "log_every", "memory_budget")

    space: str = "nasnet"
    C: int = 8
    layers: int = 5
    op_bn: bool = True                   # BN after the ops that have none (pools, identity), in supernet and subnets
    sampling: Literal["dropout", "uniform", "fair"] = "dropout"   # see sample_paths
    keep_start: float = 1.0              # dropout: the share of each decision's choices kept at the first step ...
    keep_end: float = 0.0                # ... and from `keep_decay` of the steps on (linear in between; 0: one choice)
    keep_decay: float = 0.5              # dropout: the share of the steps over which keep falls, then holds
    dropout_mix: Literal["mean", "sum"] = "mean"   # dropout: how a slot combines its kept choices
    runs: int = 1                        # > 1: that many independent runs, run k as a run of seed + k would be,
    #                                      one after the other; a genotype scores the mean of its scores on them
    stem: Literal["auto", "cifar", "imagenet"] = "auto"    # auto: imagenet when image_size > 64
    dataset: str = "digits"
    data_dir: str = "data"
    download: bool = False
    image_size: int | None = None        # None: the dataset's own
    val_fraction: float = 0.1            # of the training pool, held out for search
    batch_size: int = 64
    accum_steps: int = 1                 # micro-batches per step (each normalised on its own)
    epochs: int = 10
    opt: Literal["adamw", "momentum"] = "adamw"
    lr: float = 1e-3
    lr_min: float = 0.0
    warmup_epochs: int = 0
    momentum: float = 0.9                # opt: momentum
    weight_decay: float = 3e-4
    grad_clip: float = 5.0               # 0: off
    amp: Literal["auto", "bf16", "fp16", "off"] = "auto"   # auto: bf16 on CUDA, off on CPU
    channels_last: bool | None = None    # None: on CUDA only
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 0
    workers: int = 2
    eval_subnets: int = 5
    eval_every: int = 1                  # epochs (the last epoch always evaluates)
    eval_batches: int | None = None      # None: the whole validation split
    scoring: Scoring = field(default_factory=Scoring)   # how subnets are scored, here and by nas-search
    memory_budget: float | None = None   # GB a step may take; None: a share of the memory available
    #                                      (supernet.runtime.memory: steps checkpointed or split to fit)
    checkpoint_every: int = 0            # steps; 0: at the end of each epoch only
    max_steps: int | None = None         # stop (resumably) once this many steps are done in all
    log_every: int = 20

    def __post_init__(self):
        if not 0 < self.keep_decay <= 1:
            raise ConfigError(f"keep_decay must be in (0, 1], got {self.keep_decay}")
        for key in ("C", "layers", "batch_size", "accum_steps", "runs", "epochs", "eval_every", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.batch_size % self.accum_steps:
            raise ConfigError(f"batch_size ({self.batch_size}) must be a multiple of accum_steps ({self.accum_steps})")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.memory_budget is not None and self.memory_budget <= 0:
            raise ConfigError(f"memory_budget must be above 0 (GB), got {self.memory_budget}")


def sample_paths(space, seed: int, step: int, sampling: str = "dropout", keep: float = 1.0,
                 mix: str = "mean") -> list[dict]:
    """What step `step` trains, the same on every rank, as the supernet's forward arguments:
    - dropout: one relaxed path in which each decision keeps each of its choices with probability
      `keep` (one at least): all the ops of the kept inputs of a slot run, as in the one-shot model
      of Bender et al. 2018 with path dropout, and `mix` says how the slot combines them: their sum
      (Bender et al.'s) or their mean. The sum grows with the terms kept where a scored subnet sums
      two per block; the mean stays within one term's scale, and with one choice kept it is that
      single path;
    - uniform: one genotype drawn uniformly (a single path, as in SPOS);
    - fair: FairNAS's strict fairness, one single path per op, in which every op-decision takes
      each op exactly once and every input-decision its inputs as evenly as they divide."""
    rng = np.random.default_rng([seed, TRAIN_STREAM, step])
    if sampling == "uniform":
        return [{"arch": space.sample(rng)}]
    if sampling == "fair":
        paths = len(space.ops)
        columns = [rng.permutation(np.resize(rng.permutation(d.num_choices), paths)) for d in space.decisions]
        return [{"arch": space.decode([column[i] for column in columns])} for i in range(paths)]
    masks = []
    for d in space.decisions:
        kept = rng.random(d.num_choices) < keep
        kept[rng.integers(d.num_choices)] |= not kept.any()
        share = kept.sum() if mix == "mean" else 1.0
        masks.append(torch.from_numpy((kept / share).astype(np.float32)))
    return [{"weights": masks}]


def keep_share(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Path dropout's keep probability at `step`: linear from keep_start at step 0 to keep_end at
    `keep_decay` of the last step, keep_end from there on."""
    progress = min(step / max(cfg.keep_decay * (total_steps - 1), 1), 1.0)
    return cfg.keep_start + (cfg.keep_end - cfg.keep_start) * progress


def eval_archs(space, seed: int, k: int):
    """The `k` fixed random genotypes scored during and after training."""
    rng = np.random.default_rng([seed, EVAL_STREAM])
    return [space.sample(rng) for _ in range(k)]


class Trainer(TrainLoop):
    """One `supernet-train` run in `out` (see the module docstring)."""
    summary_file = SUMMARY_FILE
    what = "supernet"
    memory_keys = "batch_size, image_size or C, or memory_budget"

    def __init__(self, cfg: TrainConfig, out: Path, dist: Dist):
        super().__init__(cfg, out, dist, amp=cfg.amp, channels_last=cfg.channels_last, grad_clip=cfg.grad_clip,
                         log_every=cfg.log_every, accum_steps=cfg.accum_steps, max_steps=cfg.max_steps,
                         checkpoint_every=cfg.checkpoint_every)
        self.space = get_space(cfg.space)
        self.data = d = make_loaders(cfg.dataset, cfg.data_dir, cfg.batch_size, image_size=cfg.image_size,
                                     val_fraction=cfg.val_fraction, workers=cfg.workers, seed=cfg.seed,
                                     download=cfg.download, rank=dist.rank, world_size=dist.world_size)
        stem = cfg.stem if cfg.stem != "auto" else ("imagenet" if d.image_size > 64 else "cifar")
        spec = SuperNetSpec(cfg.space, cfg.C, cfg.layers, d.num_classes, d.in_channels, stem, op_bn=cfg.op_bn)
        self.network = spec.to_dict()
        seed_all(cfg.seed)   # model init, and in-process augmentation
        self.net = spec.build()
        self.prepare_model()
        broadcast_parameters(self.net)
        self.train_loader, self.epochs = d.train, cfg.epochs
        extra = {"momentum": cfg.momentum} if cfg.opt == "momentum" else {}
        self.opt = create_optimizer_v2(self.net, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay, **extra)
        self.sched, _ = create_scheduler_v2(self.opt, sched="cosine", num_epochs=cfg.epochs, min_lr=cfg.lr_min,
                                            warmup_epochs=cfg.warmup_epochs, warmup_lr=cfg.lr_min,
                                            step_on_epochs=False, updates_per_epoch=self.steps_per_epoch)
        self.archs = eval_archs(self.space, cfg.seed, cfg.eval_subnets)
        # the subnets are scored as nas-search scores them, on images fixed once (this rank's share)
        set_epoch(d.train, 0)
        self.scoring_batches = take_batches(d.train, cfg.scoring.train_batches, dist.device, self.channels_last)
        self.validation = (take_batches(d.val, cfg.eval_batches, dist.device, self.channels_last)
                           if d.val is not None else [])
        budget = (int(cfg.memory_budget * GB) if cfg.memory_budget else
                  default_budget(dist.device, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
        images = self.scoring_batches[0][0][:PROBE_IMAGES]
        self.memory = MemoryPlan(copy.deepcopy(self.net), images, cfg.batch_size, cfg.accum_steps, budget, self.autocast)
        first = sample_paths(self.space, cfg.seed, 0, cfg.sampling, cfg.keep_start, cfg.dropout_mix)[0]
        self.costliest = self.memory.dense if cfg.sampling == "dropout" else self.memory.kept(first)
        self.memory.plan(self.costliest)   # refused before training where nothing fits
        self.step_plan = None

    def describe(self) -> str:
        return (f"supernet: {_count(self.net)} params; {self.total_steps} steps of {self.cfg.batch_size} x "
                f"{self.dist.world_size} images on {self.dist.device}; {self.memory.describe(self.costliest)}")

    def step_inputs(self) -> tuple:
        cfg = self.cfg
        paths = sample_paths(self.space, cfg.seed, self.step, cfg.sampling,
                             keep_share(cfg, self.step, self.total_steps), cfg.dropout_mix)
        plan = max((self.memory.step(path) for path in paths), key=lambda p: (p.checkpoint, p.micro_batches))
        if plan != self.step_plan:
            log.info("steps from %d on run %s", self.step, "as they are" if not plan.checkpoint else
                     f"with their ops checkpointed, in {plan.micro_batches} micro-batch(es)")
            self.step_plan = plan
        return ([{k: [w.to(self.dist.device) for w in v] if k == "weights" else v for k, v in path.items()}
                 for path in paths], plan)

    def train_step(self, x, y, paths, plan: StepPlan) -> torch.Tensor:
        """Forward/backward of each of `paths` (the supernet's forward arguments) over the micro-batches,
        checkpointed where `plan` says, their gradients averaged; then the update. Returns (loss sum,
        correct, count) of this rank's batch, summed over `paths`."""
        self.opt.zero_grad(set_to_none=True)   # the params no path used keep no gradient and are not updated
        self.accum_steps = plan.micro_batches
        stats = 0
        for xs, ys in self.micro_batches(x, y):
            for path in paths:
                with self.autocast():
                    logits = self.model(xs, **path, checkpoint=plan.checkpoint)
                    loss = F.cross_entropy(logits.float(), ys)
                self.backward(loss / len(paths))
                stats = stats + batch_stats(loss, logits, ys)
        self.optimizer_step()
        return stats

    def window_figures(self, totals: list[float]) -> dict:
        return {"train/loss": totals[0] / max(totals[2], 1), "train/acc": totals[1] / max(totals[2], 1)}

    def non_finite_message(self, figures: dict, window_start: int) -> str:
        return (f"the training loss became {figures['train/loss']} between steps {window_start} and {self.step}; "
                f"the run stopped, and {self.out} keeps its last good checkpoint (try a lower lr, or amp=off)")

    def end_epoch(self, epoch: int, totals: list[float]):
        cfg = self.cfg
        self.last = {"epoch": epoch + 1, "train_loss": totals[0] / totals[2], "train_acc": totals[1] / totals[2]}
        last_epoch = epoch + 1 == cfg.epochs
        if self.validation and self.archs and ((epoch + 1) % cfg.eval_every == 0 or last_epoch):
            accs = self.subnet_accuracies()
            self.last["val_acc"] = accs
            self.metrics.log(self.step, epoch=epoch + 1, **{"val/acc_mean": float(np.mean(accs)),
                                                            "val/acc_max": max(accs), "val/acc": accs})
            log.info("epoch %d/%d: val accuracy of %d subnets: mean %.4f, best %.4f", epoch + 1, cfg.epochs,
                     len(accs), np.mean(accs), max(accs))

    def subnet_accuracies(self) -> list[float]:
        """The validation accuracy of each of `archs` (supernet.scoring; the accuracy whatever the scoring's
        metric), summed over the ranks' shards."""
        counts = torch.tensor([score_counts(self.net, g, self.scoring_batches, self.validation, self.cfg.scoring,
                                            self.autocast, self.channels_last)
                               for g in self.archs], dtype=torch.float64, device=self.dist.device)
        all_reduce_sum(counts)
        return (counts[:, 0] / counts[:, -1].clamp(min=1)).tolist()

    def summary(self) -> dict:
        cfg, last = self.cfg, self.last
        accs = last.get("val_acc")
        return {
            "epochs": cfg.epochs, "steps": self.step, "train_loss": last["train_loss"], "train_acc": last["train_acc"],
            "val_acc_mean": float(np.mean(accs)) if accs else None, "val_acc": accs,
            "eval_subnets": [g.to_dict() for g in self.archs], "params": _count(self.net),
            "wall_time_s": round(self.elapsed(), 3), "device": device_name(self.dist.device),
            "world_size": self.dist.world_size, "global_batch": cfg.batch_size * self.dist.world_size,
            "amp": cfg.amp, "space": cfg.space, "dataset": cfg.dataset, "image_size": self.data.image_size,
            "classes": self.data.classes,
        }


def _count(net) -> int:
    return sum(p.numel() for p in net.parameters())


class IndependentRuns:
    """A run of `runs` > 1: run k trains in `out/run<k>`, a run directory of its own (config, checkpoints,
    summary) as `supernet-train seed=<seed + k> runs=1` would make it, one after the other. They are
    the run's supernets: a genotype's score is the mean of its scores on each (load_supernets). Runs
    of other seeds share nothing, so their errors differ, and the mean of a few short runs' scores
    ranks cells better than one long run of the same training time (docs/options.md). `max_steps`
    counts each run's steps from 0, as a plain run's."""

    def __init__(self, cfg: TrainConfig, out: Path, dist: Dist):
        self.cfg, self.out, self.dist = cfg, Path(out), dist

    def run(self) -> dict | None:
        summaries = []
        for k in range(self.cfg.runs):
            cfg, where = replace(self.cfg, seed=self.cfg.seed + k, runs=1), self.out / f"run{k}"
            if self.dist.is_main:
                save_config(cfg, where)
            finished = where / SUMMARY_FILE
            summary = json.loads(finished.read_text()) if finished.exists() else Trainer(cfg, where, self.dist).run()
            if summary is None:
                return None
            summaries.append(summary)
        accs = [s["val_acc"] for s in summaries]
        val_acc = np.mean(accs, axis=0).tolist() if all(accs) else None
        summary = {**summaries[0], "val_acc": val_acc, "val_acc_mean": float(np.mean(val_acc)) if val_acc else None,
                   "wall_time_s": round(sum(s["wall_time_s"] for s in summaries), 3), "runs": summaries}
        if self.dist.is_main:
            write_json(self.out / SUMMARY_FILE, summary, indent=2)
            log.info("done: %s (%d supernets)", self.out / SUMMARY_FILE, len(summaries))
        return summary


def train(cfg: TrainConfig, out) -> dict | None:
    """Train (or resume, or do nothing if finished) the run in `out`; the summary, None if stopped early."""
    def runner(dist):
        return Trainer(cfg, out, dist) if cfg.runs == 1 else IndependentRuns(cfg, out, dist)
    return run_unless_finished(out, SUMMARY_FILE, cfg.device, runner)


@command
def main(argv=None):
    cfg, out = load_config(TrainConfig, argv, description="Train a weight-sharing supernet.")
    train(cfg, out)


if __name__ == "__main__":
    main()
