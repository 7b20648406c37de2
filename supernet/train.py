"""Supernet training: what each step trains is drawn the same on every rank.

    python -m supernet.train --config configs/digits_supernet.yaml --out runs/supernet [key=value ...]
    torchrun --nproc_per_node=2 -m supernet.train --config configs/digits_supernet.yaml --out runs/supernet

Each step draws its paths from a generator seeded by (seed, step), so every rank draws the same
(`sampling`, see sample_paths: uniform single paths, FairNAS's fair sets of them, or Bender et
al.'s path dropout) and trains them, with `distill_paths` as many uniformly drawn single paths
towards their predictions (in-place distillation, see distill_loss), with the config's optimizer,
a per-update cosine schedule and gradient clipping, and averages the gradients over ranks. It
checkpoints at the end of every epoch (and every `checkpoint_every` steps), and every `eval_every`
epochs scores `eval_subnets` fixed random subnets on the validation split (supernet.scoring). With
`branches` above 1 the run forks where the paths become single into that many continuations of the
same weights, each with its own draws (BranchedRun); with `runs` above 1 it is that many
independent runs of successive seeds (IndependentRuns): a genotype's score averages its scores on
each of a run's supernets.
Re-running the same command on the same run directory resumes exactly where the last checkpoint
left off; on a finished run it does nothing. The run ends by writing `supernet.json`. The loop
itself (checkpoints, resume, AMP, clipping, metrics) is supernet.runtime.loop's.
"""
from __future__ import annotations

import json
import logging
import math
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.utils import ModelEmaV3

from .model import SuperNetSpec
from .runtime.checkpoint import LATEST, SUPERNET_FILE, load_checkpoint, seed_all
from .runtime.cli import command
from .runtime.config import ConfigError, load_config, save_config
from .runtime.data import make_loaders, set_epoch, take_batches
from .runtime.distributed import Dist, all_reduce_sum, barrier, broadcast_parameters, device_name, run_unless_finished
from .runtime.files import write_json
from .runtime.loop import TrainLoop, batch_stats
from .scoring import Metric, Scoring, score_counts, scoring_from
from .space import CELL_TYPES, get_space

log = logging.getLogger(__name__)

SUMMARY_FILE = SUPERNET_FILE
TRAIN_STREAM, EVAL_STREAM, DISTILL_STREAM, SHRINK_STREAM = 0, 1, 2, 3   # independent random streams of the seed
# how judge_ops scores a path: BN on each batch's own statistics (the supernet's running ones are the mixture's)
JUDGE_SCORING = Scoring(bn="batch", metric="probability")


