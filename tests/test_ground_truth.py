"""tools/ground_truth.py: the runs a ground-truth file already records are read back, not trained
again, and a cell's accuracy is the mean over its seeds."""
import json

import pytest
from tools_module import ROOT, load_tool

ground_truth = load_tool("ground_truth")


def write_records(path, cells, accuracies):
    path.write_text(json.dumps([{"name": name, "genotype": g.to_dict(), "accuracy": 0.0, "accuracies": accuracies[name],
                                 "params": 1000 + k, "macs": 2000 + k} for k, (name, g) in enumerate(cells.items())]))


@pytest.mark.parametrize("seeds", [2, 3])
def test_recorded_runs_are_read_back_and_each_accuracy_is_the_mean_over_seeds(tmp_path, capsys, seeds):
    cells = ground_truth.genotypes("nasnet", 3, 0, [])
    accuracies = {name: {str(s): 0.5 + 0.1 * k + 0.1 * s for s in range(seeds)} for k, name in enumerate(cells)}
    path = tmp_path / "truth.json"
    write_records(path, cells, accuracies)
    ground_truth.main(["--config", str(ROOT / "configs" / "cifar10_5k_retrain.yaml"), "--sample", "3", "--reseed", "3",
                       "--seeds", str(seeds), "--runs", str(tmp_path / "runs"), "--json", str(path)])
    out = capsys.readouterr().out
    assert f"{3 * seeds} of {3 * seeds} runs recorded" in out and not (tmp_path / "runs").exists()
    records = json.loads(path.read_text())
    assert [r["accuracy"] for r in records] == pytest.approx([0.5 + 0.05 * (seeds - 1) + 0.1 * k for k in range(3)])
    assert [r["accuracies"] for r in records] == list(accuracies.values())
    assert [r["params"] for r in records] == [1000, 1001, 1002]
    assert json.loads(out.splitlines()[-1])["seed_to_seed"]["pairs"].keys() == {
        f"{s}-{t}" for s in range(seeds) for t in range(s + 1, seeds)}


def test_a_record_of_another_genotype_under_the_same_name_is_not_reused(tmp_path):
    cells = ground_truth.genotypes("nasnet", 2, 0, [])
    path = tmp_path / "truth.json"
    others = dict(zip(cells, ground_truth.genotypes("nasnet", 2, 1, []).values()))   # same names, other cells
    write_records(path, others, {name: {"0": 0.5} for name in cells})
    assert ground_truth.recorded(path, cells) == {}
    write_records(path, cells, {name: {"0": 0.5} for name in cells})
    assert set(ground_truth.recorded(path, cells)) == {(name, 0) for name in cells}


def test_a_minimum_width_keeps_the_seeded_draws_that_wide_in_their_order():
    """--min-width: the uniform draws of the seed, filtered to the cell pairs that concatenate at least
    that many states (searches find wide cells, which a uniform sample holds few of)."""
    every = list(ground_truth.genotypes("nasnet", 300, 2, []).values())
    wide = [g for g in every if len(g.normal_concat) + len(g.reduce_concat) >= 7]
    assert 4 <= len(wide) < 100   # the filter keeps some, and not most
    assert list(ground_truth.genotypes("nasnet", 4, 2, [], min_width=7).values()) == wide[:4]
    assert list(ground_truth.genotypes("nasnet", 5, 2, [], min_width=0).values()) == every[:5]
