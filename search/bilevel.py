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
scheduler, scaler, RNG and Gumbel states, step). Its settings are the search's
`strategy_options` (RelaxedOptions), as a discrete strategy's are.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2

from supernet.runtime.config import ConfigError, from_dict
from supernet.runtime.data import global_batches
from supernet.runtime.distributed import Dist, average_gradients, broadcast_parameters
from supernet.runtime.loop import TrainLoop

from .relaxations import ArchParams, RelaxOptions, gdas_temperature, summarize
from .strategy import StrategyError

log = logging.getLogger(__name__)

STRATEGIES = ("gdas", "darts", "sparsemax", "entmax")


@dataclass
class RelaxedOptions:
    """The settings of a relaxed search (nas-search's `strategy_options`)."""
    warm_start: bool = True              # start from the supernet's trained weights (false: re-initialised)
    epochs: int = 10
    lr: float = 0.025                    # the supernet's weights: SGD, cosine to lr_min
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0               # 0: off
    arch_lr: float = 3e-4                # the logits: Adam
    arch_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    arch_weight_decay: float = 1e-3
    tau_max: float = 10.0                # gdas: the temperature, linear per epoch from tau_max to tau_min
    tau_min: float = 0.1
    entmax_alpha: float = 1.5            # entmax: 1.5 is solved exactly, others by bisection

    def __post_init__(self):
        if self.epochs < 1:
            raise ConfigError(f"epochs must be at least 1, got {self.epochs}")
        if self.entmax_alpha <= 1:
            raise ConfigError(f"entmax_alpha must be above 1 (1 is softmax: strategy=darts), got {self.entmax_alpha}")


def relaxed_options(options: dict) -> RelaxedOptions:
    """A relaxed strategy's `strategy_options`, checked."""
    return from_dict(RelaxedOptions, options, "the config", prefix="strategy_options.")


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


class Architect:
    """The architecture half of the bilevel search (as the DARTS code keeps it apart from the weight
    loop): one vector of logits per decision, their Adam optimizer, and the Gumbel stream of gdas."""

    def __init__(self, space, mapping: str, options: RelaxedOptions, seed: int, device):
        self.mapping = mapping
        self.arch = ArchParams(space, seed=seed).to(device)
        self.opt = torch.optim.Adam(self.arch.parameters(), lr=options.arch_lr, betas=tuple(options.arch_betas),
                                    weight_decay=options.arch_weight_decay)
        self.gumbel = torch.Generator(device=device).manual_seed(seed)
        self.alpha = options.entmax_alpha

    def weights(self, tau: float) -> list[torch.Tensor]:
        """The weights of one forward pass (a fresh Gumbel sample for gdas)."""
        return self.arch.weights(self.mapping, RelaxOptions(tau=tau, generator=self.gumbel, alpha=self.alpha))

    def step(self, loss_of, micro_batches, scaler, tau: float) -> torch.Tensor:
        """First order: the logits follow the validation loss `loss_of(x, y, weights)` summed over the
        micro-batches, the supernet's weights held fixed. Returns (loss sum, correct, count)."""
        self.opt.zero_grad(set_to_none=True)
        params, weights, stats, chunks = list(self.arch.parameters()), self.weights(tau), 0, list(micro_batches)
        for x, y in chunks:
            loss, correct = loss_of(x, y, weights)
            scaler.scale(loss / len(chunks)).backward(inputs=params, retain_graph=len(chunks) > 1)
            stats = stats + torch.stack([loss.detach().double() * len(y), correct.double(),
                                         torch.tensor(float(len(y)), dtype=torch.float64, device=y.device)])
        average_gradients(params)
        scaler.step(self.opt)
        scaler.update()
        return stats

    def distribution(self) -> list[torch.Tensor]:
        return self.arch.distribution(self.mapping, self.alpha)

    def state_dict(self) -> dict:
        return {"arch": self.arch.state_dict(), "a_opt": self.opt.state_dict(), "gumbel": self.gumbel.get_state()}

    def load_state_dict(self, state: dict):
        self.arch.load_state_dict(state["arch"])
        self.opt.load_state_dict(state["a_opt"])
        self.gumbel.set_state(state["gumbel"])


