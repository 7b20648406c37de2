"""What supernet training samples (supernet.train.sample_paths), against what each sampling promises:
FairNAS's strict fairness, and path dropout's masks, whose single-choice case is the single path, and its schedule."""
import numpy as np
import pytest
import torch

from supernet.model import build_supernet
from supernet.runtime.config import ConfigError
from supernet.space import get_space
from supernet.train import (
    TrainConfig,
    allowed_choices,
    distill_loss,
    distill_students,
    keep_share,
    sample_paths,
    worst_ops,
)

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


@pytest.mark.parametrize("mix, share", [("sum", lambda n: 1.0), ("sqrt", np.sqrt), ("mean", lambda n: float(n))])
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


@pytest.mark.parametrize("mix", ["sum", "sqrt", "mean"])
def test_dropout_keeping_one_choice_runs_the_single_path_of_those_choices(mix):
    torch.manual_seed(0)
    net = build_supernet("nasnet", C=4, layers=3, num_classes=10, op_bn=True).eval()
    x = torch.randn(2, 3, 16, 16)
    masks = dropout(11, 0.0, mix)
    genotype = SPACE.decode([int(m.argmax()) for m in masks])
    with torch.no_grad():
        assert torch.allclose(net(x, weights=masks), net(x, arch=genotype), atol=1e-5)


def test_dropout_with_every_choice_allowed_draws_as_without():
    every = allowed_choices(SPACE, {})
    assert all(a.all() for a in every)
    for step, keep in ((3, 0.0), (4, 0.4)):
        (path,) = sample_paths(SPACE, 0, step, "dropout", keep=keep, allowed=every)
        assert all(torch.equal(a, b) for a, b in zip(path["weights"], dropout(step, keep, "mean")))


def test_dropout_keeps_no_pruned_op():
    pruned = {"normal": ["skip_connect", "max_pool_7x7"], "reduce": ["conv_1x1"]}
    allowed = allowed_choices(SPACE, pruned)
    for step in range(20):
        for keep in (0.0, 0.5, 1.0):
            (path,) = sample_paths(SPACE, 0, step, "dropout", keep=keep, allowed=allowed)
            for d, mask in zip(SPACE.decisions, path["weights"]):
                kept = {SPACE.ops[i] if d.kind == "op" else i for i in mask.nonzero().flatten().tolist()}
                gone = set(pruned[d.cell]) if d.kind == "op" else set()
                assert len(kept) >= 1 and not kept & gone, d.name
                assert torch.allclose(mask[mask > 0], torch.full((len(kept),), 1 / len(kept)))
                if keep in (0.0, 1.0):   # a single path; every choice left
                    assert len(kept) == (1 if keep == 0.0 else d.num_choices - len(gone)), d.name


def test_worst_ops_are_the_lowest_use_weighted_mean_scores():
    rng = np.random.default_rng(0)
    genotypes = [SPACE.sample(rng) for _ in range(40)]
    scores = rng.random(40)
    worst = worst_ops(SPACE, genotypes, scores, 3)
    for cell in ("normal", "reduce"):
        mean = {}
        for op in SPACE.ops:   # every (genotype, block slot) that uses the op, its genotype's score
            uses = [s for g, s in zip(genotypes, scores) for used, _ in getattr(g, cell) if used == op]
            mean[op] = sum(uses) / len(uses)
        assert worst[cell] == sorted(SPACE.ops, key=mean.get)[:3]
    # genotypes that score lower the more normal blocks run max_pool_7x7: that op is the worst there
    penalty = [-sum(op == "max_pool_7x7" for op, _ in g.normal) for g in genotypes]
    assert worst_ops(SPACE, genotypes, penalty, 1)["normal"] == ["max_pool_7x7"]


def test_keep_falls_linearly_over_keep_decay_of_the_steps_then_holds():
    steps = 101
    whole = TrainConfig(keep_start=1.0, keep_end=0.2)
    assert [keep_share(whole, s, steps) for s in (0, 50, 100)] == pytest.approx([1.0, 0.6, 0.2])
    half = TrainConfig(keep_start=1.0, keep_end=0.0, keep_decay=0.5)
    assert [keep_share(half, s, steps) for s in (0, 25, 50, 75, 100)] == pytest.approx([1.0, 0.5, 0.0, 0.0, 0.0])
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match="keep_decay"):
            TrainConfig(keep_decay=bad)


@pytest.mark.parametrize("bad", [{"sampling": "uniform", "shrink_ops": 2}, {"sampling": "dropout", "shrink_ops": 13},
                                 {"sampling": "dropout", "shrink_ops": 2, "shrink_paths": 0}])
def test_shrinking_needs_path_dropout_and_leaves_ops_to_sample(bad):
    with pytest.raises(ConfigError, match="shrink_ops"):
        TrainConfig(**bad)


def test_distilled_single_paths_are_drawn_per_step_apart_from_the_sampled_paths():
    first, again, other = (distill_students(SPACE, 0, step, 2) for step in (5, 5, 6))
    assert first == again and first != other and len(first) == 2
    assert all(SPACE.encode(g) for g in first)   # genotypes of the space


def test_distill_loss_is_the_kl_divergence_of_teacher_to_student():
    student, teacher = torch.randn(4, 10, dtype=torch.float64), torch.randn(4, 10, dtype=torch.float64)
    p, q = teacher.softmax(1).numpy(), student.softmax(1).numpy()
    expected = (p * np.log(p / q)).sum(1).mean()
    assert np.isclose(distill_loss(student, teacher).item(), expected)
    assert distill_loss(teacher, teacher).item() == pytest.approx(0, abs=1e-12)
