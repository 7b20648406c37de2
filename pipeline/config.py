"""The pipeline config: the config file of each stage; and the overrides, each naming its stage.

    # configs/digits.yaml; each path is relative to this file
    supernet: digits_supernet.yaml
    search: search_digits.yaml
    retrain: digits_retrain.yaml

    nas-pipeline --config configs/digits.yaml --out runs/digits supernet.epochs=5 search.strategy=gdas
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from supernet.runtime.config import ConfigError, from_dict, parse_overrides, read_yaml

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

    def stage_files(self, path: Path) -> dict[str, Path]:
        """Stage -> its config file, `path` being this config's file."""
        return {stage: path.parent / getattr(self, stage) for stage in STAGES}


def read_pipeline_config(path: Path) -> PipelineConfig:
    """The pipeline config at `path` (unknown keys are an error)."""
    return from_dict(PipelineConfig, read_yaml(path), str(path))


def stage_overrides(items) -> dict[str, dict]:
    """`stage.key=value` items -> stage -> the overrides of its config (supernet.runtime.config.parse_overrides)."""
    for item in items:
        stage, dot, _ = item.partition("=")[0].partition(".")
        if not dot or stage not in STAGES:
            raise ConfigError(f"override {item!r} must name its stage: supernet.KEY=VALUE, search.KEY=VALUE "
                              "or retrain.KEY=VALUE")
    values = parse_overrides(items)
    return {stage: values.get(stage, {}) for stage in STAGES}
