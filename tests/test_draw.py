"""Cell drawings a reader can read: no op label covers a node or another label, for the published cells
and for random cells of both spaces."""
import itertools

import pytest

from pipeline.draw import cell_figure, label_boxes
from supernet import zoo
from supernet.space import get_space

CELLS = [(name, zoo.get(name)) for name in zoo.names()] + [
    (f"{space} {seed}", get_space(space).sample(seed)) for space in ("nasnet", "darts") for seed in range(8)]


@pytest.mark.parametrize("name, genotype", CELLS, ids=[name for name, _ in CELLS])
def test_no_label_overlaps_a_node_or_another_label(name, genotype):
    import matplotlib.pyplot as plt

    for reduction in (False, True):
        fig = cell_figure(genotype, reduction)
        fig.canvas.draw()
        texts = [t.get_text() for t in fig.axes[0].texts if t.get_bbox_patch()]
        boxes = label_boxes(fig)
        pairs, _ = genotype.cell(reduction)
        assert len(boxes) == len(pairs) + len(pairs) // 2 + 3   # every op label and every node is boxed
        overlapping = [(texts[i], texts[j]) for i, j in itertools.combinations(range(len(boxes)), 2)
                       if boxes[i].overlaps(boxes[j])]
        assert not overlapping, f"{'reduction' if reduction else 'normal'} cell: {overlapping}"
        plt.close(fig)
