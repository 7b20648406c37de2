import numpy as np
import pytest

from supernet.genotype import Genotype, GenotypeError
from supernet.space import DARTS_OPS, NASNET_OPS, get_space

SPACES = ["nasnet", "darts"]


@pytest.mark.parametrize("name,ops,blocks", [("nasnet", NASNET_OPS, 5), ("darts", DARTS_OPS, 4)])
def test_decision_counts(name, ops, blocks):
    space = get_space(name)
    decisions = space.decisions
    assert len(ops) == (13 if name == "nasnet" else 8)
    assert len(decisions) == 2 * blocks * 4
    for d in decisions:
        assert d.num_choices == (d.block + 2 if d.kind == "input" else len(ops))
    assert len({d.name for d in decisions}) == len(decisions)


@pytest.mark.parametrize("name", SPACES)
def test_encode_decode_exact_on_random_genotypes(name):
    space = get_space(name)
    rng = np.random.default_rng(0)
    for _ in range(1000):
        seq = [int(rng.integers(d.num_choices)) for d in space.decisions]
        g = space.decode(seq)
        assert space.encode(g) == seq
        assert space.decode(space.encode(g)) == g
        assert Genotype.from_json(g.to_json()) == g
        assert Genotype.parse(str(g)) == g


def test_concat_rules():
    nasnet, darts = get_space("nasnet"), get_space("darts")
    g = nasnet.sample(3)
    for reduction in (False, True):
        pairs, concat = g.cell(reduction)
        used = {j for _, j in pairs}
        first = 2 if reduction else 0
        assert set(concat) == set(range(first, 7)) - used
        assert 6 in concat  # the last block is never read
    d = darts.sample(3)
    assert d.normal_concat == d.reduce_concat == (2, 3, 4, 5)


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("kind", ["input", "op"])
def test_mutate_changes_exactly_one_decision_of_the_kind(name, kind):
    space = get_space(name)
    rng = np.random.default_rng(1)
    for _ in range(200):
        g = space.sample(rng)
        child = space.mutate(g, rng, kind=kind)
        before, after = space.encode(g), space.encode(child)
        changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
        assert len(changed) == 1
        assert space.decisions[changed[0]].kind == kind


def test_mutate_without_kind_uses_both_kinds():
    space = get_space("nasnet")
    rng = np.random.default_rng(2)
    kinds = set()
    for _ in range(100):
        g = space.sample(rng)
        i = next(i for i, (a, b) in enumerate(zip(space.encode(g), space.encode(space.mutate(g, rng)))) if a != b)
        kinds.add(space.decisions[i].kind)
    assert kinds == {"input", "op"}


def test_sample_is_seeded_and_uniform_enough():
    space = get_space("darts")
    assert space.sample(7) == space.sample(7)
    ops = [op for s in range(400) for op, _ in space.sample(s).normal]
    counts = np.array([ops.count(o) for o in DARTS_OPS])
    # 3200 draws over 8 ops: each expected 400, sd ~19; 6 sd bounds
    assert np.all(np.abs(counts - 400) < 120)


def test_darts_notation_parse():
    text = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
            "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
            "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('max_pool_3x3', 1)], reduce_concat=range(2, 6))")
    g = Genotype.parse(text)
    assert g.num_blocks == 4
    assert g.reduce_concat == (2, 3, 4, 5)
    assert g.normal[7] == ("dil_conv_3x3", 2)
    assert get_space("darts").decode(get_space("darts").encode(g)) == g


@pytest.mark.parametrize("bad,match", [
    (("Genotype(normal=[('sep_conv_3x3', 5), ('sep_conv_3x3', 1)], normal_concat=[2], "
     "reduce=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], reduce_concat=[2])"), "cannot take input 5"),
    ("Genotype(normal=[('sep_conv_3x3', 0)], normal_concat=[2], reduce=[], reduce_concat=[2])", "two"),
    ('{"normal": [["a", 0], ["b", 1]], "normal_concat": [2]}', "needs exactly the keys"),
    ("Genotype(normal=__import__('os'))", "cannot parse"),
    ("not a genotype", "cannot parse"),
    ('{"normal": ', "not a genotype JSON"),
])
def test_malformed_genotypes_give_one_clear_error(bad, match):
    with pytest.raises(GenotypeError, match=match):
        Genotype.parse(bad)


def test_genotype_outside_the_space_is_rejected():
    g = get_space("darts").sample(0)
    with pytest.raises(GenotypeError, match="blocks"):
        get_space("nasnet").encode(g)
    bad = Genotype(tuple(("conv_9x9", j) for _, j in g.normal), g.normal_concat, g.reduce, g.reduce_concat)
    with pytest.raises(GenotypeError, match="conv_9x9"):
        get_space("darts").encode(bad)
    with pytest.raises(GenotypeError, match="decision"):
        get_space("darts").decode([99] * 32)


def test_unknown_space():
    with pytest.raises(ValueError, match="nasnet"):
        get_space("nope")
