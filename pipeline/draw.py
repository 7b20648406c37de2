"""A cell drawn as a graph with matplotlib: the two cell inputs, one node per block, one edge per
(input, op) labelled with the op, and the output node that concatenates the states the cell lists.

    save_cell(genotype, reduction=False, path="report/normal.png")
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from supernet.genotype import Genotype

INPUTS = ("$c_{k-2}$", "$c_{k-1}$")
OUTPUT = "$c_{k}$"
COLORS = {"input": "#cfe2f3", "block": "#fff2cc", "output": "#d9ead3"}
COLUMN_GAP, ROW_GAP, BEND, LABEL_AT = 2.6, 1.8, 0.22, 0.75


def positions(pairs) -> dict:
    """State index (0, 1: the inputs; 2 + b: block b) or "out" -> (x, y): a column per depth
    (the longest path from the inputs), the states of a column spread around y = 0."""
    depth = [0, 0]
    for b in range(len(pairs) // 2):
        depth.append(1 + max(depth[j] for _, j in pairs[2 * b:2 * b + 2]))
    columns = defaultdict(list)
    for state, d in enumerate(depth):
        columns[d].append(state)
    pos = {state: (d * COLUMN_GAP, ((len(states) - 1) / 2 - i) * ROW_GAP)
           for d, states in columns.items() for i, state in enumerate(states)}
    pos["out"] = ((max(depth) + 1) * COLUMN_GAP, 0.0)
    return pos


def cell_figure(genotype: Genotype, reduction: bool):
    """The figure of the normal (or reduction) cell of `genotype`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs, concat = genotype.cell(reduction)
    pos = positions(pairs)
    xs, ys = [x for x, _ in pos.values()], [y for _, y in pos.values()]
    fig, ax = plt.subplots(figsize=(1.9 * (max(xs) / COLUMN_GAP + 1) + 1, 1.3 * (max(ys) - min(ys)) / ROW_GAP + 2.2))
    for k, (op, j) in enumerate(pairs):
        # the two slots of a block bend opposite ways, so that two edges from one input stay apart
        _edge(ax, pos[j], pos[2 + k // 2], BEND if k % 2 == 0 else -BEND, op)
    for state in concat:
        _edge(ax, pos[state], pos["out"], 0.0, None)
    for state, (x, y) in pos.items():
        kind = "output" if state == "out" else "input" if state < 2 else "block"
        label = OUTPUT if state == "out" else INPUTS[state] if state < 2 else str(state - 2)
        ax.text(x, y, label, ha="center", va="center", fontsize=11, zorder=3,
                bbox={"boxstyle": "round,pad=0.5", "fc": COLORS[kind], "ec": "0.3"})
    ax.set(xlim=(min(xs) - 0.8, max(xs) + 0.8), ylim=(min(ys) - 1.0, max(ys) + 1.0), aspect="equal",
           title=f"{'reduction' if reduction else 'normal'} cell (output: concat of {', '.join(map(_name, concat))})")
    ax.axis("off")
    fig.tight_layout()
    return fig


def _name(state: int) -> str:
    return INPUTS[state] if state < 2 else str(state - 2)


def _edge(ax, start, end, bend: float, op: str | None):
    ax.annotate("", xy=end, xytext=start, zorder=1, arrowprops={
        "arrowstyle": "-|>", "connectionstyle": f"arc3,rad={bend}", "shrinkA": 16, "shrinkB": 16,
        "color": "0.2" if op else "0.6", "linestyle": "-" if op else "--"})
    if op:
        # on matplotlib's arc3 curve (a quadratic Bezier; the axes have an equal aspect), nearer the
        # block than the input: the edges into one block bend apart there, so their labels do too
        (x1, y1), (x2, y2) = start, end
        cx, cy = (x1 + x2) / 2 + bend * (y2 - y1), (y1 + y2) / 2 - bend * (x2 - x1)
        t = LABEL_AT
        x, y = ((1 - t) ** 2 * a + 2 * (1 - t) * t * c + t ** 2 * b for a, c, b in ((x1, cx, x2), (y1, cy, y2)))
        ax.text(x, y, op, ha="center", va="center", fontsize=7, zorder=2,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})


def save_cell(genotype: Genotype, reduction: bool, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = cell_figure(genotype, reduction)
    fig.savefig(path, dpi=130)
    plt.close(fig)
