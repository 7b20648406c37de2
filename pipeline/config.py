"""The pipeline config: the config file of each stage, and the overrides that name their stage.

    # configs/digits.yaml; each path is relative to this file
    supernet: digits_supernet.yaml
    search: search_digits.yaml
    retrain: digits_retrain.yaml

    nas-pipeline --config configs/digits.yaml --out runs/digits supernet.epochs=5 search.strategy=gdas
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from supernet.runtime.config import ConfigError, from_dict, read_yaml

STAGES = ("supernet", "search", "retrain")


@dataclass
class PipelineConfig:
    supernet: str = ""   # the supernet-train config
    search: str = ""     # the nas-search config
    retrain: str = ""    # the nas-retrain config

    def __post_init__(self):
        missing = [stage for stage in STAGES if not getattr(self, stage)]
        if missing:
            raise ConfigError(f"the pipeline config must name the config file of every stage; "
                              f"add {', '.join(f'{stage}: FILE.yaml' for stage in missing)}")


def stage_files(path: Path) -> dict[str, Path]:
    """Stage -> its config file, read from the pipeline config at `path` (unknown keys are an error)."""
    cfg = from_dict(PipelineConfig, read_yaml(path), str(path))
    return {stage: path.parent / getattr(cfg, stage) for stage in STAGES}


def split_overrides(overrides) -> dict[str, list[str]]:
    """`stage.key=value` items -> stage -> its `key=value` items."""
    by_stage = {stage: [] for stage in STAGES}
    for item in overrides:
        name, sep, value = item.partition("=")
        stage, dot, key = name.partition(".")
        if not sep or not dot or not key or stage not in by_stage:
            raise ConfigError(f"override {item!r} must name its stage: supernet.KEY=VALUE, search.KEY=VALUE "
                              "or retrain.KEY=VALUE")
        by_stage[stage].append(f"{key}={value}")
    return by_stage
