"""tools/compare_rankings.py: paired tau gaps of saved ranking outputs, recomputed with scipy."""
import json

import numpy as np
import pytest
from scipy.stats import kendalltau
from tools_module import load_tool

compare_rankings = load_tool("compare_rankings")


def write_output(path, scores, truth):
    """A tools/ranking.py output holding what the comparison reads: each genotype's two figures and
    its width (the cells' concatenated states), 6, 7 or 8 in turn."""
    path.write_text(json.dumps({"genotypes": [{"genotype": {"normal": [["skip_connect", i]]}, "shared_weight": s,
                                               "standalone": t, "concat_width": 6 + i % 3}
                                              for i, (s, t) in enumerate(zip(scores, truth))]}))
    return str(path)


def test_each_ranking_and_their_mean_are_paired_against_the_control(tmp_path, capsys):
    truth = np.linspace(0.5, 0.65, 20)
    rng = np.random.default_rng(0)
    a, b, control = (truth + rng.normal(0, spread, 20) for spread in (0.02, 0.05, 0.2))
    # b scored only the first 15 genotypes: the mean is taken over those all three hold
    files = [write_output(tmp_path / "a.json", a, truth), write_output(tmp_path / "b.json", b[:15], truth[:15])]
    compare_rankings.main(["--against", write_output(tmp_path / "c.json", control, truth), *files,
                           "--json", str(tmp_path / "out.json")])
    result = json.loads((tmp_path / "out.json").read_text())

    def tau(scores, n):
        return kendalltau(scores[:n], truth[:n])[0]
    each = result["each"]
    assert each[files[0]]["tau_gap"] == pytest.approx(tau(a, 20) - tau(control, 20)) and each[files[0]]["count"] == 20
    assert each[files[1]]["tau_gap"] == pytest.approx(tau(b, 15) - tau(control, 15)) and each[files[1]]["count"] == 15
    mean = result["mean"]
    assert mean["count"] == 15
    assert mean["tau_gap"] == pytest.approx((tau(a, 15) + tau(b, 15)) / 2 - tau(control, 15))
    assert mean["tau_gap_95"][0] < mean["tau_gap"] < mean["tau_gap_95"][1]

    def tau_within(scores, n):   # over the pairs of one width: each width's tau, weighed by its pairs (no ties)
        widths = np.arange(n) % 3
        taus = [kendalltau(scores[:n][widths == w], truth[:n][widths == w])[0] for w in range(3)]
        sizes = np.bincount(widths)
        return np.average(taus, weights=sizes * (sizes - 1))
    assert each[files[0]]["equal_width"]["tau_gap"] == pytest.approx(tau_within(a, 20) - tau_within(control, 20))
    assert mean["equal_width"]["tau_gap"] == pytest.approx((tau_within(a, 15) + tau_within(b, 15)) / 2
                                                           - tau_within(control, 15))
    assert "the mean of 2" in capsys.readouterr().out


def test_rankings_of_other_ground_truths_or_too_few_shared_cells_are_one_line(tmp_path, capsys):
    truth = np.linspace(0.5, 0.65, 10)
    control = write_output(tmp_path / "c.json", truth, truth)
    for name, scores, standalone, says in (("other.json", truth, truth + 0.01, "other standalone accuracies"),
                                           ("few.json", truth[:2], truth[:2], "share 2 genotypes")):
        with pytest.raises(SystemExit) as done:
            compare_rankings.main(["--against", control, write_output(tmp_path / name, scores, standalone)])
        assert done.value.code == 2 and says in capsys.readouterr().err
