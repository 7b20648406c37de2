"""Predictor-guided search: what it proposes, that it resumes exactly, and that it keeps to size limits."""
import numpy as np
import pytest

from search.constraints import Constraints
from search.strategy import StrategyError, check_options, create_strategy
from search.synthetic import SyntheticSpace, reward
from supernet.errors import UserError
from supernet.space import get_space


def tell_rounds(strategy, rounds: int, score, ask: int = 6) -> list:
    asked = []
    for _ in range(rounds):
        genotypes = strategy.ask(ask)
        strategy.tell(genotypes, [score(g) for g in genotypes])
        asked += genotypes
    return asked


def test_it_proposes_distinct_unseen_cells_the_predictor_ranks_best():
    space = SyntheticSpace(6)
    strategy = create_strategy("predictor", space, seed=0, initial=12, pool=200, acquisition="mean")
    asked = tell_rounds(strategy, 4, reward)
    assert len({tuple(g) for g in asked}) == len(asked) == 24
    proposals = strategy.ask(6)
    assert not {tuple(g) for g in proposals} & {tuple(g) for g in asked}
    # the proposals are the pool's best by the predictor fitted to everything told (its mean here)
    assert strategy.ranked == 2 * 200 + 200   # rounds 3, 4 and this ask ranked a pool each
    mean = strategy.predictor().predict(proposals)[0]
    assert list(mean) == sorted(mean, reverse=True)


def test_a_resumed_search_proposes_exactly_what_the_uninterrupted_one_proposes():
    space, options = SyntheticSpace(7), {"initial": 10, "pool": 300}
    whole = create_strategy("predictor", space, seed=3, **options)
    first = tell_rounds(whole, 3, reward) + tell_rounds(whole, 3, reward)
    cut = create_strategy("predictor", space, seed=3, **options)
    tell_rounds(cut, 3, reward)
    resumed = create_strategy("predictor", space, seed=3, **options)
    resumed.load_state_dict(cut.state_dict())
    assert tell_rounds(resumed, 3, reward) == first[18:]


def test_every_proposal_keeps_to_the_size_limit():
    space = get_space("nasnet")
    sizes = Constraints(8, 5, 10, 32)
    median = int(np.median([sizes.size(space.sample(seed))["params"] for seed in range(50)]))
    limits = Constraints(8, 5, 10, 32, max_params=median)
    strategy = create_strategy("predictor", space, seed=0, initial=8, pool=100, context={"limits": limits})
    asked = tell_rounds(strategy, 4, lambda g: float(limits.size(g)["params"]))   # bigger scores better
    assert all(limits.check(g)["rejected"] is None for g in asked)
    assert max(limits.size(g)["params"] for g in asked) > 0.9 * median   # it goes up to the limit, not past it


@pytest.mark.parametrize("options, message", [
    ({"acquisition": "thompson"}, "unknown acquisition 'thompson'; choose one of ucb, ei, mean"),
    ({"model": "xgboost"}, "unknown predictor model 'xgboost'"),
    ({"initial": 1}, "predictor needs initial >= 2"),
    ({"limits": 3}, "strategy 'predictor' has no option 'limits'"),   # the search gives it, not the user
])
def test_bad_options_are_one_line(options, message):
    with pytest.raises(UserError, match=message):
        check_options("predictor", options)
        create_strategy("predictor", SyntheticSpace(4), **options)
    assert issubclass(StrategyError, UserError)
