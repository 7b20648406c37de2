"""The pipeline config: the config file of each stage, the pipeline's own settings, and the overrides
(those of a stage name it).

    # configs/digits.yaml; each path is relative to this file
    supernet: digits_supernet.yaml
    search: search_digits.yaml
    retrain: digits_retrain.yaml
    shortlist: 0

    nas-pipeline --config configs/digits.yaml --out runs/digits supernet.epochs=5 search.strategy=gdas shortlist=3
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from supernet.runtime.config import ConfigError, from_dict, parse_value, read_yaml

STAGES = ("supernet", "search", "retrain")


@dataclass
class PipelineConfig:
    supernet: str = ""   # the supernet-train config
    search: str = ""     # the nas-search config
    retrain: str = ""    # the nas-retrain config
    # the search's k best candidates trained from scratch by the retrain config and judged on the photos
    # the supernet run holds out; the most accurate is retrained (pipeline.shortlist). 0: the best reward is
    shortlist: int = 0

    def __post_init__(self):
        missing = [stage for stage in STAGES if not getattr(self, stage)]
        if missing:
            raise ConfigError(f"the pipeline config must name the config file of every stage; "
                              f"add {', '.join(f'{stage}: FILE.yaml' for stage in missing)}")
        if self.shortlist < 0:
            raise ConfigError(f"shortlist must be at least 0, got {self.shortlist}")

    def stage_files(self, path: Path) -> dict[str, Path]:
        """Stage -> its config file, `path` being this config's file."""
        return {stage: path.parent / getattr(self, stage) for stage in STAGES}


def read_pipeline_config(path: Path, overrides: dict) -> PipelineConfig:
    """The pipeline config at `path`, with the pipeline's own overrides (unknown keys are an error)."""
    return from_dict(PipelineConfig, {**read_yaml(path), **overrides}, str(path))


def split_overrides(overrides) -> tuple[dict, dict[str, list[str]]]:
    """`shortlist=K` and `stage.key=value` items -> (the pipeline's own settings, stage -> its `key=value` items)."""
    own, by_stage = {}, {stage: [] for stage in STAGES}
    for item in overrides:
        name, sep, value = item.partition("=")
        stage, dot, key = name.partition(".")
        if sep and name == "shortlist":
            own[name] = parse_value(value)
        elif not sep or not dot or not key or stage not in by_stage:
            raise ConfigError(f"override {item!r} must name its stage: supernet.KEY=VALUE, search.KEY=VALUE "
                              "or retrain.KEY=VALUE (or be the pipeline's shortlist=K)")
        else:
            by_stage[stage].append(f"{key}={value}")
    return own, by_stage
