"""The ask / evaluate / tell loop of a discrete search, resumable, and what it writes.

Each round asks the strategy for `ask_size` genotypes, scores them, tells the
rewards, and then checkpoints atomically (strategy state, RNG states included,
and the history so far), so re-running the command continues exactly where the
last round ended. The run directory gets `history.jsonl` (one record per
evaluation), `metrics.jsonl` and TensorBoard events, and at the end
`search.json` (best genotype and reward, strategy, budget spent, full history)
and `search.png` (best reward so far against evaluations).
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from supernet.genotype import Genotype
from supernet.runtime.checkpoint import load_checkpoint, save_checkpoint
from supernet.runtime.config import to_dict
from supernet.runtime.distributed import barrier
from supernet.runtime.files import write_atomic, write_json
from supernet.runtime.metrics import MetricsLog, Progress
from supernet.runtime.plots import curve_figure
from supernet.scoring import METRICS

log = logging.getLogger(__name__)

HISTORY_FILE, SUMMARY_FILE, PLOT_FILE = "history.jsonl", "search.json", "search.png"
CACHED_FIELDS = ("reward", "score", "rejected", "params", "macs", "seconds")


def best_record(history: list[dict]) -> dict | None:
    """The first evaluation with the highest reward among the accepted ones."""
    accepted = [r for r in history if r["rejected"] is None]
    return max(accepted, key=lambda r: r["reward"]) if accepted else None


def restore_cache(evaluator, records: list[dict]) -> None:
    """Seed `evaluator`'s cache with the scores `records` (checkpointed evaluations) hold."""
    for rec in records:
        evaluator.cache.setdefault(Genotype.from_dict(rec["genotype"]), {k: rec[k] for k in CACHED_FIELDS})


def plot_history(history: list[dict], path: Path, title: str, metric: str) -> None:
    """Each evaluation's reward and the best so far, against evaluations."""
    rewards = np.array([r["reward"] for r in history])
    steps = np.arange(1, len(rewards) + 1)
    with curve_figure(path, "evaluations", f"reward ({METRICS[metric]})", title) as ax:
        ax.scatter(steps, rewards, s=6, alpha=0.4, label="evaluation")
        ax.plot(steps, np.maximum.accumulate(rewards), color="C1", label="best so far")


def run_search(cfg, strategy, evaluator, out, is_main: bool = True) -> dict:
    """Search until `cfg.budget` evaluations are done (resuming from `out`'s checkpoint); the summary."""
    out = Path(out)
    state = load_checkpoint(out)
    history, spent = [], (0.0, 0.0)
    if state is not None:
        strategy.load_state_dict(state["strategy"])
        history, spent = state["history"], (state["elapsed"], state["cpu"])
        restore_cache(evaluator, history)
        log.info("resuming %s after %d/%d evaluations", out, len(history), cfg.budget)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / HISTORY_FILE, "".join(json.dumps(r) + "\n" for r in history))
    metrics = MetricsLog(out, enabled=is_main, resume_step=len(history))
    clock = Clock(*spent)
    progress = Progress(cfg.budget, len(history), unit="evaluation")
    round_ = history[-1]["round"] + 1 if history else 0
    try:
        while len(history) < cfg.budget:
            genotypes = strategy.ask(min(cfg.ask_size, cfg.budget - len(history)))
            records = evaluator.evaluate(genotypes)
            strategy.tell(genotypes, [r["reward"] for r in records])
            new = [{"evaluation": len(history) + i + 1, "round": round_, "genotype": g.to_dict(), **r}
                   for i, (g, r) in enumerate(zip(genotypes, records))]
            history += new
            if is_main:
                save_checkpoint(out, checkpoint(cfg, strategy, history, clock))
                with open(out / HISTORY_FILE, "a") as f:
                    f.writelines(json.dumps(r) + "\n" for r in new)
            barrier()
            best = best_record(history)
            best_reward = best["reward"] if best else 0.0
            metrics.log(len(history), **{"search/best_reward": best_reward,
                                         "search/round_mean_reward": sum(r["reward"] for r in new) / len(new),
                                         "search/rejected": sum(r["rejected"] is not None for r in new)})
            if round_ % cfg.log_every == 0 or len(history) >= cfg.budget:
                log.info("%s | best reward %.4f", progress.line(len(history)), best_reward)
            round_ += 1
    finally:
        metrics.close()
    return summarize(cfg, history, clock, out, is_main, evaluator.scoring.metric, strategy.report())


class Clock:
    """The wall and CPU seconds (of this process, all its threads) a search has spent, over its resumptions."""

    def __init__(self, wall: float = 0.0, cpu: float = 0.0):
        self.start = time.perf_counter() - wall, time.process_time() - cpu

    def wall(self) -> float:
        return time.perf_counter() - self.start[0]

    def cpu(self) -> float:
        return time.process_time() - self.start[1]


def checkpoint(cfg, strategy, history: list[dict], clock: Clock) -> dict:
    """What a round's checkpoint holds: enough to continue the search exactly."""
    return {"strategy": strategy.state_dict(), "history": history, "elapsed": clock.wall(), "cpu": clock.cpu(),
            "config": to_dict(cfg)}


def summarize(cfg, history: list[dict], clock: Clock, out: Path, is_main: bool, metric: str,
              report: dict | None = None) -> dict:
    """The summary (search.json), with the strategy's `report` where it gives one."""
    best = best_record(history)
    scored = sum(not r["cached"] and r["rejected"] is None for r in history)
    summary = {
        "best": None if best is None else {
            "genotype": best["genotype"], "genotype_str": str(Genotype.from_dict(best["genotype"])),
            "reward": best["reward"], "evaluation": best["evaluation"]},
        "strategy": cfg.strategy, "strategy_options": cfg.strategy_options, "budget": cfg.budget,
        "evaluations": len(history), "scored": scored,
        "cached": sum(r["cached"] for r in history),
        "rejected": sum(r["rejected"] is not None for r in history),
        "wall_time_s": round(clock.wall(), 3), "cpu_time_s": round(clock.cpu(), 3), "supernet": cfg.supernet,
        "strategy_report": report, "history": history,
    }
    if is_main:
        write_json(out / SUMMARY_FILE, summary)
        plot_history(history, out / PLOT_FILE, f"{cfg.strategy}: best {summary['best']['reward']:.4f}"
                     if best else cfg.strategy, metric)
        log.info("done: %s (best reward %s)", out / SUMMARY_FILE, best and round(best["reward"], 4))
    return summary
