"""First-order bilevel search over the relaxed decisions: gdas, darts, sparsemax, entmax.

Each step (DARTS first order, GDAS): a weight step on a training batch (SGD,
cosine schedule, gradient clip) with the architecture weights held fixed,
then an architecture step on a validation batch (Adam, DARTS defaults
lr 3e-4, betas (0.5, 0.999), weight decay 1e-3) that differentiates only the
logits. GDAS draws a fresh one-hot sample for each of the two forwards, from
a seeded generator, at a temperature annealed linearly per epoch.

Under torchrun every rank holds the same logits and the same Gumbel stream,
so all ranks run the same weights; the gradients of the supernet and of the
logits are both averaged over ranks. The search trains the supernet given in
place, starting from its weights (warm_start) or from a fresh initialisation;
`nas-search` hands it a copy, so that the derived genotype is scored on the
supernet's own weights, the scale of every other strategy.
Re-running on the same run
directory resumes from its checkpoint (supernet, logits, both optimizers,
scheduler, scaler, RNG and Gumbel states, step).
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2

from supernet.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from supernet.config import to_dict
from supernet.data import resume_epoch
from supernet.distributed import all_reduce_sum, average_gradients, barrier, broadcast_parameters, init_distributed
from supernet.metrics import MetricsLog, Progress
from supernet.precision import NonFiniteLossError, mixed_precision

from .relax import ArchParams, RelaxOptions, gdas_temperature, summarize

log = logging.getLogger(__name__)

STRATEGIES = ("gdas", "darts", "sparsemax", "entmax")


def batches_from(loader, start: int):
    """Endless batches of `loader` (which must not shuffle), the first being batch `start` mod its length."""
    skip = start % len(loader)
    while True:
        for i, batch in enumerate(loader):
            if i >= skip:
                yield batch
        skip = 0


def reinitialize(net, seed: int):
    """Fresh weights for every layer of `net`, drawn from `seed`."""
    torch.manual_seed(seed)
    for m in net.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()


def choice_labels(space, decision) -> list[str]:
    return list(space.ops) if decision.kind == "op" else [f"input{j}" for j in range(decision.num_choices)]


class BilevelSearch:
    """One differentiable search run in `run_dir` (see the module docstring)."""

    def __init__(self, cfg, net, data, run_dir):
        self.cfg, self.data, self.out = cfg, data, Path(run_dir)
        if data.val is None:
            raise ValueError("differentiable search needs a validation split; set val_fraction above 0")
        self.dist = init_distributed(cfg.device)
        device = self.dist.device
        self.mapping = cfg.strategy
        self.net = net.to(device).train()
        if not cfg.warm_start:
            reinitialize(self.net, cfg.seed)
        self.space = net.space
        self.arch = ArchParams(self.space, seed=cfg.seed).to(device)
        broadcast_parameters(self.net)
        self.steps_per_epoch = len(data.train)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.w_opt = create_optimizer_v2(self.net, opt="momentum", lr=cfg.lr, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay)
        self.sched, _ = create_scheduler_v2(self.w_opt, sched="cosine", num_epochs=cfg.epochs, min_lr=cfg.lr_min,
                                            step_on_epochs=False, updates_per_epoch=self.steps_per_epoch)
        self.a_opt = torch.optim.Adam(self.arch.parameters(), lr=cfg.arch_lr, betas=tuple(cfg.arch_betas),
                                      weight_decay=cfg.arch_weight_decay)
        self.autocast, self.scaler = mixed_precision(cfg.amp, device)
        self.gumbel = torch.Generator(device=device).manual_seed(cfg.seed)
        self.step, self.train_time, self.history, self.rng = 0, 0.0, [], None

    # -- checkpoints -------------------------------------------------------
    def state(self) -> dict:
        return {"model": self.net.state_dict(), "arch": self.arch.state_dict(), "w_opt": self.w_opt.state_dict(),
                "a_opt": self.a_opt.state_dict(), "scheduler": self.sched.state_dict(),
                "scaler": self.scaler.state_dict(), "rng": rng_state(), "gumbel": self.gumbel.get_state(),
                "step": self.step, "train_time": time.perf_counter() - self.t_start, "history": self.history,
                "config": to_dict(self.cfg)}

    def restore(self) -> bool:
        state = load_checkpoint(self.out)
        if state is None:
            return False
        self.net.load_state_dict(state["model"])
        self.arch.load_state_dict(state["arch"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
        self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.gumbel.set_state(state["gumbel"])
        self.step, self.train_time, self.history = state["step"], state["train_time"], state["history"]
        self.rng = state["rng"]   # restored once the resumed epoch's data is where it was
        log.info("resuming %s at step %d/%d", self.out, self.step, self.total_steps)
        return True

    def save(self):
        if self.dist.is_main:
            save_checkpoint(self.out, self.state())
        barrier()

    # -- one step ------------------------------------------------------------
    def options(self) -> RelaxOptions:
        epoch = min(self.step // self.steps_per_epoch, self.cfg.epochs - 1)
        tau = gdas_temperature(epoch, self.cfg.epochs, self.cfg.tau_max, self.cfg.tau_min)
        return RelaxOptions(tau=tau, generator=self.gumbel, alpha=self.cfg.entmax_alpha)

    def loss(self, x, y, weights):
        with self.autocast():
            logits = self.net(x, weights=weights)
            loss = F.cross_entropy(logits.float(), y)
        return loss, (logits.argmax(1) == y).sum()

    def train_step(self, x, y, xv, yv) -> torch.Tensor:
        """Weight step on (x, y), then architecture step on (xv, yv).
        Returns (train loss sum, train correct, val loss sum, val correct, train count, val count)."""
        cfg, params = self.cfg, list(self.net.parameters())
        options = self.options()
        with torch.no_grad():
            weights = self.arch.weights(self.mapping, options)
        self.w_opt.zero_grad(set_to_none=True)   # unsampled ops keep no gradient and are not updated
        loss, correct = self.loss(x, y, weights)
        self.scaler.scale(loss).backward()
        average_gradients(params)
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.w_opt)
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        self.scaler.step(self.w_opt)

        self.a_opt.zero_grad(set_to_none=True)
        arch_params = list(self.arch.parameters())
        val_loss, val_correct = self.loss(xv, yv, self.arch.weights(self.mapping, options))
        self.scaler.scale(val_loss).backward(inputs=arch_params)   # first order: the logits only
        average_gradients(arch_params)
        self.scaler.step(self.a_opt)
        self.scaler.update()
        self.sched.step_update(self.step + 1)
        return torch.stack([loss.detach().double() * len(y), correct.double(), val_loss.detach().double() * len(yv),
                            val_correct.double(), torch.tensor(float(len(y)), device=x.device).double(),
                            torch.tensor(float(len(yv)), device=x.device).double()])

    # -- the loop --------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.cfg
        self.restore()
        self.t_start = time.perf_counter() - self.train_time
        metrics = MetricsLog(self.out, enabled=self.dist.is_main, resume_step=self.step)
        progress = Progress(self.total_steps, self.step, cfg.batch_size * self.dist.world_size)
        try:
            while self.step < self.total_steps:
                if cfg.max_steps is not None and self.step >= cfg.max_steps:
                    log.info("stopped at max_steps=%d; re-run to continue", cfg.max_steps)
                    break
                self.run_epoch(metrics, progress)
        finally:
            metrics.close()
        return self.result()

    def run_epoch(self, metrics: MetricsLog, progress: Progress):
        cfg, device = self.cfg, self.dist.device
        epoch, done = divmod(self.step, self.steps_per_epoch)
        batches = resume_epoch(self.data.train, epoch, done)
        if self.rng is not None:
            set_rng_state(self.rng)
            self.rng = None
        val = batches_from(self.data.val, self.step)
        window = torch.zeros(6, dtype=torch.float64, device=device)
        for x, y in batches:
            xv, yv = next(val)
            window += self.train_step(*(t.to(device, non_blocking=True) for t in (x, y, xv, yv)))
            self.step += 1
            end_of_epoch = self.step % self.steps_per_epoch == 0
            stop = cfg.max_steps is not None and self.step >= cfg.max_steps
            if end_of_epoch or stop or self.step % cfg.log_every == 0:
                self.log_window(window, metrics, progress)
                window.zero_()
            if end_of_epoch:
                self.end_epoch(epoch, metrics)
            if end_of_epoch or stop:
                self.save()
            if stop:
                return

    def log_window(self, window, metrics: MetricsLog, progress: Progress):
        t = all_reduce_sum(window.clone()).tolist()
        loss, acc, val_loss, val_acc = t[0] / t[4], t[1] / t[4], t[2] / t[5], t[3] / t[5]
        if not (math.isfinite(loss) and math.isfinite(val_loss)):
            raise NonFiniteLossError(f"the search loss became {loss} (validation {val_loss}) before step "
                                     f"{self.step}; the run stopped, and {self.out} keeps its last good checkpoint")
        tau = {"tau": self.options().tau} if self.mapping == "gdas" else {}
        metrics.log(self.step, epoch=self.step / self.steps_per_epoch, **{
            "train/loss": loss, "train/acc": acc, "val/loss": val_loss, "val/acc": val_acc,
            "lr": self.w_opt.param_groups[0]["lr"]}, **tau)
        log.info("%s | loss %.4f acc %.4f | val loss %.4f acc %.4f", progress.line(self.step), loss, acc,
                 val_loss, val_acc)

    def end_epoch(self, epoch: int, metrics: MetricsLog):
        summary = summarize(self.space, self.arch.distribution(self.mapping, self.cfg.entmax_alpha))
        genotype = self.arch.derive()
        self.history.append({"epoch": epoch + 1, "step": self.step, "genotype": genotype.to_dict(),
                             "entropy": summary["entropy"], "sparsity": summary["sparsity"]})
        per_decision = {}
        for d in self.space.decisions:
            s = summary["decisions"][d.name]
            per_decision[f"arch_entropy/{d.name}"] = s["entropy"]
            for label, w in zip(choice_labels(self.space, d), s["weights"]):
                per_decision[f"arch_weight/{d.name}/{label}"] = w
        metrics.log(self.step, epoch=epoch + 1, genotype=str(genotype), **{
            "arch/entropy": summary["entropy"], "arch/sparsity": summary["sparsity"]}, **per_decision)
        log.info("epoch %d/%d: entropy %.3f, sparsity %.3f, argmax %s", epoch + 1, self.cfg.epochs,
                 summary["entropy"], summary["sparsity"], genotype)

    def result(self) -> dict:
        summary = summarize(self.space, self.arch.distribution(self.mapping, self.cfg.entmax_alpha))
        return {
            "strategy": self.mapping, "genotype": self.arch.derive().to_dict(),
            "finished": self.step >= self.total_steps, "epochs": self.cfg.epochs, "steps": self.step,
            "tau": self.options().tau if self.mapping == "gdas" else None,
            "arch_weights": summary, "logits": [p.detach().cpu().tolist() for p in self.arch.logits],
            "history": self.history, "wall_time_s": round(time.perf_counter() - self.t_start, 3),
        }


def run(config, supernet, loaders, run_dir) -> dict:
    """Search with `config.strategy` (one of STRATEGIES) from `supernet` on `loaders` (a supernet.data.Data);
    returns the derived genotype, the final weights per decision and the per-epoch history."""
    if config.strategy not in STRATEGIES:
        raise ValueError(f"strategy {config.strategy!r} is not differentiable; choose one of {', '.join(STRATEGIES)}")
    if config.strategy == "entmax" and config.entmax_alpha <= 1:
        raise ValueError(f"entmax_alpha must be above 1 (1 is softmax: strategy=darts), got {config.entmax_alpha}")
    return BilevelSearch(config, supernet, loaders, run_dir).run()
