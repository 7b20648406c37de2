"""The three stages: their configs, which the pipeline links, and running them with skip and resume.

Each stage runs in DIR/<stage> on its command's own path (load_config, then the function behind
`supernet-train`, `nas-search` or `nas-retrain`), so it writes what the command writes and
resumes as the command does. The pipeline sets what links the stages: the search reads
DIR/supernet (and its data); the retraining takes the search's result (search.json, or
comparison.json for a list of strategies, whose `best` is the highest reward) and everything that
defines the supernet's data: dataset, data_dir and image_size, all its training photos and the test split.
All three configs are resolved before any stage runs, so a bad key fails at once.
"""
from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from retrain.train import SUMMARY_FILE as RETRAIN_FILE
from retrain.train import RetrainConfig, retrain
from search import cli as search_cli
from search.compare import COMPARISON_FILE
from search.config import SearchConfig
from search.loop import SUMMARY_FILE as SEARCH_FILE
from supernet.errors import UserError
from supernet.genotype_lookup import resolve_genotype
from supernet.runtime.config import ConfigError, build_config, read_yaml
from supernet.runtime.distributed import is_main_process
from supernet.runtime.lock import hold_run_dir
from supernet.train import SUMMARY_FILE as SUPERNET_FILE
from supernet.train import TrainConfig, train

from .config import STAGES

log = logging.getLogger(__name__)

CONFIG_CLASSES = {"supernet": TrainConfig, "search": SearchConfig, "retrain": RetrainConfig}
RUNNERS = {"supernet": train, "search": search_cli.run, "retrain": retrain}
DATA_KEYS = ("dataset", "data_dir", "image_size")   # what defines the data (its channels and normalisation follow)
LINK_REASONS = {
    "supernet": "the search reads the pipeline's own supernet stage",
    "genotype": "the retraining takes the search stage's best cells",
    "dataset": "the retraining uses the supernet's data; set supernet.dataset",
    "data_dir": "the retraining uses the supernet's data; set supernet.data_dir",
    "image_size": "the retraining uses the supernet's data; set supernet.image_size",
    "val_fraction": "the retraining trains on all the training photos and reports the test accuracy",
}


def final_json(stage: str, cfg, run_dir: Path) -> Path:
    """The file a finished stage ends with."""
    if stage == "search":
        return run_dir / (COMPARISON_FILE if isinstance(cfg.strategy, list) else SEARCH_FILE)
    return run_dir / (SUPERNET_FILE if stage == "supernet" else RETRAIN_FILE)


def finished(stage: str, cfg, summary: dict | None) -> bool:
    """Whether `summary` (a stage's final JSON; None: the stage stopped early) ends the stage under
    `cfg`: a relaxed search stopped at max_steps writes one that says `finished: false`, and a
    discrete search may be given a larger budget."""
    if summary is None or not summary.get("finished", True):
        return False
    if stage != "search" or cfg.relaxed:
        return True
    return summary["budget" if isinstance(cfg.strategy, list) else "evaluations"] >= cfg.budget


def links(stage: str, out: Path, configs: dict) -> dict:
    """The settings the pipeline gives `stage`, from the stages before it."""
    if stage == "search":
        return {"supernet": str(out / "supernet")}
    if stage == "retrain":
        supernet = configs["supernet"]
        return {"genotype": str(final_json("search", configs["search"], out / "search")),
                **{key: getattr(supernet, key) for key in DATA_KEYS}, "val_fraction": 0.0}
    return {}


def resolve_configs(files: dict[str, Path], overrides: dict[str, dict], out: Path) -> dict:
    """Stage -> its config (file < overrides < links), checked as its command checks it, and
    DIR/<stage>/config.yaml written; any error names its stage. All three are checked in a scratch
    directory first, so that an error in a later stage leaves no run directory claimed by settings
    that never ran."""
    with tempfile.TemporaryDirectory() as scratch:
        _load_configs(files, overrides, out, Path(scratch))
    if is_main_process():
        hold_run_dir(out)   # the pipeline's directory is this job's from here on
    return _load_configs(files, overrides, out, out)


def _load_configs(files, overrides, out: Path, run_root: Path) -> dict:
    configs = {}
    for stage in STAGES:
        linked = links(stage, out, configs)
        for key in overrides[stage]:
            if key in linked:
                raise ConfigError(f"{stage}.{key} is set by the pipeline: {LINK_REASONS[key]}")
        try:
            configs[stage] = build_config(CONFIG_CLASSES[stage], read_yaml(files[stage]),
                                          {**overrides[stage], **linked}, run_root / stage, str(files[stage]))
        except UserError as e:
            raise ConfigError(f"{stage} stage: {e}") from None
    return configs


def run_stage(stage: str, cfg, run_dir: Path) -> dict | None:
    """Run (or resume) the stage in `run_dir`, or skip it if finished; its final JSON, None if it stopped early."""
    path = final_json(stage, cfg, run_dir)
    if path.is_file():
        summary = json.loads(path.read_text())
        if finished(stage, cfg, summary):
            if stage == "retrain" and summary["genotype"] != resolve_genotype(cfg.genotype)[0].to_dict():
                raise UserError(f"{run_dir} holds the retraining of other cells than {cfg.genotype} names now "
                                "(the search or its shortlist changed); move it away to retrain the new ones")
            log.info("%s stage: finished already (%s); skipped", stage, path)
            return summary
    log.info("%s stage: %s", stage, run_dir)
    summary = RUNNERS[stage](cfg, run_dir)
    return summary if finished(stage, cfg, summary) else None
