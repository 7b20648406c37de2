"""tools/ranking.py: its rank figures on hand-made cases, and a run end to end on a small supernet
trained on digits, its figures recomputed with scipy from the per-genotype scores it writes."""
import itertools
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml
from scipy.stats import kendalltau
from tools_module import ROOT, load_tool

from supernet.genotype import Genotype
from supernet.space import get_space
from supernet.train import main as train_main

ranking = load_tool("ranking")


def test_rank_figures_of_an_exact_and_a_reversed_order():
    truth = [0.50, 0.52, 0.55, 0.58, 0.60, 0.61, 0.63, 0.65]
    exact = ranking.rank_figures([t * 0.3 for t in truth], truth)
    assert exact["kendall_tau"] == pytest.approx(1) and exact["spearman"] == pytest.approx(1)
    assert exact["kendall_tau_95"] == pytest.approx([1, 1]) and exact["top_quarter_precision"] == 1
    reversed_ = ranking.rank_figures([-t for t in truth], truth)
    assert reversed_["kendall_tau"] == pytest.approx(-1) and reversed_["top_quarter_precision"] == 0


def test_the_top_quarter_counts_the_best_cells_found_whatever_the_order_below():
    truth = np.arange(8.0)
    scores = [5, 3, 0, 4, 1, 2, 7, 6]   # the two best cells (6, 7) scored best, the rest shuffled
    figures = ranking.rank_figures(scores, truth)
    assert figures["top_quarter_precision"] == 1
    low, high = figures["kendall_tau_95"]
    assert figures["kendall_tau"] == pytest.approx(kendalltau(scores, truth)[0])
    assert low <= figures["kendall_tau"] <= high


def test_the_tau_gap_is_paired_over_the_same_draws_of_the_genotypes():
    truth = np.arange(12.0)
    gap = ranking.tau_gap(truth, -truth, truth)   # exact against reversed: 1 - (-1) on every draw
    assert gap["tau_gap"] == pytest.approx(2) and gap["tau_gap_95"] == pytest.approx([2, 2])
    noisy = truth + np.random.default_rng(0).normal(0, 3, 12)
    same = ranking.tau_gap(noisy, noisy, truth)   # one score set against itself: no gap at all
    assert same["tau_gap"] == 0 and same["tau_gap_95"] == [0, 0]
    assert ranking.tau_interval(noisy, truth)[1] - ranking.tau_interval(noisy, truth)[0] > 0.1


def test_kendall_over_every_pair_is_scipys_tau_b_and_within_groups_weighs_each_group_by_its_pairs():
    rng = np.random.default_rng(1)
    truth, scores = rng.random(15), rng.random(15)
    tied = np.round(scores, 1)   # ties in the scores: tau-b's correction
    assert ranking.kendall(tied, truth) == pytest.approx(kendalltau(tied, truth)[0])
    assert ranking.kendall(tied, np.round(truth, 1)) == pytest.approx(kendalltau(tied, np.round(truth, 1))[0])
    groups = np.array([3] * 6 + [4] * 5 + [5] * 3 + [6])   # 15 + 10 + 3 pairs, the last genotype alone
    taus = [kendalltau(scores[groups == g], truth[groups == g])[0] for g in (3, 4, 5)]
    assert ranking.kendall(scores, truth, groups) == pytest.approx(np.average(taus, weights=[15, 10, 3]))
    assert ranking.equal_width(scores, truth, groups)["pairs"] == 28
    assert np.isnan(ranking.kendall(scores, truth, np.arange(15)))   # no two genotypes share a group
    exact = ranking.tau_gap(truth, -truth, truth, groups)
    assert exact["tau_gap"] == pytest.approx(2) and exact["tau_gap_95"] == pytest.approx([2, 2])


