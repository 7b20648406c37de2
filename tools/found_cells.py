"""The cells that searches found, retrained, placed among the ground truth's cells, per strategy.

    python tools/found_cells.py ROOT --ground-truth FILE [--ground-truth FILE ...] [--against random] \
        [--json OUT] [--md]

ROOT holds one directory per strategy (its name is the arm's), each with one directory per search
seed (the first integer in its name is the seed), each holding somewhere inside it the search's
`search.json` and the found cell's `retrain.json` (nas-retrain genotype=.../search.json):

    ROOT/random/s1/search/search.json   ROOT/random/s1/cell/retrain.json   ROOT/predictor/s1/...

A found cell's percentile is the share of the ground-truth cells whose (mean) standalone accuracy
lies below its retrained test accuracy; where the ground truth holds runs of several seeds, the share
against their seed-0 runs too (one training against one training). Each arm's mean retrained
accuracy is paired by seed with that of the `--against` arm: the mean of the differences and its 95%
Student t interval over the seeds both ran (the arms share the seed's supernets and budget, so the
pairing removes what the seeds share). Over all the cells, Kendall tau of the retrained accuracy
against the search's best reward and against the count of parameter-free operations (pooling, identity)
in the normal cell: whether the reward found what retraining finds, and whether it favoured the
operations that lose nothing to a few fine-tuning steps on shared weights.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from functools import cache
from pathlib import Path

from ranking import pooled_ground_truth
from scipy.stats import kendalltau
from scipy.stats import t as student_t

from supernet.genotype import Genotype
from supernet.ops import OPS
from supernet.runtime.cli import command
from supernet.runtime.config import ConfigError
from supernet.runtime.files import write_json


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("root", type=Path, help="ROOT/<strategy>/<seed dir>/ with search.json and retrain.json inside")
    p.add_argument("--ground-truth", type=Path, action="append", required=True)
    p.add_argument("--against", default="random", help="the arm every other is paired with (by seed)")
    p.add_argument("--json", type=Path, help="write the cells and the arms' figures here")
    p.add_argument("--md", action="store_true", help="print the tables as markdown")
    return p.parse_args(argv)


def only_file(directory: Path, name: str) -> Path:
    found = sorted(directory.rglob(name))
    if len(found) != 1:
        raise ConfigError(f"{directory} must hold one {name}, found {len(found)}")
    return found[0]


@cache
def parameter_free(op: str) -> bool:
    """Whether `op` (of either space) holds no weights in a normal cell (stride 1)."""
    return not list(OPS[op](8, 1, True).parameters())


def read_cells(root: Path) -> list[dict]:
    """One record per retrained found cell under root: arm, seed, reward, the normal cell's parameter-free
    operations, params, accuracy, wall time."""
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory")
    cells = []
    for retrained in sorted(root.glob("*/*/**/retrain.json")):
        arm_dir, seed_dir = retrained.relative_to(root).parts[:2]
        seed = re.search(r"\d+", seed_dir)
        if seed is None:
            raise ConfigError(f"{root / arm_dir / seed_dir}: a seed directory's name holds its seed (s3, seed3)")
        summary = json.loads(only_file(root / arm_dir / seed_dir, "search.json").read_text())
        result = json.loads(retrained.read_text())
        normal = Genotype.from_dict(summary["best"]["genotype"]).normal
        # a relaxed search.json written before it kept the whole search's time has none
        cells.append({"arm": arm_dir, "seed": int(seed.group()), "reward": summary["best"]["reward"],
                      "parameter_free_ops": sum(parameter_free(op) for op, _ in normal),
                      "params": result["params"], "test_acc": result["test_acc"],
                      "search_wall_s": summary.get("wall_time_s")})
    if not cells:
        raise ConfigError(f"no retrain.json under {root}/<strategy>/<seed dir>/")
    return cells


def share_below(value: float, population: list[float]) -> float:
    return 100 * sum(a < value for a in population) / len(population)


def t_interval(differences: list[float]) -> list[float] | None:
    """The 95% Student t interval of the mean of `differences` (None for fewer than two)."""
    n = len(differences)
    if n < 2:
        return None
    half = student_t.ppf(0.975, n - 1) * statistics.stdev(differences) / math.sqrt(n)
    mean = statistics.fmean(differences)
    return [mean - half, mean + half]


def summarize(cells: list[dict], truth: list[dict], against: str) -> dict:
    """Each cell's percentiles, and per arm: seeds, mean accuracy and percentile, the paired difference."""
    means = [r["accuracy"] for r in truth]
    seed0 = [r["accuracies"]["0"] for r in truth if "0" in r.get("accuracies", {})]
    seed0 = seed0 if len(seed0) == len(truth) else None
    for c in cells:
        c["percentile"] = share_below(c["test_acc"], means)
        c["percentile_seed0"] = share_below(c["test_acc"], seed0) if seed0 else None
    arms = {}
    baseline = {c["seed"]: c["test_acc"] for c in cells if c["arm"] == against}
    for arm in sorted({c["arm"] for c in cells}):
        mine = [c for c in cells if c["arm"] == arm]
        paired = [c["test_acc"] - baseline[c["seed"]] for c in mine if c["seed"] in baseline]
        arms[arm] = {"seeds": len(mine), "test_acc": statistics.fmean(c["test_acc"] for c in mine),
                     "percentile": statistics.fmean(c["percentile"] for c in mine),
                     "percentile_seed0": statistics.fmean(c["percentile_seed0"] for c in mine) if seed0 else None,
                     "below_median": sum(c["percentile"] < 50 for c in mine)}
        if arm != against and paired:
            arms[arm][f"minus_{against}"] = {"seeds": len(paired), "mean": statistics.fmean(paired),
                                             "t95": t_interval(paired)}
    accuracy = [c["test_acc"] for c in cells]
    tau = {key: kendalltau([c[key] for c in cells], accuracy).statistic for key in ("reward", "parameter_free_ops")}
    return {"ground_truth_cells": len(truth), "against": against, "arms": arms,
            "accuracy_kendall_tau": tau, "cells": cells}


