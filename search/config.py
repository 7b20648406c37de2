"""Settings of `nas-search` (read with supernet.runtime.config.load_config: YAML plus key=value overrides)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from supernet.runtime.config import ConfigError, from_dict
from supernet.scoring import Scoring

from .screening import Screening
from .strategy import RELAXED, check_options


def scoring_of(trained: dict, overrides: dict) -> Scoring:
    """How candidates are scored: as the supernet run whose config is `trained` scored its subnets,
    but for the keys `overrides` (a search's or a ranking's `scoring`) sets."""
    return from_dict(Scoring, {**trained.get("scoring", {}), **overrides}, "the config", prefix="scoring.")


@dataclass
class SearchConfig:
    """The data (dataset, split, image size) are those of the supernet run; `batch_size`
    is the search's own (per process for the relaxed strategies)."""
    RERUN_FREE_KEYS: ClassVar[tuple] = ("workers", "log_every", "budget", "max_steps")

    supernet: str = ""                   # the supernet-train run directory
    untrained: bool = False              # search the supernet at initialisation (seed 0) instead of its trained
    #                                      weights: the control that shows what the training adds to a search
    strategy: str | list[str] = "evo_nas"  # search.strategy.names(); a list: one search per strategy and their
    #                                      comparison (search.compare)
    strategy_options: dict = field(default_factory=dict)   # the strategy's settings, e.g. {population_size: 20};
    #                                      with a list of strategies: strategy -> its settings
    budget: int = 200                    # evaluations (discrete strategies)
    ask_size: int = 10                   # genotypes per ask (one round)
    seed: int = 0
    data_dir: str | None = None          # None: the supernet run's
    batch_size: int = 64
    accum_steps: int = 1                 # relaxed strategies: micro-batches per step (each normalised on its own)
    scoring: dict = field(default_factory=dict)   # supernet.scoring.Scoring keys; unset: the supernet run's
    eval_batches: int | None = None      # validation batches scored; None: the whole split
    screening: Screening = field(default_factory=Screening)   # search a predictor of cheap scores (search.screening)
    # size limits on the fixed network a genotype stands for: a number, or a genotype (zoo name, file,
    # or inline) whose network at the target size sets the limit; target_* None: the supernet's
    max_params: int | str | dict | None = None
    max_macs: int | str | dict | None = None
    target_C: int | None = None
    target_layers: int | None = None
    target_image_size: int | None = None
    amp: Literal["auto", "bf16", "fp16", "off"] = "off"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int = 0
    log_every: int = 1                   # rounds (discrete strategies), steps (relaxed ones)
    max_steps: int | None = None         # relaxed strategies: stop (resumably) once this many steps are done

    def __post_init__(self):
        if not self.supernet:
            raise ConfigError("supernet must name a supernet-train run directory (supernet=RUN_DIR)")
        for key in ("budget", "ask_size", "batch_size", "accum_steps", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be at least 1, got {getattr(self, key)}")
        if self.batch_size % self.accum_steps:
            raise ConfigError(f"batch_size ({self.batch_size}) must be a multiple of accum_steps ({self.accum_steps})")
        if not self.strategies or len(set(self.strategies)) != len(self.strategies):
            raise ConfigError(f"strategy must be one name or a list of distinct names, got {self.strategy!r}")
        from_dict(Scoring, self.scoring, "the config", prefix="scoring.")
        listed = isinstance(self.strategy, list)
        if listed and any(name not in self.strategy or not isinstance(options, dict)
                          for name, options in self.strategy_options.items()):
            raise ConfigError("with a list of strategies, strategy_options maps a listed strategy to its "
                              f"options ({{evolution: {{population_size: 20}}}}), got {self.strategy_options!r}")
        for name in self.strategies:
            check_options(name, self.strategy_options.get(name, {}) if listed else self.strategy_options)
        if self.screening.on and (listed or self.relaxed):
            raise ConfigError(f"screening searches the predictor with one discrete strategy, not {self.strategy!r}")
        from_dict(Scoring, self.screening.scoring, "the config", prefix="screening.scoring.")

    @property
    def strategies(self) -> list[str]:
        """The strategies to run: `strategy` itself, or its list."""
        return list(self.strategy) if isinstance(self.strategy, list) else [self.strategy]

    @property
    def relaxed(self) -> bool:
        """A continuous relaxation, run by search.bilevel."""
        return self.strategy in RELAXED