def test_the_seed_ceiling_is_the_mean_tau_over_pairs_of_seeds_each_over_the_cells_trained_with_both():
    rng = np.random.default_rng(0)
    runs = rng.random((3, 7))
    records = [{"accuracies": {str(s): runs[s, k] for s in range(3 if k < 5 else 2)}} for k in range(7)]
    records.append({"accuracies": {"0": 0.5}})   # one seed: no pair
    pairs = {"0-1": kendalltau(runs[0], runs[1])[0], "0-2": kendalltau(runs[0, :5], runs[2, :5])[0],
             "1-2": kendalltau(runs[1, :5], runs[2, :5])[0]}
    ceiling = ranking.seed_ceiling(records)
    assert ceiling["count"] == 7 and ceiling["pairs"] == pytest.approx(pairs)
    assert ceiling["kendall_tau"] == pytest.approx(np.mean(list(pairs.values())))
    assert ranking.seed_ceiling(records[:2] + records[-1:]) is None   # fewer than 3 cells with two seeds


TINY = ["space=nasnet", "C=4", "layers=3", "epochs=1", "batch_size=64", "amp=off", "workers=0", "val_fraction=0.2",
        "eval_subnets=1", "eval_batches=1"]
OVERRIDES = ("eval_batches=1", "scoring.calibration_batches=1", "scoring.finetune_steps=2")


@pytest.fixture(scope="module")
def supernets(tmp_path_factory):
    """Two small supernets of one shape, trained with seeds 0 and 1."""
    runs = [tmp_path_factory.mktemp(f"supernet{seed}") for seed in (0, 1)]
    for seed, out in enumerate(runs):
        train_main(["--out", str(out), *TINY, f"seed={seed}"])
    return runs


def rank(runs, ground_truth, out, *overrides):
    supernets = [arg for run in runs for arg in ("--supernet", str(run))]
    return subprocess.run([sys.executable, "tools/ranking.py", *supernets, "--ground-truth", str(ground_truth),
                           "--json", str(out), *overrides],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)


def ground_truth(path, count=6):
    rng = np.random.default_rng(0)
    genotypes = [get_space("nasnet").sample(rng) for _ in range(count)]
    records = [{"name": f"cell{k}", "genotype": g.to_dict(), "accuracy": 0.5 + 0.01 * k,
                "accuracies": {"0": 0.5 + 0.01 * k, "1": 0.5 + 0.01 * (k * 7 % count)}} for k, g in enumerate(genotypes)]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))   # JSON lines
    return genotypes, records


def test_ranking_end_to_end(supernets, tmp_path):
    genotypes, records = ground_truth(tmp_path / "truth.jsonl")
    done = rank(supernets[:1], tmp_path / "truth.jsonl", tmp_path / "r.json", *OVERRIDES, "scoring.metric=accuracy")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    truth = [r["accuracy"] for r in records]
    scores = [g["shared_weight"] for g in result["genotypes"]]
    assert result["count"] == 6 and [g["name"] for g in result["genotypes"]] == [r["name"] for r in records]
    assert result["kendall_tau"] == pytest.approx(kendalltau(scores, truth)[0], nan_ok=True)
    assert scores == [g["shared_weight_accuracy"] for g in result["genotypes"]]   # the metric is the accuracy
    assert result["accuracy_ratio"] == pytest.approx(np.mean(scores) / np.mean(truth))
    assert result["agreement"] is None and len(result["runs"]) == 1
    widths = [len(g.normal_concat) + len(g.reduce_concat) for g in genotypes]
    assert [g["concat_width"] for g in result["genotypes"]] == widths
    assert result["baselines"]["concat_width"]["kendall_tau"] == pytest.approx(kendalltau(widths, truth)[0])
    assert result["baselines"]["concat_width"]["tau_gap"] == pytest.approx(
        kendalltau(scores, truth)[0] - kendalltau(widths, truth)[0], nan_ok=True)
    assert result["width_lean"] == pytest.approx(kendalltau(scores, widths)[0], nan_ok=True)
    assert result["against"] is None
    same_width = [(i, j) for i, j in itertools.combinations(range(6), 2) if widths[i] == widths[j]]
    by_score = [np.sign(scores[i] - scores[j]) for i, j in same_width]
    by_truth = [np.sign(truth[i] - truth[j]) for i, j in same_width]
    ordered = np.sqrt(np.count_nonzero(by_score) * np.count_nonzero(by_truth))   # tau-b: ties count in neither
    assert len(same_width) >= 2 and result["equal_width"]["pairs"] == len(same_width)
    assert result["equal_width"]["kendall_tau"] == pytest.approx(np.dot(by_score, by_truth) / ordered if ordered else np.nan,
                                                                 nan_ok=True)
    seeds = [[r["accuracies"][s] for r in records] for s in "01"]
    tau = pytest.approx(kendalltau(*seeds)[0])
    assert result["ceiling"] == {"count": 6, "kendall_tau": tau, "pairs": {"0-1": tau}}


