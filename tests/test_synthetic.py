"""The synthetic Evo-NAS task: its reward, its space, learning on it, and the benchmark CLI."""
import itertools
import json

import numpy as np
import pytest

from search.strategy import create_strategy
from search.synthetic import SyntheticSpace, main, reward, run_agent


def reward_by_definition(a) -> float:
    n = len(a)
    cost = a[0] ** 2 + sum((a[k + 1] - a[k]) ** 2 for k in range(n - 1)) + (a[-1] - (n + 1)) ** 2
    return (n + 1) / cost


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_reward_is_one_exactly_at_a_k_equal_k_and_below_elsewhere(n):
    optimum = tuple(range(1, n + 1))
    assert reward(optimum) == 1.0
    for a in itertools.product(range(1, n + 1), repeat=n):
        assert reward(a) == pytest.approx(reward_by_definition(a))
        if a != optimum:
            assert reward(a) < 1.0


def test_space_protocol():
    space = SyntheticSpace(7)
    rng = np.random.default_rng(0)
    for _ in range(50):
        g = space.sample(rng)
        assert len(g) == 7 and all(1 <= a <= 7 for a in g)
        assert space.decode(space.encode(g)) == g
        child = space.mutate(g, rng)
        assert sum(x != y for x, y in zip(g, child)) == 1
    with pytest.raises(ValueError, match="7 values in 1..7"):
        space.decode([7] * 7)


@pytest.mark.parametrize("name", ["evolution", "rl", "evo_nas"])
def test_learning_strategies_improve_over_their_first_proposals(name):
    """Mean reward of the last 100 of 2,000 proposals (default options) against the first 100
    (random for all three: an untrained controller, a population still filling).

    The margin is five standard errors of the first block's mean, so the gap is not noise."""
    space = SyntheticSpace(8)
    strategy = create_strategy(name, space, seed=0)
    rewards = []
    for _ in range(200):
        genotypes = strategy.ask(10)
        told = [reward(g) for g in genotypes]
        strategy.tell(genotypes, told)
        rewards += told
    first, last = np.array(rewards[:100]), np.array(rewards[-100:])
    margin = 5 * first.std(ddof=1) / np.sqrt(len(first))
    assert last.mean() > first.mean() + margin


def test_benchmark_cli_writes_curves_and_plot(tmp_path):
    out, png = tmp_path / "synthetic.json", tmp_path / "synthetic.png"
    main(["--n", "4", "--trials", "30", "--seeds", "2", "--json", str(out), "--png", str(png)])
    result = json.loads(out.read_text())
    assert set(result["agents"]) == {"random", "evolution", "rl", "evo_nas"}
    for stats in result["agents"].values():
        curve = np.array(stats["mean_best"])
        assert len(curve) == 30 and np.all(np.diff(curve) >= 0)
        assert stats["final_mean_best"] == pytest.approx(curve[-1], abs=1e-5)
    assert png.stat().st_size > 0


def test_predictor_guided_search_beats_random_search_at_equal_evaluations():
    """On each seed, the best reward after 150 evaluations: the predictor's search against random search's."""
    for seed in range(3):
        guided, plain = (run_agent(name, 8, 150, seed)[-1] for name in ("predictor", "random"))
        assert guided > plain, (seed, guided, plain)
