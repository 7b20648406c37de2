"""The shortlist step of nas-pipeline: the search's k best candidates trained from scratch, the most
accurate on held-out photos retrained.

With `shortlist: k` in the pipeline config (or the override `shortlist=k`), the k best distinct
candidates the search accepted (by reward; pooled over the strategies of a comparison) are each trained
by the retrain stage's config on the supernet's training photos less those the supernet run held out
(nas-retrain's `val_fraction`, the supernet run's), and judged on those held-out photos, so that the
test split stays unseen until the retrain stage. The most accurate is the one the retrain stage trains.
On the ranking benchmark the shared-weight score finds the region of good cells better than it orders
the cells within it (README, "The recipe, and why").

Each candidate trains in DIR/shortlist/<its genotype's hash> as nas-retrain would (resumable; a
finished one is read back), so a pipeline re-run with a longer shortlist, or after a longer search,
trains only the new ones. DIR/shortlist/shortlist.json lists them (`candidates`), best reward first, and names the
winner (`best`, which the retrain stage reads).
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

from retrain.train import RetrainConfig, retrain
from search.strategy import names as strategy_names
from supernet.errors import UserError
from supernet.genotype import Genotype
from supernet.runtime.config import ConfigError, load_config
from supernet.runtime.distributed import is_main_process
from supernet.runtime.files import write_json

log = logging.getLogger(__name__)

SHORTLIST_DIR, SHORTLIST_FILE = "shortlist", "shortlist.json"


def search_histories(search_dir: Path, found: dict) -> list[list[dict]]:
    """The evaluation histories of a finished search: its own, or each strategy's of a comparison."""
    if "strategies" not in found:
        return [found["history"]]
    return [json.loads((search_dir / e["search"]).read_text())["history"] for e in found["strategies"]]


def best_candidates(histories: list[list[dict]], k: int) -> list[dict]:
    """The k best distinct candidates accepted by the searches, best reward first (the first evaluated on a tie)."""
    accepted = [r for history in histories for r in history if r["rejected"] is None and not r["cached"]]
    distinct = {}
    for rec in sorted(accepted, key=lambda r: r["reward"], reverse=True):
        distinct.setdefault(Genotype.from_dict(rec["genotype"]), rec)
    return list(distinct.values())[:k]


def candidate_config(retrain_argv: list[str], supernet, genotype, run_dir: Path) -> RetrainConfig:
    """One candidate's nas-retrain config (run_dir claimed as nas-retrain claims it): the retrain stage's,
    with the candidate's genotype and the supernet run's validation split held out."""
    argv = [*retrain_argv, "--out", str(run_dir), f"genotype={json.dumps(genotype)}",
            f"val_fraction={supernet.val_fraction}"]
    try:
        return load_config(RetrainConfig, argv)[0]
    except UserError as e:
        raise ConfigError(f"shortlist: {e}") from None


def check_shortlist(k: int, supernet, search) -> None:
    """Fail at once, before any stage runs, on settings under which the shortlist could not be chosen."""
    if not k:
        return
    relaxed = [name for name in search.strategies if name not in strategy_names()]
    if relaxed:
        raise ConfigError(f"shortlist applies to the discrete strategies, not to {', '.join(relaxed)}")
    if not supernet.val_fraction:
        raise ConfigError("the shortlisted cells are judged on the photos the supernet run holds out, and it "
                          "holds none: set supernet.val_fraction above 0")


def run_shortlist(k: int, retrain_argv: list[str], supernet, search_dir: Path, found: dict, out: Path) -> dict | None:
    """Train (or read back) the k shortlisted cells of the search in `search_dir` (its final JSON `found`) in
    `out`; shortlist.json's content, None if one stopped early."""
    shortlist = []
    candidates = best_candidates(search_histories(search_dir, found), k)
    if not candidates:
        raise UserError(f"the search in {search_dir} accepted no candidate (every one broke its size limits)")
    for i, rec in enumerate(candidates):
        text = str(Genotype.from_dict(rec["genotype"]))
        name = hashlib.sha1(text.encode()).hexdigest()[:12]
        log.info("candidate %d/%d (reward %.4f): training from scratch in %s", i + 1, len(candidates),
                 rec["reward"], out / name)
        summary = retrain(candidate_config(retrain_argv, supernet, rec["genotype"], out / name), out / name)
        if summary is None:
            return None
        shortlist.append({"genotype": rec["genotype"], "genotype_str": text,
                          "reward": rec["reward"], "val_acc": summary["val_acc"], "val_top5": summary["val_top5"],
                          "wall_time_s": summary["wall_time_s"], "run": name})
    best = max(shortlist, key=lambda r: r["val_acc"])   # the best reward on a tie
    log.info("shortlist (reward -> held-out accuracy): %s; the retrain stage trains candidate %d",
             ", ".join(f"{r['reward']:.4f} -> {r['val_acc']:.4f}" for r in shortlist), shortlist.index(best) + 1)
    chosen = {"k": k, "best": best, "candidates": shortlist,
              "wall_time_s": round(sum(r["wall_time_s"] for r in shortlist), 3)}
    if is_main_process():
        write_json(out / SHORTLIST_FILE, chosen)
    return chosen