def test_ranking_by_probability_keeps_the_accuracy_ratio_and_another_draw_moves_the_scores(supernets, tmp_path):
    _, records = ground_truth(tmp_path / "truth.jsonl")
    for name, extra in (("acc", ("scoring.metric=accuracy",)), ("prob", ("scoring.metric=probability",)),
                        ("draw", ("scoring.metric=probability", "draw=1"))):
        done = rank(supernets[:1], tmp_path / "truth.jsonl", tmp_path / f"{name}.json", *OVERRIDES, *extra)
        assert done.returncode == 0, done.stderr
    acc, prob, draw = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("acc", "prob", "draw"))
    probabilities = [g["shared_weight"] for g in prob["genotypes"]]
    truth = [r["accuracy"] for r in records]
    assert prob["kendall_tau"] == pytest.approx(kendalltau(probabilities, truth)[0], nan_ok=True)
    # the same fine-tuned subnets: their accuracies, and so the ratio, are those of the accuracy ranking
    assert [g["shared_weight_accuracy"] for g in prob["genotypes"]] == [g["shared_weight"] for g in acc["genotypes"]]
    assert prob["accuracy_ratio"] == acc["accuracy_ratio"] and probabilities != [g["shared_weight"] for g in acc["genotypes"]]
    assert [g["shared_weight"] for g in draw["genotypes"]] != probabilities   # other fine-tuning batches


def test_several_supernets_score_by_their_mean_and_report_their_agreement(supernets, tmp_path):
    _, records = ground_truth(tmp_path / "truth.jsonl")
    overrides = OVERRIDES
    for name, runs, against in (("r0", supernets[:1], ()), ("r1", supernets[1:], ("--against", str(tmp_path / "r0.json"))),
                                ("both", supernets, ())):
        done = rank(runs, tmp_path / "truth.jsonl", tmp_path / f"{name}.json", *overrides, *against)
        assert done.returncode == 0, done.stderr
    alone = [[g["shared_weight"] for g in json.loads((tmp_path / f"{n}.json").read_text())["genotypes"]]
             for n in ("r0", "r1")]
    truth = [r["accuracy"] for r in records]
    compared = json.loads((tmp_path / "r1.json").read_text())["against"]   # the second supernet against the first
    assert compared["count"] == 6 and compared["kendall_tau"] == pytest.approx(kendalltau(alone[0], truth)[0])
    assert compared["tau_gap"] == pytest.approx(kendalltau(alone[1], truth)[0] - kendalltau(alone[0], truth)[0])
    both = json.loads((tmp_path / "both.json").read_text())
    np.testing.assert_allclose([g["shared_weights"] for g in both["genotypes"]], np.transpose(alone))
    np.testing.assert_allclose([g["shared_weight"] for g in both["genotypes"]], np.mean(alone, axis=0))
    assert both["agreement"] == pytest.approx(kendalltau(*alone)[0], nan_ok=True)
    assert [r["supernet"] for r in both["runs"]] == [str(run) for run in supernets]


def test_a_ground_truth_record_without_accuracy_is_one_line(supernets, tmp_path):
    genotype = get_space("nasnet").sample(np.random.default_rng(0)).to_dict()
    (tmp_path / "truth.json").write_text(json.dumps([{"genotype": genotype}]))
    done = rank(supernets[:1], tmp_path / "truth.json", tmp_path / "r.json")
    assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "accuracy" in done.stderr and "Traceback" not in done.stderr


def test_against_a_file_that_is_no_ranking_output_or_of_other_cells_is_one_line(supernets, tmp_path):
    ground_truth(tmp_path / "truth.jsonl")
    (tmp_path / "other.json").write_text(json.dumps({"genotypes": []}))   # a ranking of no cell of these
    for against, says in (("truth.jsonl", "not a tools/ranking.py output"), ("other.json", "scored 0 of these")):
        done = rank(supernets[:1], tmp_path / "truth.jsonl", tmp_path / "r.json", "--against", str(tmp_path / against))
        assert done.returncode == 2 and done.stderr.strip().splitlines()[-1].startswith("error: --against")
        assert says in done.stderr and "Traceback" not in done.stderr and not (tmp_path / "r.json").exists()


