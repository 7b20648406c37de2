"""The one matplotlib set-up of every figure a command writes (search curves, comparisons, cells)."""
from __future__ import annotations

import contextlib


def pyplot():
    """matplotlib.pyplot on the Agg back end (files only: no screen needed)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


@contextlib.contextmanager
def curve_figure(path, xlabel: str, ylabel: str, title: str, size=(6, 4)):
    """Axes to draw curves on; when the block ends they get their labels (and a legend where a curve
    has a label) and are saved to `path`."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=size)
    try:
        yield ax
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
        fig.tight_layout()
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
