"""nas-search end to end on a supernet trained briefly on digits: outputs, resume, errors, search quality."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from search.cli import main
from search.strategy import STRATEGIES
from supernet.model import SuperNetSpec
from supernet.runtime.checkpoint import load_checkpoint, save_checkpoint
from supernet.space import get_space
from supernet.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
# a small darts-space supernet, 2 epochs of 16 steps on digits
TINY_SUPERNET = ["space=darts", "C=4", "layers=3", "epochs=2", "batch_size=64", "amp=off", "workers=0",
                 "val_fraction=0.2", "eval_subnets=1", "eval_batches=1"]
SMALL = {"evolution": "{population_size: 8, sample_size: 3}", "evo_nas": "{population_size: 8, sample_size: 3}"}
SCORING = ["scoring.calibration_batches=2", "scoring.finetune_steps=2"]


@pytest.fixture(scope="module")
def supernet(tmp_path_factory):
    out = tmp_path_factory.mktemp("supernet")
    train_main(["--out", str(out), *TINY_SUPERNET])
    return out


def search(out, supernet, strategy, budget, *overrides):
    options = [f"strategy_options={SMALL[strategy]}"] if strategy in SMALL else []
    main(["--out", str(out), f"supernet={supernet}", f"strategy={strategy}", f"budget={budget}", "ask_size=4",
          *SCORING, "eval_batches=2", "workers=0", *options, *overrides])
    return json.loads((out / "search.json").read_text())


def test_run_directory(supernet, tmp_path):
    summary = search(tmp_path, supernet, "evo_nas", 10)
    history = summary["history"]
    assert summary["strategy"] == "evo_nas" and summary["budget"] == summary["evaluations"] == 10
    assert [r["evaluation"] for r in history] == list(range(1, 11))
    lines = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert lines == history
    best = max(history, key=lambda r: r["reward"])
    assert summary["best"]["reward"] == best["reward"] and summary["best"]["genotype"] == best["genotype"]
    assert all(0.0 <= r["score"] <= 1.0 for r in history)
    for name in ("search.png", "metrics.jsonl", "config.yaml", "checkpoint.pt"):
        assert (tmp_path / name).stat().st_size > 0
    assert any((tmp_path / "tb").iterdir())


@pytest.mark.parametrize("strategy", ["rl", "evo_nas"])
def test_stopped_and_resumed_search_equals_the_uninterrupted_one(supernet, tmp_path, strategy):
    whole = search(tmp_path / "whole", supernet, strategy, 12)
    search(tmp_path / "parts", supernet, strategy, 4)
    parts = search(tmp_path / "parts", supernet, strategy, 12)   # budget may grow on resume
    keep = ("genotype", "reward", "round", "cached")
    assert [{k: r[k] for k in keep} for r in parts["history"]] == [{k: r[k] for k in keep} for r in whole["history"]]
    state = load_checkpoint(tmp_path / "parts")
    assert len(state["history"]) == 12


def test_an_untrained_search_scores_the_supernet_at_its_initialisation(supernet, tmp_path):
    """untrained=true searches as a run whose checkpoint held the seed-0 initialisation does."""
    initialised = tmp_path / "initialised_supernet"
    shutil.copytree(supernet, initialised)
    state = load_checkpoint(supernet)
    torch.manual_seed(0)
    save_checkpoint(initialised, {**state, "model": SuperNetSpec(**state["network"]).build().state_dict()})
    rewards = {name: [r["reward"] for r in search(tmp_path / name, run, "random", 6, *overrides)["history"]]
               for name, run, overrides in [("untrained", supernet, ["untrained=true"]), ("trained", supernet, []),
                                            ("initialised", initialised, [])]}
    assert rewards["untrained"] == rewards["initialised"] != rewards["trained"]


@pytest.mark.parametrize("overrides, message", [
    (["strategy=annealing"], "unknown strategy 'annealing'"),
    (["strategy=gdas", "strategy_options={tau_mx: 3}"], "unknown config key 'strategy_options.tau_mx'"),
    (["scoring.metric=loss"], "scoring.metric must be one of accuracy, probability, got 'loss'"),
    (["strategy=evolution", "strategy_options={populaton_size: 3}"], "no option 'populaton_size'"),
    (["budgte=3"], "unknown config key 'budgte'"),
])
def test_user_errors_are_one_line(supernet, tmp_path, capsys, overrides, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path), f"supernet={supernet}", *overrides])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_missing_supernet_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "s"), f"supernet={tmp_path / 'nothing'}"])
    assert "is not a supernet-train run directory" in capsys.readouterr().err


@pytest.mark.slow
def test_each_strategy_beats_the_mean_of_random_genotypes(supernet, tmp_path):
    budget = 24
    random_rewards = [r["reward"] for r in search(tmp_path / "random", supernet, "random", budget)["history"]]
    baseline = float(np.mean(random_rewards))
    for strategy in STRATEGIES:
        best = search(tmp_path / strategy, supernet, strategy, budget)["best"]["reward"]
        assert best > baseline, (strategy, best, baseline)


def one_and_two_processes(supernet, tmp_path, *settings) -> tuple[list, list]:
    """The histories of the same search in one process and in two (torchrun), each a subprocess of one
    thread: CPU kernels round in a thread-dependent order."""
    def run(out, launcher):
        cmd = [sys.executable, *launcher, "-m", "search", "--out", str(out), f"supernet={supernet}", "budget=8",
               "ask_size=4", *SCORING, "eval_batches=2", *settings]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True, timeout=600)
        history = json.loads((out / "search.json").read_text())["history"]
        return [{k: r[k] for k in ("genotype", "reward", "cached")} for r in history]

    return run(tmp_path / "one", []), run(tmp_path / "two", ["-m", "torch.distributed.run", "--standalone",
                                                             "--nproc_per_node=2"])


@pytest.mark.slow
def test_search_on_two_processes_equals_one(supernet, tmp_path):
    one, two = one_and_two_processes(supernet, tmp_path, "strategy=evo_nas", f"strategy_options={SMALL['evo_nas']}")
    assert two == one


def test_the_predictor_strategy_keeps_to_the_size_limit_and_reports_its_fit(supernet, tmp_path):
    from search.constraints import Constraints
    sizes = Constraints(4, 3, 10, 8, in_channels=1)
    limit = int(np.median([sizes.size(get_space("darts").sample(s))["params"] for s in range(40)]))
    summary = search(tmp_path, supernet, "predictor", 16, f"max_params={limit}",
                     "strategy_options={initial: 8, pool: 200}")
    assert len(summary["history"]) == 16 and all(r["rejected"] is None for r in summary["history"])
    assert max(r["params"] for r in summary["history"]) <= limit
    report = summary["strategy_report"]
    assert report["records"] == 16 and report["ranked"] == 2 * 200 and report["ranked_per_s"] > 0
    assert -1 <= report["cross_validated_tau"] <= 1


def test_a_screened_search_labels_fits_searches_the_predictor_and_rescores_its_best(supernet, tmp_path):
    settings = ["screening.cells=12", "screening.rescore=3", "screening.scoring={finetune_steps: 0}",
                "strategy_options={population_size: 20, sample_size: 4}"]
    summary = search(tmp_path, supernet, "evolution", 60, *settings)
    labels, predicted, rescored = (json.loads((tmp_path / part / "search.json").read_text())
                                   for part in ("labels", "predicted", "rescored"))
    assert labels["strategy"] == "random" and labels["evaluations"] == 12 and predicted["evaluations"] == 60
    # the labels are a random search scored with screening.scoring's keys changed
    alone = search(tmp_path / "alone", supernet, "random", 12, "scoring.finetune_steps=0")
    assert [(r["genotype"], r["score"]) for r in labels["history"]] == [(r["genotype"], r["score"])
                                                                        for r in alone["history"]]
    # the three best distinct candidates by prediction, scored in full; the winner is the best of those
    by_prediction = sorted({json.dumps(r["genotype"], sort_keys=True): r["reward"] for r in predicted["history"]}.items(),
                           key=lambda item: -item[1])[:3]
    assert [json.dumps(r["genotype"], sort_keys=True) for r in rescored["history"]] == [k for k, _ in by_prediction]
    assert summary["best"]["reward"] == max(r["reward"] for r in rescored["history"])
    screening = summary["screening"]
    assert screening["cells"] == 12 and screening["screened"] == 60 and screening["screened_per_s"] > 0
    predictor = json.loads((tmp_path / "predictor.json").read_text())
    assert len(predictor["records"]) == 12 and predictor["space"] == "darts"
    # a re-run finds every part done and ends as it did
    again = search(tmp_path, supernet, "evolution", 60, *settings)
    assert again["best"] == summary["best"]
    # the predictor file serves another search without labelling again
    reused = search(tmp_path / "reused", supernet, "random", 30, f"screening.predictor={tmp_path / 'predictor.json'}")
    assert reused["screening"]["cells"] == 12 and not (tmp_path / "reused" / "labels").exists()


@pytest.mark.parametrize("overrides, message", [
    (["strategy=predictor", "strategy_options={acquisition: thompson}"], "unknown acquisition 'thompson'"),
    (["screening.cells=5"], "screening needs cells of 0 (off) or 10 and more"),
    (["strategy=gdas", "screening.cells=20"], "screening searches the predictor with one discrete strategy"),
])
def test_bad_predictor_settings_are_one_line(supernet, tmp_path, capsys, overrides, message):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), f"supernet={supernet}", *overrides])
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_predictor_file_of_another_space_or_more_cells_than_the_space_holds_is_one_line(supernet, tmp_path, capsys,
                                                                                         monkeypatch):
    from search.predictor import Predictor
    nasnet = get_space("nasnet")
    foreign = Predictor(nasnet).fit([nasnet.sample(s) for s in range(12)], list(range(12))).to_dict()
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    with pytest.raises(SystemExit):
        search(tmp_path / "a", supernet, "random", 8, f"screening.predictor={tmp_path / 'foreign.json'}")
    assert "the predictor was fitted on the 'nasnet' space; this search is on 'darts'" in capsys.readouterr().err
    monkeypatch.setattr("search.screening.space_size", lambda space: 11)
    with pytest.raises(SystemExit):
        search(tmp_path / "b", supernet, "random", 8, "screening.cells=12")
    assert "screening.cells 12 is more than the 11 cells the space holds" in capsys.readouterr().err


@pytest.mark.slow
def test_a_predictor_search_on_two_processes_equals_one(supernet, tmp_path):
    one, two = one_and_two_processes(supernet, tmp_path, "strategy=predictor", "budget=16",
                                     "strategy_options={initial: 8, pool: 100}")
    assert two == one and len(one) == 16
