"""A search's finalists trained from scratch, the winner chosen by their accuracy on held-out photos.

With `finalists: k` and `finalist_retrain: FILE` (a nas-retrain config), the k best distinct candidates
that the search accepted are each trained from scratch by FILE, its genotype the finalist's and its data
the supernet run's: trained on the supernet's training photos and judged on the search's own held-out
photos (nas-retrain's `val_fraction`), so the test split stays unseen. On the ranking benchmark the
shared-weight score finds the region of good cells better than it orders the cells within it; a few
trainings from scratch are what orders a search's best candidates (README, "The recipe, and why").

Each finalist trains in OUT/finalists/<i> as `nas-retrain` would (resumable; a finished one is read
back), so a finished search re-run with more finalists trains only the new ones.
"""
from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from retrain.train import RetrainConfig, retrain
from supernet.errors import UserError
from supernet.runtime.config import ConfigError, load_config

log = logging.getLogger(__name__)

FINALISTS_DIR = "finalists"


def best_candidates(history: list[dict], k: int) -> list[dict]:
    """The k best distinct candidates the search accepted, best reward first (the first evaluation on a tie)."""
    return sorted((r for r in history if r["rejected"] is None and not r["cached"]),
                  key=lambda r: r["reward"], reverse=True)[:k]


def finalist_config(cfg, trained: dict, genotype, out: Path) -> RetrainConfig:
    """The nas-retrain config of one finalist, its run directory `out` claimed as nas-retrain claims it:
    cfg.finalist_retrain with the genotype and the supernet run's data and validation split."""
    links = {"genotype": genotype, "dataset": trained["dataset"], "data_dir": cfg.data_dir or trained["data_dir"],
             "image_size": trained["image_size"], "val_fraction": trained["val_fraction"]}
    argv = ["--config", cfg.finalist_retrain, "--out", str(out),
            *(f"{key}={json.dumps(value)}" for key, value in links.items())]   # JSON: YAML-quoted paths
    try:
        return load_config(RetrainConfig, argv)[0]
    except UserError as e:
        raise ConfigError(f"finalist_retrain {cfg.finalist_retrain}: {e}") from None


def check_finalist_config(cfg, trained: dict) -> None:
    """Fail at once, before the search, on a finalist_retrain config that nas-retrain would refuse."""
    if not trained["val_fraction"]:
        raise ConfigError("finalists are judged on the supernet run's validation photos; it holds none "
                          "(train it with val_fraction above 0)")
    with tempfile.TemporaryDirectory() as scratch:
        if finalist_config(cfg, trained, "darts_v2", Path(scratch) / "check").max_epochs is not None:
            raise ConfigError(f"finalist_retrain {cfg.finalist_retrain} sets max_epochs: each finalist must "
                              "train its whole schedule")


def train_finalists(cfg, trained: dict, history: list[dict], out: Path) -> list[dict]:
    """Each of the cfg.finalists best candidates trained from scratch (module docstring): their search
    records with `val_acc`, the accuracy of the trained network on the held-out photos."""
    finalists = []
    for i, rec in enumerate(best_candidates(history, cfg.finalists)):
        run_dir = out / FINALISTS_DIR / str(i)
        log.info("finalist %d/%d (reward %.4f): training from scratch in %s", i + 1, cfg.finalists,
                 rec["reward"], run_dir)
        summary = retrain(finalist_config(cfg, trained, rec["genotype"], run_dir), run_dir)
        finalists.append({"evaluation": rec["evaluation"], "genotype": rec["genotype"], "reward": rec["reward"],
                          "val_acc": summary["val_acc"], "run": str(run_dir)})
    return finalists