def test_several_ground_truths_pool_their_genotypes_and_report_each_alone(supernets, tmp_path):
    _, records = ground_truth(tmp_path / "truth.jsonl")
    for name, part in (("a.jsonl", records[:3]), ("b.jsonl", records[3:])):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in part))
    overrides = OVERRIDES
    whole = rank(supernets[:1], tmp_path / "truth.jsonl", tmp_path / "whole.json", *overrides)
    pooled = rank(supernets[:1], tmp_path / "a.jsonl", tmp_path / "pooled.json", "--ground-truth", str(tmp_path / "b.jsonl"),
                  *overrides)
    assert whole.returncode == 0 and pooled.returncode == 0, whole.stderr + pooled.stderr
    whole, pooled = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("whole", "pooled"))
    assert pooled["genotypes"] == whole["genotypes"] and pooled["kendall_tau"] == whole["kendall_tau"]
    assert whole["by_ground_truth"] is None and [f["count"] for f in pooled["by_ground_truth"]] == [3, 3]
    scores, truth = [g["shared_weight"] for g in pooled["genotypes"]], [r["accuracy"] for r in records]
    for part, figures in zip((slice(0, 3), slice(3, 6)), pooled["by_ground_truth"]):
        assert figures["kendall_tau"] == pytest.approx(kendalltau(scores[part], truth[part])[0], nan_ok=True)
        widths = [g["concat_width"] for g in pooled["genotypes"]][part]
        assert figures["baselines"]["concat_width"] == pytest.approx(kendalltau(widths, truth[part])[0], nan_ok=True)
    twice = rank(supernets[:1], tmp_path / "truth.jsonl", tmp_path / "twice.json", "--ground-truth", str(tmp_path / "b.jsonl"))
    assert twice.returncode == 2 and twice.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "already in" in twice.stderr and "Traceback" not in twice.stderr and not (tmp_path / "twice.json").exists()


def test_stored_scores_rank_against_another_ground_truth_as_scoring_again_would(supernets, tmp_path):
    _, records = ground_truth(tmp_path / "truth.jsonl")
    updated = [{**r, "accuracy": 0.6 - 0.01 * (k * 5 % 6)} for k, r in enumerate(records)]   # another order
    (tmp_path / "updated.jsonl").write_text("".join(json.dumps(r) + "\n" for r in updated))
    overrides = OVERRIDES
    for name, runs, truth in (("r0", supernets[:1], "truth.jsonl"), ("r1", supernets[1:], "truth.jsonl"),
                              ("both", supernets, "updated.jsonl")):
        done = rank(runs, tmp_path / truth, tmp_path / f"{name}.json", *overrides)
        assert done.returncode == 0, done.stderr
    scores = ["--scores", str(tmp_path / "r0.json"), "--scores", str(tmp_path / "r1.json")]
    done = subprocess.run([sys.executable, "tools/ranking.py", *scores, "--ground-truth", str(tmp_path / "updated.jsonl"),
                           "--json", str(tmp_path / "stored.json")], check=False, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    both, stored = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("both", "stored"))
    assert stored["scores_from"] == scores[1::2]
    for key in ("kendall_tau", "kendall_tau_95", "spearman", "top_quarter_precision", "equal_width", "accuracy_ratio",
                "baselines", "agreement", "ceiling", "runs", "genotypes", "scoring", "settings", "scored_images"):
        assert rounded(stored[key]) == rounded(both[key]), key
    done = subprocess.run([sys.executable, "tools/ranking.py", *scores[:2], "--ground-truth", str(tmp_path / "updated.jsonl"),
                           "--json", str(tmp_path / "x.json"), "scoring.finetune_steps=5"], check=False, cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "have no place" in done.stderr and not (tmp_path / "x.json").exists()


def rounded(value):
    """`value` with every float rounded to 9 digits (scores read back from JSON against those just made)."""
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return round(value, 9) if isinstance(value, float) else value


def test_a_run_of_several_supernets_ranks_as_they_do_given_as_runs(supernets, tmp_path):
    """A run of runs=2 whose two supernets are the fixture's ranks as `--supernet` of both does."""
    ground_truth(tmp_path / "truth.jsonl")
    joint = tmp_path / "joint"
    joint.mkdir()
    settings = yaml.safe_load((supernets[0] / "config.yaml").read_text())
    (joint / "config.yaml").write_text(yaml.safe_dump({**settings, "runs": 2}))
    for k, run in enumerate(supernets):
        shutil.copytree(run, joint / f"run{k}")
    overrides = OVERRIDES
    for name, runs in (("both", supernets), ("joint", [joint])):
        done = rank(runs, tmp_path / "truth.jsonl", tmp_path / f"{name}.json", *overrides)
        assert done.returncode == 0, done.stderr
    both, together = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("both", "joint"))
    assert [r["supernet"] for r in together["runs"]] == [f"{joint}/run{k}" for k in range(2)]
    assert [g["shared_weights"] for g in together["genotypes"]] == [g["shared_weights"] for g in both["genotypes"]]
    assert together["kendall_tau"] == both["kendall_tau"] and together["agreement"] == both["agreement"]
    shutil.rmtree(joint / "run1")
    done = rank([joint], tmp_path / "truth.jsonl", tmp_path / "half.json", *overrides)
    assert done.returncode == 2 and "finished 1 of its 2 supernets" in done.stderr


