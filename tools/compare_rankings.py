"""Paired comparisons of saved tools/ranking.py outputs, without scoring anything again.

    python tools/compare_rankings.py --against CONTROL.json A.json [B.json ...] [--json OUT]

For each ranking A: its Kendall tau minus CONTROL's over the genotypes both scored, with the 95%
bootstrap interval of that difference over the same draws of the genotypes (what `--against` of
tools/ranking.py reports, for outputs already made). Given several, also their mean tau minus
CONTROL's, over the genotypes all of them scored, on the same draws: whether supernets of several
training seeds (or options) lead the control on average, which no one of them may show alone.
Each gap comes again in `equal_width`, over only the pairs of genotypes whose cells concatenate as
many states: whether a ranking leads where width cannot order the cells.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ranking import read_output, tau_gap

from supernet.runtime.cli import command
from supernet.runtime.config import ConfigError
from supernet.runtime.files import write_json


def compare(rankings: dict[str, dict], control: dict) -> dict:
    """The paired tau gap of every ranking over `control` (genotype key -> (score, standalone accuracy,
    width)), over all pairs and over those of equal width, and with several, that of their mean tau."""
    for name, scores in rankings.items():
        if any(scores[k][1] != control[k][1] for k in scores.keys() & control.keys()):
            raise ConfigError(f"{name} and the control hold other standalone accuracies: rank against one ground truth")

    def gap(names: list[str]) -> dict:
        keys = sorted(set(control).intersection(*(rankings[n] for n in names)))
        if len(keys) < 3:
            raise ConfigError(f"{', '.join(names)} and the control share {len(keys)} genotypes; a comparison needs 3")
        scores = [[rankings[n][k][0] for k in keys] for n in names]
        other, truth, widths = ([control[k][i] for k in keys] for i in range(3))
        return {"count": len(keys), **tau_gap(scores, other, truth), "equal_width": tau_gap(scores, other, truth, widths)}

    result = {"each": {name: gap([name]) for name in rankings}}
    if len(rankings) > 1:
        result["mean"] = gap(list(rankings))
    return result


def line(name: str, figures: dict) -> str:
    def gap(f):
        low, high = f["tau_gap_95"]
        return f"{f['tau_gap']:+.3f} [{low:+.2f}, {high:+.2f}]"
    return (f"{name}: tau gap {gap(figures)} over {figures['count']} genotypes; "
            f"over the pairs of equal width {gap(figures['equal_width'])}")


@command
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--against", type=Path, required=True, help="the ranking the others are paired against")
    p.add_argument("rankings", type=Path, nargs="+", help="tools/ranking.py outputs")
    p.add_argument("--json", type=Path, help="file to write the figures to")
    args = p.parse_args(argv)
    control = read_output(args.against, "--against")
    rankings = {str(path): read_output(path, "ranking") for path in args.rankings}
    result = {"against": str(args.against), **compare(rankings, control)}
    for name, figures in result["each"].items():
        print(line(name, figures))
    if "mean" in result:
        print(line(f"the mean of {len(rankings)}", result["mean"]))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
