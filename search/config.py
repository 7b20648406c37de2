"""Settings of `nas-search` (read with supernet.runtime.config.load_config: YAML plus key=value overrides)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal

from supernet.runtime.config import ConfigError
from supernet.scoring import SCORING_KEYS, Metric, Scoring, scoring_from

from .strategy import names


@dataclass
class SearchConfig:
    """The data (dataset, split, image size) are those of the supernet run; `batch_size`
    is the search's own (per process for the relaxed strategies)."""
    RERUN_FREE_KEYS: ClassVar[tuple] = ("workers", "log_every", "budget", "max_steps", "finalists",
                                        "finalist_finetune_steps")

    supernet: str = ""                   # the supernet-train run directory
    untrained: bool = False              # search the supernet at initialisation (seed 0) instead of its trained
    #                                      weights: the control that shows what the training adds to a search
    strategy: str | list[str] = "evo_nas"  # random | evolution | rl | evo_nas | gdas | darts | sparsemax | entmax;
    #                                      a list: one search per strategy and their comparison (search.compare)
    strategy_options: dict = field(default_factory=dict)   # e.g. {population_size: 20, sample_size: 5};
    #                                      with a list of strategies: strategy -> its options
    budget: int = 200                    # evaluations (discrete strategies)
    ask_size: int = 10                   # genotypes per ask (one round)
    seed: int = 0
    data_dir: str | None = None          # None: the supernet run's
    batch_size: int = 64
    accum_steps: int = 1                 # relaxed strategies: micro-batches per step (each normalised on its own)
    # how a candidate is scored (supernet.scoring.Scoring): an optional brief fine-tuning of the inherited
    # weights on fixed training batches, then BN recalibration; None: as the supernet run scored its subnets
    calibration_batches: int | None = None
    finetune_steps: int | None = None
    finetune_lr: float | None = None
    bn: Literal["recalibrate", "batch"] | None = None
    head: Literal["inherited", "refit"] | None = None
    metric: Metric | None = None         # supernet.scoring.METRICS
    eval_batches: int | None = None      # validation batches scored; None: the whole split
    # discrete strategies: when the budget is spent, the `finalists` best candidates are scored again with
    # `finalist_finetune_steps` fine-tuning steps, and the best of them is the search's winner (0: the best
    # reward wins). Longer fine-tuning ranks wide cells better, but on the benchmark's searches the
    # finalists' re-scoring chose no better cells (README, "The recipe, and why").
    finalists: int = 0
    finalist_finetune_steps: int = 50
    # size limits on the fixed network a genotype stands for: a number, or a genotype (zoo name, file,
    # or inline) whose network at the target size sets the limit; target_* None: the supernet's
    max_params: int | str | dict | None = None
    max_macs: int | str | dict | None = None
    target_C: int | None = None
    target_layers: int | None = None
    target_image_size: int | None = None
    amp: Literal["bf16", "fp16", "off"] = "off"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int = 0
    log_every: int = 1                   # rounds (discrete strategies), steps (relaxed ones)
    # relaxed strategies (search.differentiable): first-order bilevel search from the supernet
    warm_start: bool = True              # start from the supernet's trained weights (false: re-initialised)
    epochs: int = 10
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 3e-4
    grad_clip: float = 5.0               # of the supernet's weights; 0: off
    arch_lr: float = 3e-4
    arch_betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    arch_weight_decay: float = 1e-3
    tau_max: float = 10.0
    tau_min: float = 0.1
    entmax_alpha: float = 1.5
    max_steps: int | None = None

    def __post_init__(self):
        if not self.supernet:
            raise ConfigError("supernet must name a supernet-train run directory (supernet=RUN_DIR)")
        for key in ("budget", "ask_size", "batch_size", "accum_steps", "log_every", "epochs"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.finalists < 0 or self.finalist_finetune_steps < 1:
            raise ConfigError("finalists must be at least 0 and finalist_finetune_steps at least 1, got "
                              f"{self.finalists} and {self.finalist_finetune_steps}")
        if self.batch_size % self.accum_steps:
            raise ConfigError(f"batch_size ({self.batch_size}) must be a multiple of accum_steps ({self.accum_steps})")
        if not self.strategies or len(set(self.strategies)) != len(self.strategies):
            raise ConfigError(f"strategy must be one name or a list of distinct names, got {self.strategy!r}")
        for name in self.strategies:
            if name not in names():
                from .differentiable import STRATEGIES
                if name not in STRATEGIES:
                    raise ConfigError(f"unknown strategy {name!r}; choose one of "
                                      f"{', '.join(names() + list(STRATEGIES))}")
        relaxed = [name for name in self.strategies if name not in names()]
        if self.finalists and relaxed:
            raise ConfigError(f"finalists applies to the discrete strategies, not to {', '.join(relaxed)}")
        if not isinstance(self.strategy_options, dict):
            raise ConfigError(f"strategy_options must be a mapping of option: value, got {self.strategy_options!r}")
        if isinstance(self.strategy, list):
            for name, options in self.strategy_options.items():
                if name not in self.strategy or not isinstance(options, dict):
                    raise ConfigError("with a list of strategies, strategy_options maps a listed strategy to its "
                                      f"options ({{evolution: {{population_size: 20}}}}), got {name!r}: {options!r}")

    def scoring(self, trained: dict) -> Scoring:
        """How candidates are scored, `trained` being the supernet run's config."""
        return scoring_from(trained, **{key: getattr(self, key) for key in SCORING_KEYS})

    def finalist_scoring(self, trained: dict) -> Scoring:
        """How the finalists are scored again: as the candidates, with finalist_finetune_steps fine-tuning steps."""
        return replace(self.scoring(trained), finetune_steps=self.finalist_finetune_steps)

    @property
    def strategies(self) -> list[str]:
        """The strategies to run: `strategy` itself, or its list."""
        return list(self.strategy) if isinstance(self.strategy, list) else [self.strategy]

    @property
    def relaxed(self) -> bool:
        """A continuous relaxation, run by search.differentiable."""
        if self.strategy in names():
            return False
        from .differentiable import STRATEGIES
        return self.strategy in STRATEGIES
