"""What supernet training samples (supernet.train.sample_paths), against what each sampling promises:
FairNAS's strict fairness, and path dropout's masks, whose single-choice case is the single path, and its schedule."""
import numpy as np
import pytest
import torch

from supernet.model import build_supernet
from supernet.runtime.config import ConfigError
from supernet.space import get_space
from supernet.train import TrainConfig, keep_share, sample_paths

SPACE = get_space("nasnet")


def test_fair_paths_take_every_op_once_and_the_inputs_evenly():
    paths = sample_paths(SPACE, seed=0, step=3, sampling="fair")
    assert len(paths) == len(SPACE.ops)
    choices = np.array([SPACE.encode(p["arch"]) for p in paths])
    for k, d in enumerate(SPACE.decisions):
        counts = np.bincount(choices[:, k], minlength=d.num_choices)
        if d.kind == "op":
            assert (counts == 1).all(), d.name
        else:
            assert counts.max() - counts.min() <= 1, d.name


def dropout(step, keep, mix):
    (path,) = sample_paths(SPACE, seed=0, step=step, sampling="dropout", keep=keep, mix=mix)
    return path["weights"]


@pytest.mark.parametrize("mix, share", [("sum", lambda n: 1.0), ("mean", lambda n: float(n))])
def test_dropout_weighs_each_kept_choice_by_the_mix(mix, share):
    for keep, allowed in ((0.0, lambda kept, n: kept == 1), (0.3, lambda kept, n: 1 <= kept <= n),
                          (1.0, lambda kept, n: kept == n)):
        masks = dropout(7, keep, mix)
        assert [len(m) for m in masks] == [d.num_choices for d in SPACE.decisions]
        for m in masks:
            kept = int((m > 0).sum())
            assert allowed(kept, len(m))
            assert torch.allclose(m[m > 0], torch.full((kept,), 1 / share(kept)))


def test_dropout_draws_the_same_masks_for_a_step_and_other_masks_for_another_step():
    first, again, other = dropout(5, 0.5, "mean"), dropout(5, 0.5, "mean"), dropout(6, 0.5, "mean")
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


@pytest.mark.parametrize("mix", ["sum", "mean"])
def test_dropout_keeping_one_choice_runs_the_single_path_of_those_choices(mix):
    torch.manual_seed(0)
    net = build_supernet("nasnet", C=4, layers=3, num_classes=10, op_bn=True).eval()
    x = torch.randn(2, 3, 16, 16)
    masks = dropout(11, 0.0, mix)
    genotype = SPACE.decode([int(m.argmax()) for m in masks])
    with torch.no_grad():
        assert torch.allclose(net(x, weights=masks), net(x, arch=genotype), atol=1e-5)


def test_keep_falls_linearly_over_keep_decay_of_the_steps_then_holds():
    steps = 101
    whole = TrainConfig(keep_start=1.0, keep_end=0.2, keep_decay=1.0)
    assert [keep_share(whole, s, steps) for s in (0, 50, 100)] == pytest.approx([1.0, 0.6, 0.2])
    half = TrainConfig(keep_start=1.0, keep_end=0.0, keep_decay=0.5)
    assert [keep_share(half, s, steps) for s in (0, 25, 50, 75, 100)] == pytest.approx([1.0, 0.5, 0.0, 0.0, 0.0])
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match="keep_decay"):
            TrainConfig(keep_decay=bad)