def markdown(result: dict) -> str:
    def num(x, digits=3):
        return "" if x is None else f"{x:,.{digits}f}"

    rows = [("| arm | seed | best reward | normal cell's parameter-free ops | params | retrained test accuracy | "
             "percentile (seed-0 runs) | search wall s |"), "|---|---|---|---|---|---|---|---|"]
    rows += [f"| {c['arm']} | {c['seed']} | {num(c['reward'], 4)} | {c['parameter_free_ops']} | {c['params']:,} | "
             f"{num(c['test_acc'])} | {num(c['percentile'], 0)} ({num(c['percentile_seed0'], 0)}) | "
             f"{num(c['search_wall_s'], 0)} |"
             for c in result["cells"]]
    key = f"minus_{result['against']}"
    rows += ["", (f"| arm | seeds | mean retrained accuracy | mean percentile (seed-0 runs) | below the median | "
                  f"minus {result['against']}, paired by seed [95% t interval] |"), "|---|---|---|---|---|---|"]
    for arm, a in result["arms"].items():
        gap = a.get(key)
        paired = f"{gap['mean']:+.3f}" if gap else ""
        if gap and gap["t95"]:
            paired += f" [{gap['t95'][0]:+.3f}, {gap['t95'][1]:+.3f}]"
        rows.append(f"| {arm} | {a['seeds']} | {num(a['test_acc'])} | {num(a['percentile'], 0)} "
                    f"({num(a['percentile_seed0'], 0)}) | {a['below_median']} | {paired} |")
    tau = result["accuracy_kendall_tau"]
    rows += ["", (f"Over the {len(result['cells'])} cells, Kendall tau of the retrained accuracy against the best "
                  f"reward {tau['reward']:+.2f}, against the normal cell's parameter-free ops {tau['parameter_free_ops']:+.2f}.")]
    return "\n".join(rows)


@command
def main(argv=None):
    args = parse_args(argv)
    truth, _ = pooled_ground_truth(args.ground_truth)   # a cell in two files counts once
    result = summarize(read_cells(args.root), truth, args.against)
    if args.json:
        write_json(args.json, result)
    if args.md:
        print(markdown(result))
    else:
        for arm, a in result["arms"].items():
            print(f"{arm}: {a['seeds']} seeds, mean accuracy {a['test_acc']:.3f}, percentile {a['percentile']:.0f}")


if __name__ == "__main__":
    main()
