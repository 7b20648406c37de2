"""A cell drawn as a graph with matplotlib: the two cell inputs, one node per block, one edge per
(input, op) labelled with the op, and the output node that concatenates the states the cell lists.

    save_cell(genotype, reduction=False, path="report/normal.png")

No label covers a node or another label: each op label goes to the first place along its edge
(nearer the block first) where its box, as rendered, is clear of every node and every label placed
before it; where an edge has no such place, the whole drawing is spread wider and placed again.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from supernet.genotype import Genotype
from supernet.runtime.plots import pyplot

INPUTS = ("$c_{k-2}$", "$c_{k-1}$")
OUTPUT = "$c_{k}$"
COLORS = {"input": "#cfe2f3", "block": "#fff2cc", "output": "#d9ead3"}
COLUMN_GAP, ROW_GAP, BEND = 2.6, 1.8, 0.22
LABEL_PLACES = (0.72, 0.6, 0.82, 0.5, 0.4, 0.3, 0.9)   # along an edge, from its input (0) to its block (1)
SPREADS = (1.0, 1.3, 1.6, 2.0, 2.5)                    # how much wider to draw when labels do not fit


def positions(pairs, spread: float = 1.0) -> dict:
    """State index (0, 1: the inputs; 2 + b: block b) or "out" -> (x, y): a column per depth
    (the longest path from the inputs), the states of a column spread around y = 0."""
    depth = [0, 0]
    for b in range(len(pairs) // 2):
        depth.append(1 + max(depth[j] for _, j in pairs[2 * b:2 * b + 2]))
    columns = defaultdict(list)
    for state, d in enumerate(depth):
        columns[d].append(state)
    column_gap, row_gap = COLUMN_GAP * spread, ROW_GAP * spread
    pos = {state: (d * column_gap, ((len(states) - 1) / 2 - i) * row_gap)
           for d, states in columns.items() for i, state in enumerate(states)}
    pos["out"] = ((max(depth) + 1) * column_gap, 0.0)
    return pos


def _on_arc(start, end, bend: float, t: float) -> tuple[float, float]:
    """The point at `t` on matplotlib's arc3 curve from start to end (a quadratic Bezier; the axes
    have an equal aspect)."""
    (x1, y1), (x2, y2) = start, end
    cx, cy = (x1 + x2) / 2 + bend * (y2 - y1), (y1 + y2) / 2 - bend * (x2 - x1)
    return tuple((1 - t) ** 2 * a + 2 * (1 - t) * t * c + t ** 2 * b for a, c, b in ((x1, cx, x2), (y1, cy, y2)))


def label_boxes(fig) -> list:
    """The rendered boxes (display coordinates) of every node and op label of a cell figure."""
    renderer = fig.canvas.get_renderer()
    return [t.get_bbox_patch().get_window_extent(renderer) for t in fig.axes[0].texts if t.get_bbox_patch()]


def cell_figure(genotype: Genotype, reduction: bool):
    """The figure of the normal (or reduction) cell of `genotype`."""
    plt = pyplot()
    for spread in SPREADS:
        fig, placed = _draw(plt, genotype, reduction, spread)
        if placed or spread == SPREADS[-1]:
            return fig
        plt.close(fig)


def _draw(plt, genotype: Genotype, reduction: bool, spread: float):
    """The figure at `spread`, and whether every label found a clear place."""
    pairs, concat = genotype.cell(reduction)
    pos = positions(pairs, spread)
    xs, ys = [x for x, _ in pos.values()], [y for _, y in pos.values()]
    fig, ax = plt.subplots(figsize=(1.9 * (max(xs) / COLUMN_GAP + 1) + 1, 1.3 * (max(ys) - min(ys)) / ROW_GAP + 2.2))
    ax.set(xlim=(min(xs) - 0.8, max(xs) + 0.8), ylim=(min(ys) - 1.0, max(ys) + 1.0), aspect="equal",
           title=f"{'reduction' if reduction else 'normal'} cell (output: concat of {', '.join(map(_name, concat))})")
    ax.axis("off")
    # the two slots of a block bend opposite ways, so that two edges from one input stay apart
    edges = [(pos[j], pos[2 + k // 2], BEND if k % 2 == 0 else -BEND, op) for k, (op, j) in enumerate(pairs)]
    for start, end, bend, op in edges:
        ax.annotate("", xy=end, xytext=start, zorder=1, arrowprops={
            "arrowstyle": "-|>", "connectionstyle": f"arc3,rad={bend}", "shrinkA": 16, "shrinkB": 16, "color": "0.2"})
    for state in concat:
        ax.annotate("", xy=pos["out"], xytext=pos[state], zorder=1, arrowprops={
            "arrowstyle": "-|>", "shrinkA": 16, "shrinkB": 16, "color": "0.6", "linestyle": "--"})
    for state, (x, y) in pos.items():
        kind = "output" if state == "out" else "input" if state < 2 else "block"
        label = OUTPUT if state == "out" else INPUTS[state] if state < 2 else str(state - 2)
        ax.text(x, y, label, ha="center", va="center", fontsize=11, zorder=3,
                bbox={"boxstyle": "round,pad=0.5", "fc": COLORS[kind], "ec": "0.3"})
    fig.tight_layout()
    fig.canvas.draw()   # fixes the axes' place (equal aspect), so that boxes measured now are final
    renderer = fig.canvas.get_renderer()
    taken = label_boxes(fig)   # the nodes, then each label as it is placed
    all_clear = True
    for start, end, bend, op in edges:
        text = ax.text(0, 0, op, ha="center", va="center", fontsize=7, zorder=2,
                       bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85})
        for t in LABEL_PLACES:
            text.set_position(_on_arc(start, end, bend, t))
            text.draw(renderer)   # lays its box out at the new place
            box = text.get_bbox_patch().get_window_extent(renderer)
            if not any(box.overlaps(other) for other in taken):
                break
        else:
            all_clear = False
        taken.append(box)
    return fig, all_clear


def _name(state: int) -> str:
    return INPUTS[state] if state < 2 else str(state - 2)


def save_cell(genotype: Genotype, reduction: bool, path: Path) -> None:
    fig = cell_figure(genotype, reduction)
    fig.savefig(path, dpi=130)
    pyplot().close(fig)
