"""The performance predictor and its parts: the sizes it reads, the features, the fit, the acquisitions
and the record of a fit, each against an independent computation."""
import numpy as np
import pytest
from scipy.stats import kendalltau, norm

from search.constraints import Constraints, SizeTable
from search.predictor import ACQUISITIONS, MODELS, Predictor, cell_depth, genotype_features
from search.synthetic import SyntheticSpace
from supernet import zoo
from supernet.errors import UserError
from supernet.space import get_space

NASNET = get_space("nasnet")


@pytest.mark.parametrize("space_name, shape", [("nasnet", (8, 5, 10, 32, 3)), ("darts", (16, 8, 10, 32, 3)),
                                               ("nasnet", (48, 14, 1000, 224, 3)), ("darts", (4, 3, 10, 8, 1))])
def test_the_size_table_sums_what_building_each_network_counts(space_name, shape):
    """Independently: supernet.sizes' counts of the network built on the meta device."""
    import torch

    from supernet.network import build_network
    from supernet.sizes import count_macs, count_params

    C, layers, classes, image_size, channels = shape
    stem = "imagenet" if image_size > 64 else "cifar"
    table = SizeTable(C, layers, classes, image_size, channels, stem)
    space = get_space(space_name)
    published = zoo.get("darts_v2" if space_name == "darts" else "nasnet_a")
    for g in [space.sample(seed) for seed in range(4)] + [published]:
        with torch.device("meta"):
            net = build_network(g, C, layers, classes, stem=stem, in_channels=channels)
        assert table.size(g) == {"params": count_params(net), "macs": count_macs(net, image_size, channels)}
    assert Constraints(C, layers, classes, image_size, channels).size(published) == table.size(published)


def test_features_are_the_decisions_one_hot_and_what_the_cells_say():
    genotypes = [NASNET.sample(seed) for seed in range(5)] + [zoo.get("nasnet_a")]
    sizes = SizeTable(8, 5, 10, 32)
    features = genotype_features(NASNET, genotypes, sizes)
    width = sum(d.num_choices for d in NASNET.decisions)
    assert features.shape == (6, width + 2 * (13 + 2) + 2)
    for g, row in zip(genotypes, features):
        one_hot, rest = row[:width], row[width:]
        choices = np.split(one_hot, np.cumsum([d.num_choices for d in NASNET.decisions])[:-1])
        assert [int(c.argmax()) for c in choices] == NASNET.encode(g) and all(c.sum() == 1 for c in choices)
        for k, cell in enumerate((g.normal, g.reduce)):
            counts = rest[15 * k:15 * k + 13]
            assert counts.tolist() == [sum(used == op for used, _ in cell) for op in NASNET.ops]
        assert rest[13] == len(g.normal_concat) and rest[28] == len(g.reduce_concat)
        size = sizes.size(g)
        assert rest[-2:] == pytest.approx([np.log10(size["params"]), np.log10(size["macs"])])


def test_a_cells_depth_is_its_longest_chain_of_blocks():
    pairs = [("conv_1x1", 0), ("conv_1x1", 1), ("conv_1x1", 2), ("conv_1x1", 0), ("conv_1x1", 3), ("conv_1x1", 1)]
    assert cell_depth(pairs, [4]) == 3 and cell_depth(pairs, [2]) == 1 and cell_depth(pairs, [3, 2]) == 2


def synthetic_score(g) -> float:
    """A smooth function of a cell: its convolutions count, its wide outputs more, its pools less."""
    score = 0.0
    for cell, weight in ((g.normal, 1.0), (g.reduce, 0.5)):
        score += weight * sum(("conv" in op) - 0.5 * ("pool" in op) for op, _ in cell)
    return score + 0.7 * len(g.normal_concat)


@pytest.mark.parametrize("model", list(MODELS))
def test_a_predictor_ranks_cells_it_has_not_seen_far_better_than_chance(model):
    rng = np.random.default_rng(0)
    cells = [NASNET.sample(rng) for _ in range(260)]
    scores = [synthetic_score(g) + rng.normal(0, 0.3) for g in cells]
    predictor = Predictor(NASNET, model, seed=0).fit(cells[:200], scores[:200])
    mean, spread = predictor.predict(cells[200:])
    truth = [synthetic_score(g) for g in cells[200:]]
    assert kendalltau(mean, truth)[0] > 0.5, model   # chance is 0; the noisy labels themselves rank at 0.93
    assert spread.shape == (60,) and (spread >= 0).all()


def test_cross_validation_ranks_the_records_as_fits_to_the_other_folds_predict_them():
    cells = [NASNET.sample(seed) for seed in range(60)]
    scores = [synthetic_score(g) for g in cells]
    predictor = Predictor(NASNET, "forest", seed=3).fit(cells, scores)
    tau = predictor.cross_validated_tau(folds=4)
    order = np.random.default_rng(3).permutation(60)
    predicted = np.empty(60)
    for k in range(4):
        held = order[k::4]
        rest = np.setdiff1d(order, held)
        other = Predictor(NASNET, "forest", seed=3).fit([cells[i] for i in rest], [scores[i] for i in rest])
        predicted[held] = other.predict([cells[i] for i in held])[0]
    assert tau == pytest.approx(kendalltau(predicted, scores)[0]) and tau > 0   # chance is 0
    assert Predictor(NASNET).fit(cells[:5], scores[:5]).cross_validated_tau() is None   # too few to fold


def test_the_acquisitions_trade_the_mean_against_the_spread():
    mean, spread = np.array([0.2, 0.5, 0.4]), np.array([0.3, 0.0, 0.1])
    assert ACQUISITIONS["mean"](mean, spread, 0.45, 2.0).tolist() == mean.tolist()
    assert ACQUISITIONS["ucb"](mean, spread, 0.45, 2.0) == pytest.approx([0.8, 0.5, 0.6])
    z = (mean[[0, 2]] - 0.45) / spread[[0, 2]]
    expected = (mean[[0, 2]] - 0.45) * norm.cdf(z) + spread[[0, 2]] * norm.pdf(z)
    improvement = ACQUISITIONS["ei"](mean, spread, 0.45, 2.0)
    assert improvement[[0, 2]] == pytest.approx(expected) and improvement[1] == pytest.approx(0.05)


def test_a_predictor_is_its_records_and_refits_to_the_same_predictions():
    cells = [NASNET.sample(seed) for seed in range(40)]
    predictor = Predictor(NASNET, "forest", seed=1).fit(cells, [synthetic_score(g) for g in cells])
    again = Predictor.from_dict(predictor.to_dict(), NASNET)
    others = [NASNET.sample(seed) for seed in range(40, 50)]
    assert all(np.array_equal(a, b) for a, b in zip(predictor.predict(others), again.predict(others)))
    with pytest.raises(UserError, match="fitted on the 'nasnet' space; this search is on 'darts'"):
        Predictor.from_dict(predictor.to_dict(), get_space("darts"))


def test_a_synthetic_space_has_its_decisions_for_features():
    space = SyntheticSpace(5)
    cells = [space.sample(seed) for seed in range(3)]
    assert genotype_features(space, cells).shape == (3, 25)


@pytest.mark.parametrize("kind, name", [("acquisition", "thompson"), ("model", "xgboost")])
def test_an_unknown_acquisition_or_model_is_one_line(kind, name):
    predictor = Predictor(NASNET).fit([NASNET.sample(s) for s in range(12)], list(range(12)))
    with pytest.raises(UserError, match=rf"unknown .*{kind} {name!r}; choose one of"):
        if kind == "acquisition":
            predictor.acquisition(name, [NASNET.sample(0)])
        else:
            Predictor(NASNET, name)
