"""What the pipeline shows at the end, from the stages' final JSONs: a summary table (printed, and in
DIR/report/summary.md), DIR/report/summary.json, the chosen cells drawn (normal.png, reduce.png)
and the search curve (search.png: the search's own plot or the comparison's; a relaxed search,
which draws none, gets its accuracies during the search and its derived cell's reward).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from search.compare import PLOT_FILE as COMPARISON_PLOT
from search.compare import comparison_table, markdown_table
from search.config import scoring_of
from search.loop import PLOT_FILE as SEARCH_PLOT
from supernet.genotype import Genotype
from supernet.runtime.config import to_dict
from supernet.runtime.files import write_atomic, write_json
from supernet.runtime.metrics import read_metrics
from supernet.runtime.plots import curve_figure
from supernet.scoring import METRICS

from .draw import save_cell
from .stages import final_json

REPORT_DIR = "report"
SUMMARY_JSON, SUMMARY_MD, CURVE = "summary.json", "summary.md", "search.png"


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def gather(out: Path, configs: dict) -> dict:
    """The headline figures of the three finished stages."""
    supernet = _read(final_json("supernet", configs["supernet"], out / "supernet"))
    found = _read(final_json("search", configs["search"], out / "search"))
    retrained = _read(final_json("retrain", configs["retrain"], out / "retrain"))
    compared = isinstance(configs["search"].strategy, list)
    strategy = found["best"]["strategy"] if compared else found["strategy"]
    return {
        "dataset": supernet["dataset"], "space": supernet["space"], "strategy": strategy,
        "genotype": retrained["genotype"], "genotype_str": str(Genotype.from_dict(retrained["genotype"])),
        "reward": found["best"]["reward"],   # the cells' validation score on the supernet's shared weights
        "reward_metric": scoring_of(to_dict(configs["supernet"]), configs["search"].scoring).metric,
        "supernet_val_acc_mean": supernet["val_acc_mean"], "supernet_eval_subnets": len(supernet["val_acc"] or []),
        "params": retrained["params"], "macs": retrained["macs"],
        "test_acc": retrained["test_acc"], "test_top5": retrained["test_top5"],
        "time_s": {"supernet": supernet["wall_time_s"], "search": found["wall_time_s"], "retrain": retrained["wall_time_s"]},
        "strategies": found["strategies"] if compared else None,
        "predictor": None if compared else predictor_figures(found),
    }


def predictor_figures(found: dict) -> dict | None:
    """What a search's predictor showed (a screened search's, or the predictor strategy's): how well it
    ranks the cells it learned from, cross-validated, and how many candidates it ranked a second."""
    screening, report = found.get("screening"), found.get("strategy_report") or {}
    if screening:
        return {"cross_validated_tau": screening["cross_validated_tau"], "per_s": screening["screened_per_s"]}
    if "cross_validated_tau" in report:
        return {"cross_validated_tau": report["cross_validated_tau"], "per_s": report["ranked_per_s"]}
    return None


def summary_table(s: dict) -> str:
    t = s["time_s"]
    rows = [
        ["supernet", f"mean validation accuracy of {s['supernet_eval_subnets']} random subnets",
         _fmt(s["supernet_val_acc_mean"])],
        ["supernet", "random subnets' accuracy / the retrained network's test accuracy",
         _fmt(s["supernet_val_acc_mean"] / s["test_acc"]
              if s["supernet_val_acc_mean"] is not None and s["test_acc"] else None)],   # eval_subnets: 0 scores none
        ["search", "strategy", s["strategy"]],
        ["search", f"reward: {METRICS[s['reward_metric']]} of the chosen cells on shared weights",
         _fmt(s["reward"])],
        *([["search", "predictor: Kendall tau of its cross-validated predictions of its own cells",
            _fmt(s["predictor"]["cross_validated_tau"])],
           ["search", "predictor: candidates ranked a second", f"{s['predictor']['per_s'] or 0:,.0f}"]]
          if s.get("predictor") else []),
        ["retrain", "parameters", f"{s['params']:,}"],
        ["retrain", "mult-adds", f"{s['macs']:,}"],
        ["retrain", "test accuracy (top-1 / top-5)", f"{_fmt(s['test_acc'])} / {_fmt(s['test_top5'])}"],
        ["time", " / ".join(t) + " (s)", " / ".join(f"{seconds:.1f}" for seconds in t.values())],
    ]
    return markdown_table(["stage", "figure", "value"], rows)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def plot_relaxed_curve(search_dir: Path, reward: float, path: Path, title: str, metric: str) -> None:
    """The training and validation accuracy of the relaxed supernet during the search, and the reward (its
    `metric`) of the cell it derived."""
    records = [r for r in read_metrics(search_dir) if "val/acc" in r]
    with curve_figure(path, "search steps", f"accuracy; reward: {METRICS[metric]}", title) as ax:
        for key, label in (("train/acc", "training batches"), ("val/acc", "validation batches")):
            ax.plot([r["step"] for r in records], [r[key] for r in records], label=f"relaxed supernet, {label}")
        ax.axhline(reward, color="C2", linestyle="--", label=f"derived cell's reward {reward:.4f}")


def write_report(out: Path, configs: dict) -> dict:
    """Write DIR/report/ and return the summary that summary.json holds."""
    summary = gather(out, configs)
    report = out / REPORT_DIR
    report.mkdir(parents=True, exist_ok=True)
    genotype = Genotype.from_dict(summary["genotype"])
    save_cell(genotype, False, report / "normal.png")
    save_cell(genotype, True, report / "reduce.png")
    search_dir, search_cfg = out / "search", configs["search"]
    if isinstance(search_cfg.strategy, list):
        shutil.copyfile(search_dir / COMPARISON_PLOT, report / CURVE)
    elif search_cfg.relaxed:
        plot_relaxed_curve(search_dir, summary["reward"], report / CURVE, f"{search_cfg.strategy} search",
                           summary["reward_metric"])
    else:
        shutil.copyfile(search_dir / SEARCH_PLOT, report / CURVE)
    write_json(report / SUMMARY_JSON, summary)
    strategies = summary["strategies"]
    write_atomic(report / SUMMARY_MD, "\n".join([
        f"# NAS pipeline: {summary['dataset']}, {summary['space']} space\n", summary_table(summary),
        f"Chosen cells ({summary['strategy']}): `{summary['genotype_str']}`\n",
        "![normal cell](normal.png)\n", "![reduction cell](reduce.png)\n", f"![search]({CURVE})\n",
        *(["## Strategies compared\n", comparison_table(strategies)] if strategies else [])]))
    return summary
