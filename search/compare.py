"""Several strategies on one supernet and one budget, side by side (`strategy` given as a list).

    nas-search --config configs/search_digits.yaml --out runs/compare supernet=runs/digits \\
        "strategy=[random,evolution,rl,evo_nas,gdas,entmax]"

search.cli runs each strategy as a full search of its own in DIR/<strategy>/ (each resumable
on its own); once all are finished this module writes DIR/comparison.json (per strategy: best
reward and genotype, evaluations or steps, wall time; `best`: the winner in search.json's
form, so that `nas-retrain genotype=DIR/comparison.json` retrains it), DIR/comparison.md (the
table) and DIR/comparison.png (best reward so far against evaluations; a relaxed strategy
scores only the genotypes it derives, one an epoch, so it is a horizontal line at their best).
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from supernet.runtime.config import save_config
from supernet.runtime.distributed import is_main_process
from supernet.runtime.files import write_atomic, write_json
from supernet.runtime.plots import curve_figure
from supernet.scoring import METRICS

from .config import SearchConfig
from .loop import SUMMARY_FILE

log = logging.getLogger(__name__)

COMPARISON_FILE, TABLE_FILE, PLOT_FILE = "comparison.json", "comparison.md", "comparison.png"


def strategy_runs(cfg: SearchConfig, out) -> list[tuple[SearchConfig, Path]]:
    """(config, run directory) of each listed strategy: DIR/<strategy>, holding its resolved config.yaml."""
    runs = []
    for name in cfg.strategies:
        one = dataclasses.replace(cfg, strategy=name, strategy_options=cfg.strategy_options.get(name, {}))
        if is_main_process():
            save_config(one, Path(out) / name)
        runs.append((one, Path(out) / name))
    return runs


def entry(cfg: SearchConfig, summary: dict) -> dict:
    """One strategy's row: its search.json figures."""
    best = summary["best"] or {}   # None when every candidate broke the size limits
    return {"strategy": cfg.strategy, "relaxed": cfg.relaxed,
            "reward": best.get("reward"), "genotype": best.get("genotype"), "genotype_str": best.get("genotype_str"),
            "evaluations": summary["evaluations"],
            "steps": summary["steps"] if cfg.relaxed else None,
            "wall_time_s": summary["wall_time_s"],
            "search": f"{cfg.strategy}/{SUMMARY_FILE}"}


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A Markdown table whose columns are padded, so that it also reads as plain text."""
    cells = [header] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines) + "\n"


def comparison_table(entries: list[dict]) -> str:
    rows = [[e["strategy"], "relaxed" if e["relaxed"] else "discrete", _round(e["reward"]), e["evaluations"],
             e["steps"], _round(e["wall_time_s"], 1)] for e in entries]
    return markdown_table(["strategy", "kind", "best reward", "evaluations", "relaxed steps", "wall time (s)"], rows)


def _round(value, digits: int = 4):
    return None if value is None else round(value, digits)


def plot_comparison(entries: list[dict], summaries: list[dict], path: Path, title: str, metric: str) -> None:
    longest = max([e["evaluations"] for e in entries] + [1])
    with curve_figure(path, "evaluations", f"best reward so far ({METRICS[metric]})", title, size=(7, 4.5)) as ax:
        for i, (e, summary) in enumerate(zip(entries, summaries)):
            if e["reward"] is None:
                continue
            if e["relaxed"]:
                ax.hlines(e["reward"], 1, longest, colors=f"C{i}", linestyles="--",
                          label=f"{e['strategy']} (relaxed, {e['steps']} steps: its derived cells' best)")
            else:
                best = np.maximum.accumulate([r["reward"] for r in summary["history"]])
                ax.step(np.arange(1, len(best) + 1), best, where="post", color=f"C{i}", label=e["strategy"])


def write_comparison(cfg: SearchConfig, results: list[tuple[SearchConfig, dict]], out, metric: str) -> dict | None:
    """Compare the searches, given as (config, search.json summary) of each strategy in order, their
    rewards being `metric`; None while a relaxed one is unfinished."""
    unfinished = [one.strategy for one, summary in results if summary is None]
    if unfinished:
        log.info("%s stopped before the end (max_steps); re-run to finish and compare", ", ".join(unfinished))
        return None
    out = Path(out)
    entries = [entry(one, summary) for one, summary in results]
    scored = [e for e in entries if e["reward"] is not None]
    winner = max(scored, key=lambda e: e["reward"]) if scored else None   # the first listed on ties
    comparison = {
        "supernet": cfg.supernet, "budget": cfg.budget, "strategies": entries,
        "best": winner and {"strategy": winner["strategy"], "genotype": winner["genotype"],
                            "genotype_str": winner["genotype_str"], "reward": winner["reward"],
                            "search": winner["search"]},
        "wall_time_s": round(sum(e["wall_time_s"] for e in entries), 3),
    }
    if is_main_process():
        write_json(out / COMPARISON_FILE, comparison)
        write_atomic(out / TABLE_FILE, f"# Strategies on {cfg.supernet}, budget {cfg.budget}\n\n"
                     + comparison_table(entries)
                     + "".join(f"\n- {e['strategy']}: `{e['genotype_str']}`\n" for e in scored))
        plot_comparison(entries, [summary for _, summary in results], out / PLOT_FILE, f"budget {cfg.budget} evaluations",
                        metric)
        log.info("done: %s (best: %s, reward %s)", out / COMPARISON_FILE, winner and winner["strategy"],
                 winner and round(winner["reward"], 4))
    return comparison