class BilevelSearch(TrainLoop):
    """One differentiable search run in `run_dir` (see the module docstring): the weight loop of
    supernet.runtime.loop, with an Architect step after each weight step."""
    what = "supernet"
    optimizer_key = "w_opt"

    def __init__(self, cfg, net, data, run_dir, dist: Dist):
        if data.val is None:
            raise ConfigError("a relaxed search needs a validation split; set val_fraction above 0")
        self.options = options = relaxed_options(cfg.strategy_options)
        super().__init__(cfg, run_dir, dist, amp=cfg.amp, channels_last=False, grad_clip=options.grad_clip,
                         log_every=cfg.log_every, accum_steps=cfg.accum_steps, max_steps=cfg.max_steps)
        self.data, self.space, self.network = data, net.space, net.spec.to_dict()
        self.val_loader = global_batches(data.val.dataset, cfg.batch_size, dist.rank, dist.world_size)
        self.net = net
        self.prepare_model()
        if not options.warm_start:
            reinitialize(self.net, cfg.seed)
        self.architect = Architect(self.space, cfg.strategy, options, cfg.seed, dist.device)
        broadcast_parameters(self.net)
        self.train_loader, self.epochs = data.train, options.epochs
        self.opt = create_optimizer_v2(self.net, opt="momentum", lr=options.lr, momentum=options.momentum,
                                       weight_decay=options.weight_decay)
        self.sched, _ = create_scheduler_v2(self.opt, sched="cosine", num_epochs=options.epochs, min_lr=options.lr_min,
                                            step_on_epochs=False, updates_per_epoch=self.steps_per_epoch)
        self.history = []

    def extra_state(self) -> dict:
        return {**self.architect.state_dict(), "history": self.history}

    def load_extra_state(self, state: dict):
        self.architect.load_state_dict(state)
        self.history = state["history"]

    # -- one step ------------------------------------------------------------
    def tau(self) -> float:
        epoch, options = min(self.step // self.steps_per_epoch, self.epochs - 1), self.options
        return gdas_temperature(epoch, self.epochs, options.tau_max, options.tau_min)

    def loss(self, x, y, weights):
        with self.autocast():
            logits = self.model(x, weights=weights)
            loss = F.cross_entropy(logits.float(), y)
        return loss, (logits.argmax(1) == y).sum()

    def start_epoch(self, epoch: int):
        self.model.train()
        self.val_batches = batches_from(self.val_loader, self.step)

    def step_inputs(self) -> tuple:
        xv, yv = next(self.val_batches)
        return self.to_device(xv), yv.to(self.dist.device, non_blocking=True)

    def train_step(self, x, y, xv, yv) -> torch.Tensor:
        """Weight step on (x, y), then architecture step on (xv, yv).
        Returns (train loss sum, train correct, train count, val loss sum, val correct, val count)."""
        tau = self.tau()
        with torch.no_grad():
            weights = self.architect.weights(tau)
        self.opt.zero_grad(set_to_none=True)   # unsampled ops keep no gradient and are not updated
        stats = 0
        for xs, ys in self.micro_batches(x, y):
            loss, correct = self.loss(xs, ys, weights)
            self.backward(loss)
            stats = stats + torch.stack([loss.detach().double() * len(ys), correct.double(),
                                         torch.tensor(float(len(ys)), dtype=torch.float64, device=ys.device)])
        self.optimizer_step()
        return torch.cat([stats, self.architect.step(self.loss, self.micro_batches(xv, yv), self.scaler, tau)])

    def window_figures(self, t: list[float]) -> dict:
        figures = {"train/loss": t[0] / t[2], "train/acc": t[1] / t[2], "val/loss": t[3] / t[5], "val/acc": t[4] / t[5]}
        return {**figures, "tau": self.tau()} if self.architect.mapping == "gdas" else figures

    def non_finite_message(self, figures: dict, window_start: int) -> str:
        return (f"the search loss became {figures['train/loss']} (validation {figures['val/loss']}) before step "
                f"{self.step}; the run stopped, and {self.out} keeps its last good checkpoint")

    def end_epoch(self, epoch: int, totals: list[float]):
        summary = summarize(self.space, self.architect.distribution())
        genotype = self.architect.arch.derive()
        self.history.append({"epoch": epoch + 1, "step": self.step, "genotype": genotype.to_dict(),
                             "entropy": summary["entropy"], "sparsity": summary["sparsity"]})
        per_decision = {}
        for d in self.space.decisions:
            s = summary["decisions"][d.name]
            per_decision[f"arch_entropy/{d.name}"] = s["entropy"]
            for label, w in zip(choice_labels(self.space, d), s["weights"]):
                per_decision[f"arch_weight/{d.name}/{label}"] = w
        self.metrics.log(self.step, epoch=epoch + 1, genotype=str(genotype), **{
            "arch/entropy": summary["entropy"], "arch/sparsity": summary["sparsity"]}, **per_decision)
        log.info("epoch %d/%d: entropy %.3f, sparsity %.3f, argmax %s", epoch + 1, self.epochs,
                 summary["entropy"], summary["sparsity"], genotype)

    def summary(self) -> dict:
        """The derived genotype, the final weights per decision and the per-epoch history; `finished`
        is false for a search stopped at max_steps."""
        mapping = self.architect.mapping
        return {
            "strategy": mapping, "genotype": self.architect.arch.derive().to_dict(),
            "finished": self.step >= self.total_steps, "epochs": self.epochs, "steps": self.step,
            "tau": self.tau() if mapping == "gdas" else None,
            "arch_weights": summarize(self.space, self.architect.distribution()),
            "logits": [p.detach().cpu().tolist() for p in self.architect.arch.logits],
            "history": self.history, "wall_time_s": round(self.elapsed(), 3),
        }


def run(config, supernet, loaders, run_dir, dist: Dist) -> dict:
    """Search with `config.strategy` (one of STRATEGIES) from `supernet` on `loaders` (a
    supernet.runtime.data.Data); the search's summary (see BilevelSearch.summary), whether it
    finished or stopped at max_steps."""
    if config.strategy not in STRATEGIES:
        raise StrategyError(f"strategy {config.strategy!r} is not a relaxed one; choose one of {', '.join(STRATEGIES)}")
    search = BilevelSearch(config, supernet, loaders, run_dir, dist)
    return search.run() or search.summary()
