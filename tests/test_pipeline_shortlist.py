"""nas-pipeline shortlist=K on digits with tiny stages: the search's K best trained from scratch on the
supernet's training photos, judged on its held-out photos, the most accurate retrained."""
import json
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main
from pipeline.shortlist import run_shortlist
from supernet.genotype import Genotype
from supernet.runtime.config import from_dict
from supernet.runtime.lock import release_run_dirs
from supernet.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "digits.yaml"
TINY = ["supernet.C=4", "supernet.layers=3", "supernet.epochs=1", "supernet.eval_subnets=2", "search.budget=16",
        "search.ask_size=4", "search.strategy_options={population_size: 6, sample_size: 3}", "retrain.C=4",
        "retrain.layers=3", "retrain.epochs=1"]


def read(path):
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("shortlist")
    main(["--config", str(CONFIG), "--out", str(out), *TINY, "shortlist=2"])
    return out


def test_the_shortlisted_cells_are_the_searchs_best_distinct_candidates_trained_on_the_training_photos(run):
    history = read(run / "search" / "search.json")["history"]
    by_reward = {}
    for rec in history:   # the search's accepted candidates, each genotype at its best reward
        if rec["rejected"] is None:
            key = str(Genotype.from_dict(rec["genotype"]))
            by_reward[key] = max(by_reward.get(key, -1.0), rec["reward"])
    best_two = sorted(by_reward.values(), reverse=True)[:2]
    chosen = read(run / "shortlist" / "shortlist.json")
    assert [r["reward"] for r in chosen["candidates"]] == best_two
    assert [by_reward[r["genotype_str"]] for r in chosen["candidates"]] == best_two
    supernet_cfg = yaml.safe_load((run / "supernet" / "config.yaml").read_text())
    for candidate in chosen["candidates"]:
        trained = read(run / "shortlist" / candidate["run"] / "retrain.json")
        cfg = yaml.safe_load((run / "shortlist" / candidate["run"] / "config.yaml").read_text())
        assert trained["genotype"] == candidate["genotype"] and trained["val_acc"] == candidate["val_acc"]
        assert "test_acc" not in trained   # judged on the supernet's held-out photos; the test split unseen
        assert cfg["val_fraction"] == supernet_cfg["val_fraction"] == 0.2
        assert (cfg["dataset"], cfg["C"], cfg["epochs"]) == ("digits", 4, 1)   # the retrain stage's settings


def test_the_shortlist_of_a_comparison_holds_the_best_of_every_strategy(tmp_path):
    out = tmp_path / "run"
    main(["--config", str(CONFIG), "--out", str(out), *TINY, "search.strategy=[random,evolution]",
          "search.strategy_options={evolution: {population_size: 6, sample_size: 3}}", "search.budget=8",
          "shortlist=3"])
    rewards = {}
    for strategy in ("random", "evolution"):
        for rec in read(out / "search" / strategy / "search.json")["history"]:
            if rec["rejected"] is None:
                key = str(Genotype.from_dict(rec["genotype"]))
                rewards[key] = max(rewards.get(key, -1.0), rec["reward"])
    shortlist = read(out / "shortlist" / "shortlist.json")["candidates"]
    assert [r["reward"] for r in shortlist] == sorted(rewards.values(), reverse=True)[:3]
    assert read(out / "retrain" / "retrain.json")["genotype"] == max(shortlist, key=lambda r: r["val_acc"])["genotype"]


def test_the_most_accurate_candidate_is_retrained_and_reported(run):
    chosen = read(run / "shortlist" / "shortlist.json")
    most_accurate = max(chosen["candidates"], key=lambda r: r["val_acc"])
    retrained, summary = read(run / "retrain" / "retrain.json"), read(run / "report" / "summary.json")
    assert chosen["best"] == most_accurate
    assert retrained["genotype"] == summary["genotype"] == most_accurate["genotype"]
    assert "test_acc" in retrained and summary["reward"] == most_accurate["reward"]
    assert [r["val_acc"] for r in summary["shortlist"]] == [r["val_acc"] for r in chosen["candidates"]]
    assert summary["time_s"]["shortlist"] == pytest.approx(sum(r["wall_time_s"] for r in chosen["candidates"]))
    markdown = (run / "report" / "summary.md").read_text()
    assert f"{most_accurate['val_acc']:.4f}*" in markdown and "shortlist" in markdown


def test_a_longer_shortlist_trains_only_the_new_candidates(run, tmp_path):
    out = tmp_path / "shortlist"
    shutil.copytree(run / "shortlist", out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("retrain.json")}
    supernet_cfg = from_dict(TrainConfig, yaml.safe_load((run / "supernet" / "config.yaml").read_text()))
    argv = ["--config", str(run / "retrain" / "config.yaml")]   # the retrain stage's settings, as resolved
    try:
        chosen = run_shortlist(3, argv, supernet_cfg, run / "search", read(run / "search" / "search.json"), out)
    finally:
        release_run_dirs()
    assert {p: p.stat().st_mtime_ns for p in before} == before   # the first two read back, not trained again
    assert len(chosen["candidates"]) == 3 and len(list(out.rglob("retrain.json"))) == 3
    assert chosen["candidates"][:2] == read(run / "shortlist" / "shortlist.json")["candidates"]


def test_a_finished_retraining_of_other_cells_is_an_error_not_skipped(run, capsys):
    chosen, path = read(run / "shortlist" / "shortlist.json"), run / "retrain" / "retrain.json"
    other = next(r for r in chosen["candidates"] if r != chosen["best"])
    retrained = path.read_text()
    path.write_text(json.dumps({**json.loads(retrained), "genotype": other["genotype"]}))
    try:
        with pytest.raises(SystemExit):
            main(["--config", str(CONFIG), "--out", str(run), *TINY, "shortlist=2"])
    finally:
        path.write_text(retrained)
    assert "holds the retraining of other cells" in capsys.readouterr().err


def test_a_search_that_accepted_no_candidate_leaves_nothing_to_shortlist(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(CONFIG), "--out", str(tmp_path / "run"), *TINY, "search.max_params=1", "shortlist=2"])
    assert exit_info.value.code == 2
    assert "accepted no candidate" in capsys.readouterr().err
    assert not (tmp_path / "run" / "shortlist").exists()
