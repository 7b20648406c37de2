"""tools/found_cells.py: found cells placed among the ground truth, arms paired by seed (checked with scipy)."""
import json

import pytest
from scipy.stats import ttest_rel
from tools_module import load_tool

found_cells = load_tool("found_cells")

TRUTH = [0.55, 0.58, 0.60, 0.62, 0.64]            # the ground truth's mean accuracies
SEED0 = [0.56, 0.57, 0.61, 0.63, 0.63]            # and their seed-0 runs
RANDOM = {1: 0.59, 2: 0.61, 3: 0.57}
PREDICTOR = {1: 0.63, 2: 0.615, 3: 0.60, 4: 0.65}  # seed 4: no random search to pair with
GDAS = 0.54
BEST_FIRST = sorted({*RANDOM.values(), *PREDICTOR.values(), GDAS}, reverse=True)


def cell_with(free: int) -> dict:
    """A genotype whose normal cell holds `free` parameter-free ops (pooling, identity) of its 10."""
    ops = (["skip_connect", "max_pool_5x5", "avg_pool_3x3"] * 4)[:free] + ["sep_conv_3x3"] * (10 - free)
    return {"normal": [[op, 0] for op in ops], "normal_concat": [2, 3, 4, 5, 6],
            "reduce": [["conv_1x1", 1]] * 10, "reduce_concat": [2, 3, 4, 5, 6]}


def write_run(root, arm, seed, acc, relaxed=False):
    run = root / arm / f"s{seed}"
    (run / "search").mkdir(parents=True)
    (run / "cell").mkdir()
    # the better the cell, the fewer parameter-free ops (one rank order) and the higher the reward (another)
    summary = {"best": {"reward": 0.2 + acc / 10, "genotype": cell_with(BEST_FIRST.index(acc))},
               "wall_time_s": 90.0 if relaxed else 60.0}
    (run / "search" / "search.json").write_text(json.dumps(summary))
    (run / "cell" / "retrain.json").write_text(json.dumps({"test_acc": acc, "params": 1000 + seed}))


@pytest.fixture
def runs(tmp_path):
    for arm, accs in (("random", RANDOM), ("predictor", PREDICTOR)):
        for seed, acc in accs.items():
            write_run(tmp_path / "runs", arm, seed, acc)
    write_run(tmp_path / "runs", "gdas", 1, GDAS, relaxed=True)
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps([{"genotype": {"normal": [["skip_connect", i]]}, "accuracy": a,
                                  "accuracies": {"0": s, "1": 2 * a - s}} for i, (a, s) in enumerate(zip(TRUTH, SEED0))]))
    return tmp_path / "runs", truth


def test_percentiles_and_the_paired_interval_match_an_independent_computation(runs, tmp_path, capsys):
    root, truth = runs
    found_cells.main([str(root), "--ground-truth", str(truth), "--json", str(tmp_path / "out.json"), "--md"])
    result = json.loads((tmp_path / "out.json").read_text())
    cells = {(c["arm"], c["seed"]): c for c in result["cells"]}
    assert cells["predictor", 1]["percentile"] == 80          # 0.63 lies above 0.55, 0.58, 0.60, 0.62
    assert cells["predictor", 1]["percentile_seed0"] == 60    # and above 0.56, 0.57, 0.61 of the seed-0 runs
    assert cells["gdas", 1]["percentile"] == 0 and cells["gdas", 1]["search_wall_s"] == 90.0

    arms = result["arms"]
    assert arms["predictor"]["seeds"] == 4 and arms["predictor"]["test_acc"] == pytest.approx(sum(PREDICTOR.values()) / 4)
    assert arms["random"]["below_median"] == 2                 # 0.59 and 0.57: below the ground truth's 0.60
    gap = arms["predictor"]["minus_random"]
    mine, theirs = [PREDICTOR[s] for s in RANDOM], list(RANDOM.values())
    expected = ttest_rel(mine, theirs).confidence_interval(0.95)
    assert gap["seeds"] == 3 and gap["mean"] == pytest.approx(sum(mine) / 3 - sum(theirs) / 3)
    assert gap["t95"] == pytest.approx([expected.low, expected.high])
    assert "minus_random" not in arms["random"] and arms["gdas"]["minus_random"]["t95"] is None   # one pair
    assert "| predictor | 4 | 0.624 |" in capsys.readouterr().out

    assert cells["predictor", 4]["parameter_free_ops"] == 0 and cells["gdas", 1]["parameter_free_ops"] == 7
    tau = result["accuracy_kendall_tau"]
    assert tau["reward"] == pytest.approx(1.0)              # the reward orders the cells as accuracy does
    assert tau["parameter_free_ops"] == pytest.approx(-1.0)     # and the count the other way round


def test_a_seed_directory_without_its_seed_is_one_clear_error(runs, capsys):
    root, truth = runs
    (root / "random" / "s1").rename(root / "random" / "first")
    with pytest.raises(SystemExit):
        found_cells.main([str(root), "--ground-truth", str(truth)])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds its seed" in err


def test_a_root_without_retrained_cells_is_one_clear_error(tmp_path, capsys):
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps([{"genotype": {}, "accuracy": 0.5}]))
    with pytest.raises(SystemExit):
        found_cells.main([str(tmp_path), "--ground-truth", str(truth)])
    assert "no retrain.json" in capsys.readouterr().err
