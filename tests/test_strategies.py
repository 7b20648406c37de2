"""Contract tests for every discrete strategy over the nasnet, darts and synthetic spaces."""
import io
import itertools

import numpy as np
import pytest
import torch

from search.controller import Controller
from search.strategy import STRATEGIES, StrategyError, create_strategy
from search.synthetic import SyntheticSpace
from supernet.space import get_space

SPACES = {"nasnet": get_space("nasnet"), "darts": get_space("darts"), "synthetic": SyntheticSpace(6)}
# Small populations so that a few rounds reach the mutation path.
OPTIONS = {"evolution": {"population_size": 8, "sample_size": 3},
           "evo_nas": {"population_size": 8, "sample_size": 3}}


def make(name, space, seed=0):
    return create_strategy(name, space, seed=seed, **OPTIONS.get(name, {}))


def toy_reward(space, genotype) -> float:
    """Mean of the decisions scaled to [0, 1]: a learnable objective over any space."""
    seq = space.encode(genotype)
    return float(np.mean([v / (d.num_choices - 1) for v, d in zip(seq, space.decisions)]))


def rounds(strategy, space, count, batch=4):
    proposals = []
    for _ in range(count):
        genotypes = strategy.ask(batch)
        strategy.tell(genotypes, [toy_reward(space, g) for g in genotypes])
        proposals.append(genotypes)
    return proposals


def reload(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_proposals_are_valid(name, space_name):
    space = SPACES[space_name]
    for genotypes in rounds(make(name, space), space, 5):
        for g in genotypes:
            seq = space.encode(g)
            assert len(seq) == len(space.decisions)
            assert all(0 <= v < d.num_choices for v, d in zip(seq, space.decisions))
            assert space.decode(seq) == g


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_resume_proposes_what_the_uninterrupted_run_proposes(name, space_name):
    space = SPACES[space_name]
    uninterrupted = make(name, space, seed=3)
    rounds(uninterrupted, space, 3)
    state = reload(uninterrupted.state_dict())
    expected = rounds(uninterrupted, space, 4)

    resumed = make(name, space, seed=99)   # a different seed: the state must override it
    resumed.load_state_dict(state)
    assert rounds(resumed, space, 4) == expected


@pytest.mark.parametrize("space_name", SPACES)
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_a_seed_repeats_a_run(name, space_name):
    space = SPACES[space_name]
    first = rounds(make(name, space, seed=5), space, 4)
    assert rounds(make(name, space, seed=5), space, 4) == first
    assert rounds(make(name, space, seed=6), space, 4) != first


def test_unknown_strategy_or_option_is_a_clear_error():
    with pytest.raises(StrategyError, match="unknown strategy 'annealing'"):
        create_strategy("annealing", SPACES["darts"])
    with pytest.raises(StrategyError, match="no option 'populaton_size'"):
        create_strategy("evolution", SPACES["darts"], populaton_size=10)


@pytest.mark.parametrize("tanh_constant", [None, 1.1])
def test_controller_probabilities_sum_to_one_over_all_sequences(tanh_constant):
    space = SyntheticSpace(3)
    controller = Controller(space.decisions, hidden=8, tanh_constant=tanh_constant,
                            generator=torch.Generator().manual_seed(0))
    everything = torch.tensor(list(itertools.product(range(3), repeat=3)))
    with torch.no_grad():
        logp, _ = controller.log_prob(everything)
    assert logp.exp().sum().item() == pytest.approx(1.0, abs=1e-5)


def test_controller_copies_kept_decisions_and_changes_resampled_ones():
    space = get_space("nasnet")
    controller = Controller(space.decisions, generator=torch.Generator().manual_seed(0))
    parents = torch.tensor([space.encode(space.sample(s)) for s in range(64)])
    resample = torch.rand(parents.shape, generator=torch.Generator().manual_seed(1)) < 0.3
    children = controller.sample(64, torch.Generator().manual_seed(2), parents, resample)
    assert torch.equal(children[~resample], parents[~resample])
    assert (children[resample] != parents[resample]).all()