@dataclass
class TrainConfig:
    """Settings of `supernet-train`; `batch_size` is per process (the global batch is N times it)."""
    RERUN_FREE_KEYS: ClassVar[tuple] = ("workers", "max_steps", "log_every")

    space: str = "nasnet"
    C: int = 8
    layers: int = 5
    op_bn: bool = False                  # BN after the ops that have none (pools, identity), in supernet and subnets
    share_ops: Literal["none", "inputs", "blocks"] = "none"   # which terms of a cell share op weights (model.SHARE_KEYS)
    sampling: Literal["uniform", "fair", "dropout"] = "uniform"   # see sample_paths
    paths_per_step: int = 1              # uniform: paths whose gradients each step averages (fair: one per op)
    keep_start: float = 0.5              # dropout: the share of each decision's choices kept, first step ...
    keep_end: float = 0.15               # ... and from `keep_decay` of the steps on (linear in between)
    keep_decay: float = 1.0              # dropout: the share of the steps over which keep falls, then holds
    dropout_mix: Literal["sum", "sqrt", "mean"] = "mean"   # dropout: how a slot combines its kept choices
    distill_paths: int = 0               # single paths a step also trains towards the sampled paths' predictions
    shrink_ops: int = 0                  # dropout: ops of each cell type that the steps from the fork (keep_decay of
    #                                      the steps) on no longer sample, those the supernet then judges worst
    #                                      (judge_ops: progressive shrinking of the space, in one stage)
    shrink_paths: int = 100              # random single paths that judge the ops at the fork
    branches: int = 1                    # > 1: from the fork (keep_decay of the steps) on, that many continuations
    #                                      of the same weights, branch k with the draws of seed + k; a genotype
    #                                      scores the mean of its scores on them (BranchedRun)
    runs: int = 1                        # > 1: that many independent runs, run k as a run of seed + k would be,
    #                                      one after the other; a genotype scores the mean of its scores on
    #                                      them (IndependentRuns)
    ema_decay: float = 0.0               # > 0: keep, score and save an exponential moving average of the weights
    stem: Literal["auto", "cifar", "imagenet"] = "auto"    # auto: imagenet when image_size > 64
    dataset: str = "digits"
    data_dir: str = "data"
    download: bool = False
    image_size: int | None = None        # None: the dataset's own
    val_fraction: float = 0.1            # of the training pool, held out for search
    batch_size: int = 64
    accum_steps: int = 1                 # micro-batches per step (each normalised on its own)
    epochs: int = 10
    opt: Literal["momentum", "adamw"] = "momentum"
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
    # how the subnets are scored, as nas-search scores them (supernet.scoring)
    calibration_batches: int = 5         # training batches that recalibrate BN before a subnet is scored
    finetune_steps: int = 0              # SGD steps of each subnet from the inherited weights before that
    finetune_lr: float = 0.05
    head: Literal["inherited", "refit"] = "inherited"   # refit: each subnet's classifier refit to its own features
    metric: Metric = "accuracy"          # what searches and tools/ranking.py rank the subnets
    #                                      by; the subnets' figures here are their accuracy whatever it is
    checkpoint_every: int = 0            # steps; 0: at the end of each epoch only
    max_steps: int | None = None         # stop (resumably) once this many steps are done in all
    log_every: int = 20

    def __post_init__(self):
        if self.distill_paths < 0:
            raise ConfigError(f"distill_paths must be at least 0, got {self.distill_paths}")
        if not 0 < self.keep_decay <= 1:
            raise ConfigError(f"keep_decay must be in (0, 1], got {self.keep_decay}")
        if self.shrink_ops and (self.sampling != "dropout" or not 0 < self.shrink_ops < len(get_space(self.space).ops)
                                or self.shrink_paths < 1):
            raise ConfigError(f"shrink_ops ({self.shrink_ops}) needs sampling: dropout, fewer ops than the space's "
                              f"{len(get_space(self.space).ops)} and shrink_paths of at least 1 ({self.shrink_paths})")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        for key in ("C", "layers", "batch_size", "accum_steps", "paths_per_step", "branches", "runs", "epochs", "eval_every",
                    "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.batch_size % self.accum_steps:
            raise ConfigError(f"batch_size ({self.batch_size}) must be a multiple of accum_steps ({self.accum_steps})")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")


def sample_paths(space, seed: int, step: int, sampling: str = "uniform", count: int = 1,
                 keep: float = 1.0, mix: str = "mean", allowed: list[np.ndarray] | None = None) -> list[dict]:
    """What step `step` trains, the same on every rank, as the supernet's forward arguments:
    - uniform: `count` genotypes drawn uniformly (single paths);
    - fair: FairNAS's strict fairness, one single path per op, in which every op-decision takes
      each op exactly once and every input-decision its inputs as evenly as they divide;
    - dropout: one relaxed path in which each decision keeps each of its choices with probability
      `keep` (one at least): all the ops of the kept inputs of a slot run, as in the one-shot model
      of Bender et al. 2018 with path dropout, and `mix` says how the slot combines them: their sum
      (Bender et al.'s), their sum over the square root of their count, or their mean. The sum grows
      with the terms kept (dozens early on) where a scored subnet sums two per block; the mean stays
      within one term's scale, and with one choice kept it is that single path (README, "The
      recipe, and why"). `allowed` (one boolean mask per decision, see allowed_choices) limits the
      choices it keeps; with every choice allowed the draws are those without it."""
    rng = np.random.default_rng([seed, TRAIN_STREAM, step])
    if sampling == "uniform":
        return [{"arch": space.sample(rng)} for _ in range(count)]
    if sampling == "fair":
        paths = len(space.ops)
        columns = [rng.permutation(np.resize(rng.permutation(d.num_choices), paths)) for d in space.decisions]
        return [{"arch": space.decode([column[i] for column in columns])} for i in range(paths)]
    masks = []
    for i, d in enumerate(space.decisions):
        free = np.ones(d.num_choices, dtype=bool) if allowed is None else allowed[i]
        kept = (rng.random(d.num_choices) < keep) & free
        choices = np.flatnonzero(free)
        kept[choices[rng.integers(len(choices))]] |= not kept.any()
        share = {"sum": 1.0, "sqrt": np.sqrt(kept.sum()), "mean": kept.sum()}[mix]
        masks.append(torch.from_numpy((kept / share).astype(np.float32)))
    return [{"weights": masks}]


def allowed_choices(space, pruned: dict[str, list[str]]) -> list[np.ndarray]:
    """One boolean mask per decision of `space`: every choice but the ops `pruned` names for its cell type."""
    return [np.array([d.kind == "input" or op not in pruned.get(d.cell, ()) for op in
                      (space.ops if d.kind == "op" else range(d.num_choices))]) for d in space.decisions]


def worst_ops(space, genotypes, scores, count: int) -> dict[str, list[str]]:
    """For each cell type, the `count` ops of `space` whose `genotypes` scored lowest on average, each
    genotype weighted by how many of its cell's blocks use the op (an op no genotype uses is kept)."""
    scores = np.asarray(scores, dtype=np.float64)
    worst = {}
    for cell in CELL_TYPES:
        uses = np.array([[sum(used == op for used, _ in getattr(g, cell)) for op in space.ops] for g in genotypes])
        total = uses.sum(0)
        mean = np.where(total > 0, uses.T @ scores / np.maximum(total, 1), np.inf)
        worst[cell] = [space.ops[i] for i in np.argsort(mean, kind="stable")[:count]]
    return worst


def keep_share(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Path dropout's keep probability at `step`: linear from keep_start at step 0 to keep_end at
    `keep_decay` of the last step, keep_end from there on."""
    progress = min(step / max(cfg.keep_decay * (total_steps - 1), 1), 1.0)
    return cfg.keep_start + (cfg.keep_end - cfg.keep_start) * progress


def distill_students(space, seed: int, step: int, count: int) -> list:
    """The `count` uniformly drawn single paths that step `step` distills into (their own stream: the
    step's sampled paths are the same with or without them)."""
    rng = np.random.default_rng([seed, DISTILL_STREAM, step])
    return [space.sample(rng) for _ in range(count)]


def distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of the class distributions, per image: in-place distillation (the
    sandwich rule's small networks of BigNAS and Once-for-All), here the single paths that scoring
    runs learning from the relaxed path the supernet trains, whose predictions they otherwise fall
    far below (README, "The recipe, and why")."""
    return F.kl_div(F.log_softmax(student, 1), F.log_softmax(teacher, 1), log_target=True, reduction="batchmean")


def eval_archs(space, seed: int, k: int):
    """The `k` fixed random genotypes scored during and after training."""
    rng = np.random.default_rng([seed, EVAL_STREAM])
    return [space.sample(rng) for _ in range(k)]


class Trainer(TrainLoop):
    """One `supernet-train` run in `out` (see the module docstring)."""
    summary_file = SUMMARY_FILE
    what = "supernet"

    def __init__(self, cfg: TrainConfig, out: Path, dist: Dist, branch: int = 0):
        super().__init__(cfg, out, dist, amp=cfg.amp, channels_last=cfg.channels_last, grad_clip=cfg.grad_clip,
                         log_every=cfg.log_every, accum_steps=cfg.accum_steps, max_steps=cfg.max_steps,
                         checkpoint_every=cfg.checkpoint_every)
        self.space = get_space(cfg.space)
        self.draws = cfg.seed + branch   # the seed of the paths and the batch order (BranchedRun)
        self.data = d = make_loaders(cfg.dataset, cfg.data_dir, cfg.batch_size, image_size=cfg.image_size,
                                     val_fraction=cfg.val_fraction, workers=cfg.workers, seed=self.draws,
                                     download=cfg.download, rank=dist.rank, world_size=dist.world_size)
        stem = cfg.stem if cfg.stem != "auto" else ("imagenet" if d.image_size > 64 else "cifar")
        spec = SuperNetSpec(cfg.space, cfg.C, cfg.layers, d.num_classes, d.in_channels, stem, op_bn=cfg.op_bn,
                           share_ops=cfg.share_ops)
        self.network = spec.to_dict()
        seed_all(cfg.seed)   # model init, and in-process augmentation
        self.net = spec.build()
        self.prepare_model()
        broadcast_parameters(self.net)
        # the averaged weights that scoring, the checkpoint's "ema" and so nas-search use (timm's EMA)
        self.ema = ModelEmaV3(self.net, decay=cfg.ema_decay) if cfg.ema_decay else None
        self.train_loader, self.epochs = d.train, cfg.epochs
        extra = {"momentum": cfg.momentum} if cfg.opt == "momentum" else {}
        self.opt = create_optimizer_v2(self.net, opt=cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay, **extra)
        self.sched, _ = create_scheduler_v2(self.opt, sched="cosine", num_epochs=cfg.epochs, min_lr=cfg.lr_min,
                                            warmup_epochs=cfg.warmup_epochs, warmup_lr=cfg.lr_min,
                                            step_on_epochs=False, updates_per_epoch=self.steps_per_epoch)
        self.archs = eval_archs(self.space, cfg.seed, cfg.eval_subnets)
        # the subnets are scored as nas-search scores them, on images fixed once (this rank's share)
        set_epoch(d.train, 0)
        self.scoring = scoring_from(asdict(cfg))
        self.scoring_batches = take_batches(d.train, self.scoring.train_batches, dist.device, self.channels_last)
        self.validation = (take_batches(d.val, cfg.eval_batches, dist.device, self.channels_last)
                           if d.val is not None else [])
        self.prune(None)

    def describe(self) -> str:
        return (f"supernet: {_count(self.net)} params; {self.total_steps} steps of {self.cfg.batch_size} x "
                f"{self.dist.world_size} images on {self.dist.device}")

    def step_inputs(self) -> tuple:
        cfg = self.cfg
        if cfg.shrink_ops and self.pruned is None and self.step >= fork_step(cfg, self.total_steps):
            self.prune(self.judge_ops())
            log.info("step %d: the single paths no longer sample %s", self.step,
                     "; ".join(f"{cell}: {', '.join(ops)}" for cell, ops in self.pruned.items()))
        paths = sample_paths(self.space, self.draws, self.step, cfg.sampling, cfg.paths_per_step,
                             keep_share(cfg, self.step, self.total_steps),
                             cfg.dropout_mix, self.allowed)
        return ([{k: [w.to(self.dist.device) for w in v] if k == "weights" else v for k, v in path.items()}
                 for path in paths], distill_students(self.space, self.draws, self.step, cfg.distill_paths))

    def train_step(self, x, y, paths, students) -> torch.Tensor:
        """Forward/backward of each of `paths` (the supernet's forward arguments) over the micro-batches,
        their gradients averaged, and of each single path of `students` towards the paths' mean
        prediction (distill_loss, one term per student); then the update. Returns (loss sum, correct,
        count) of this rank's batch, summed over `paths`."""
        self.opt.zero_grad(set_to_none=True)   # the params no path used keep no gradient and are not updated
        stats = 0
        for xs, ys in self.micro_batches(x, y):
            teacher = 0
            for path in paths:
                with self.autocast():
                    logits = self.model(xs, **path)
                    loss = F.cross_entropy(logits.float(), ys)
                self.backward(loss / len(paths))
                stats = stats + batch_stats(loss, logits, ys)
                teacher = teacher + logits.detach().float() / len(paths)
            for genotype in students:
                with self.autocast():
                    student = self.model(xs, arch=genotype)
                self.backward(distill_loss(student.float(), teacher))
        self.optimizer_step()
        if self.ema is not None:
            self.ema.update(self.net)
        return stats

    def prune(self, pruned: dict[str, list[str]] | None):
        """Sample no more of the ops `pruned` names per cell type (shrink_ops; None: every op)."""
        self.pruned = pruned
        self.allowed = None if pruned is None else allowed_choices(self.space, pruned)

    def judge_ops(self) -> dict[str, list[str]]:
        """The `shrink_ops` ops of each cell type that `shrink_paths` random single paths (the same on
        every rank, each scored on one of the fixed scoring batches by JUDGE_SCORING) say are worst:
        worst_ops of their true-class probabilities."""
        cfg, batches = self.cfg, self.scoring_batches
        rng = np.random.default_rng([cfg.seed, SHRINK_STREAM])
        paths = [self.space.sample(rng) for _ in range(cfg.shrink_paths)]
        counts = torch.tensor([score_counts(self.scored_net, g, [], [batches[i % len(batches)]], JUDGE_SCORING,
                                            self.autocast, self.channels_last) for i, g in enumerate(paths)],
                              dtype=torch.float64, device=self.dist.device)
        all_reduce_sum(counts)
        return worst_ops(self.space, paths, (counts[:, 1] / counts[:, -1]).tolist(), cfg.shrink_ops)

    def extra_state(self) -> dict:
        return {"pruned": self.pruned, **({"ema": self.ema.module.state_dict()} if self.ema is not None else {})}

    def load_extra_state(self, state: dict):
        self.prune(state.get("pruned"))
        if self.ema is not None:
            self.ema.module.load_state_dict(state["ema"])

    @property
    def scored_net(self):
        """The weights the run's subnets inherit: the moving average where one is kept."""
        return self.ema.module if self.ema is not None else self.net

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
        counts = torch.tensor([score_counts(self.scored_net, g, self.scoring_batches, self.validation, self.scoring,
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
            "amp": cfg.amp, "space": cfg.space, "dataset": cfg.dataset, "pruned_ops": self.pruned,
        }


def _count(net) -> int:
    return sum(p.numel() for p in net.parameters())


def fork_step(cfg: TrainConfig, total_steps: int) -> int:
    """The first step at which path dropout keeps keep_end (single paths, in the configs' recipe): where
    the branches of a run fork."""
    return math.ceil(cfg.keep_decay * (total_steps - 1))


def finish_each(members) -> list[dict] | None:
    """The summary of each (directory, trainer factory) of `members`, in order: a finished one's read
    from its directory, the others trained (or resumed); None as soon as one stops early."""
    summaries = []
    for where, trainer in members:
        finished = where / SUMMARY_FILE
        summary = json.loads(finished.read_text()) if finished.exists() else trainer().run()
        if summary is None:
            return None
        summaries.append(summary)
    return summaries


def write_joint_summary(out: Path, dist: Dist, summaries: list[dict], wall_time_s: float, **extra) -> dict:
    """The summary of a run of several supernets, written to `out` (by the main process): the first
    one's, with the subnet accuracies averaged over them, `wall_time_s` and `extra`."""
    accs = [s["val_acc"] for s in summaries]
    val_acc = np.mean(accs, axis=0).tolist() if all(accs) else None
    summary = {**summaries[0], "val_acc": val_acc, "val_acc_mean": float(np.mean(val_acc)) if val_acc else None,
               "wall_time_s": round(wall_time_s, 3), **extra}
    if dist.is_main:
        write_json(out / SUMMARY_FILE, summary, indent=2)
        log.info("done: %s (%d supernets)", out / SUMMARY_FILE, len(summaries))
    return summary


class BranchedRun:
    """A run of `branches` > 1: the trunk trains in `out` up to the fork (fork_step), then branch k in
    `out/branch<k>` starts from the trunk's checkpoint and trains to the end with the draws (paths and
    batch order) of seed + k, as a run of that seed resumed from there would. The branches are the
    run's supernets: a genotype's score is the mean of its scores on each (load_supernets). The
    single-path steps after the fork cost little beside the dense mixture's before it, yet the
    branches keep most of what the trunk learnt and so rank much as it does (README, "The recipe, and
    why"). Each branch is a run directory of its own, resumed where it stopped; `max_steps` counts each
    branch's steps from 0, as a plain run's."""

    def __init__(self, cfg: TrainConfig, out: Path, dist: Dist):
        self.cfg, self.out, self.dist = cfg, Path(out), dist

    def run(self) -> dict | None:
        cfg, out, dist = self.cfg, self.out, self.dist
        trunk = Trainer(cfg, out, dist)
        fork = fork_step(cfg, trunk.total_steps)
        trunk.max_steps = fork if cfg.max_steps is None else min(fork, cfg.max_steps)
        branches = [out / f"branch{k}" for k in range(cfg.branches)]
        if not (branches[-1] / LATEST).exists():
            trunk.run()
            if trunk.step < fork:
                return None
            if dist.is_main:
                for where in branches:
                    where.mkdir(exist_ok=True)
                    if not (where / LATEST).exists():
                        shutil.copy(out / LATEST, where / LATEST)
            barrier()
        del trunk
        summaries = finish_each([(where, lambda k=k, where=where: Trainer(cfg, where, dist, branch=k))
                                 for k, where in enumerate(branches)])
        if summaries is None:
            return None
        trunk_time = load_checkpoint(out)["train_time"]
        return write_joint_summary(out, dist, summaries,
                                   trunk_time + sum(s["wall_time_s"] - trunk_time for s in summaries),
                                   fork_step=fork, branches=summaries)


class IndependentRuns:
    """A run of `runs` > 1: run k trains in `out/run<k>`, a run directory of its own (config, checkpoints,
    summary) as `supernet-train seed=<seed + k> runs=1` would make it (branched, with `branches`),
    one after the other. They are the run's supernets: a genotype's score is the mean of its scores
    on each (load_supernets). Runs of other seeds share nothing, so their errors differ more than
    branches' do, and a few short runs' mean may rank better than one long run of the same training
    time (README, "The recipe, and why"). `max_steps` counts each run's steps from 0, as a plain
    run's."""

    def __init__(self, cfg: TrainConfig, out: Path, dist: Dist):
        self.cfg, self.out, self.dist = cfg, Path(out), dist

    def run(self) -> dict | None:
        members = []
        for k in range(self.cfg.runs):
            cfg, where = replace(self.cfg, seed=self.cfg.seed + k, runs=1), self.out / f"run{k}"
            if self.dist.is_main:
                save_config(cfg, where)
            members.append((where, lambda cfg=cfg, where=where: single_run(cfg, where, self.dist)))
        summaries = finish_each(members)
        if summaries is None:
            return None
        return write_joint_summary(self.out, self.dist, summaries, sum(s["wall_time_s"] for s in summaries),
                                   runs=summaries)


def single_run(cfg: TrainConfig, out: Path, dist: Dist):
    """The runner of one supernet's run in `out` (forked into branches where the config says so)."""
    return Trainer(cfg, out, dist) if cfg.branches == 1 else BranchedRun(cfg, out, dist)


def train(cfg: TrainConfig, out) -> dict | None:
    """Train (or resume, or do nothing if finished) the run in `out`; the summary, None if stopped early."""
    def runner(dist):
        return single_run(cfg, out, dist) if cfg.runs == 1 else IndependentRuns(cfg, out, dist)
    return run_unless_finished(out, SUMMARY_FILE, cfg.device, runner)


@command
def main(argv=None):
    cfg, out = load_config(TrainConfig, argv, description="Train a weight-sharing supernet (single path).")
    train(cfg, out)


if __name__ == "__main__":
    main()