def test_a_predictor_of_random_cells_ranks_the_ground_truth_as_fitting_it_by_hand_does(supernets, tmp_path):
    from search.constraints import SizeTable
    from search.predictor import Predictor
    _, records = ground_truth(tmp_path / "truth.jsonl", count=8)
    done = rank(supernets[:1], tmp_path / "truth.jsonl", tmp_path / "p.json", *OVERRIDES, "--predictor", "10",
                "--predictor", "12")
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "p.json").read_text())
    labels = result["predictor"]["labels"]
    assert len(labels) == 12 and result["predictor"]["seconds"] > 0
    assert not {json.dumps(r["genotype"], sort_keys=True) for r in labels} & {json.dumps(r["genotype"], sort_keys=True)
                                                                               for r in records}
    truth, shared = [r["accuracy"] for r in records], [g["shared_weight"] for g in result["genotypes"]]
    space, sizes = get_space("nasnet"), SizeTable(**result["predictor"]["shape"])
    for figures, n in zip(result["predictor"]["by_cells"], (10, 12)):
        fitted = Predictor(space, "gp", 0, sizes).fit([Genotype.from_dict(r["genotype"]) for r in labels[:n]],
                                                          [r["shared_weight"] for r in labels[:n]])
        predicted = fitted.predict([Genotype.from_dict(r["genotype"]) for r in records])[0]
        assert figures["cells"] == n and figures["predicted"] == pytest.approx(predicted.tolist())
        assert figures["kendall_tau"] == pytest.approx(kendalltau(predicted, truth)[0], nan_ok=True)
        gap = kendalltau(predicted, truth)[0] - kendalltau(shared, truth)[0]
        assert figures["against_scores"]["tau_gap"] == pytest.approx(gap, nan_ok=True)
    # the labels serve again from the output, with another model, scoring nothing
    again = subprocess.run([sys.executable, "tools/ranking.py", "--scores", str(tmp_path / "p.json"), "--ground-truth",
                            str(tmp_path / "truth.jsonl"), "--json", str(tmp_path / "again.json"), "--predictor", "12",
                            "--labels", str(tmp_path / "p.json"), "predictor.model=forest"],
                           check=False, cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again.json").read_text())["predictor"]["by_cells"][0]["model"] == "forest"
    for extra, says in ((["--predictor", "20", "--labels", str(tmp_path / "p.json")],
                         "it holds 12 scored random cells, fewer than --predictor 20"),
                        (["--predictor", "12"], "give the random cells of --predictor with --labels")):
        more = subprocess.run([sys.executable, "tools/ranking.py", "--scores", str(tmp_path / "p.json"), "--ground-truth",
                               str(tmp_path / "truth.jsonl"), "--json", str(tmp_path / "x.json"), *extra],
                              check=False, cwd=ROOT, capture_output=True, text=True)
        assert more.returncode == 2 and says in more.stderr and "Traceback" not in more.stderr
