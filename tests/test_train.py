import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import supernet.train as train_module
from search.cli import build_evaluator, loaders, supernet_settings
from search.cli import main as search_main
from search.config import SearchConfig
from search.evaluator import Evaluator
from supernet.genotype import Genotype
from supernet.model import build_supernet
from supernet.runtime.checkpoint import LATEST, load_checkpoint, load_supernet
from supernet.runtime.config import from_dict, read_yaml
from supernet.runtime.data import make_loaders, set_epoch, take_batches
from supernet.runtime.metrics import read_metrics
from supernet.scoring import Scoring
from supernet.train import main

ROOT = Path(__file__).resolve().parents[1]
# 2 epochs of 16 steps on digits, a checkpoint every 4 steps
TINY = ["space=darts", "C=4", "layers=3", "epochs=2", "batch_size=64", "amp=off", "workers=0", "val_fraction=0.2",
        "eval_subnets=2", "eval_batches=2", "log_every=5", "checkpoint_every=4"]
STEPS = 2 * ((1797 - 2 * 359) // 64)


def train(out, *overrides):
    main(["--out", str(out), *TINY, *overrides])
    return load_checkpoint(out)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    return out, train(out)


def assert_same_state(a, b):
    for part in ("model", "optimizer"):
        flat_a, flat_b = _flatten(a[part]), _flatten(b[part])
        assert flat_a.keys() == flat_b.keys()
        for k in flat_a:
            assert torch.equal(flat_a[k], flat_b[k]) if torch.is_tensor(flat_a[k]) else flat_a[k] == flat_b[k], k
    assert a["step"] == b["step"] == STEPS and a["last"] == b["last"]


def _flatten(d, prefix=""):
    out = {}
    for k, v in (d.items() if isinstance(d, dict) else enumerate(d)):
        if isinstance(v, (dict, list)):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_run_directory(uninterrupted):
    out, state = uninterrupted
    summary = json.loads((out / "supernet.json").read_text())
    assert summary["steps"] == STEPS and summary["epochs"] == 2 and summary["world_size"] == 1
    assert len(summary["val_acc"]) == 2 and summary["val_acc_mean"] == pytest.approx(np.mean(summary["val_acc"]))
    assert summary["params"] == sum(v.numel() for v in load_supernet(out).parameters())
    assert (out / "config.yaml").is_file() and list((out / "tb").glob("events.out.tfevents.*"))
    records = read_metrics(out)
    steps = [r["step"] for r in records if "train/loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS
    assert [r["step"] for r in records if "val/acc_mean" in r] == [STEPS // 2, STEPS]
    net = load_supernet(out)
    assert all(torch.equal(v, state["model"][k]) for k, v in net.state_dict().items())


def test_finished_run_does_nothing(uninterrupted):
    out, _ = uninterrupted
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    main(["--out", str(out), *TINY])
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_stopped_and_resumed_run_ends_with_the_same_weights(uninterrupted, tmp_path):
    stopped = train(tmp_path, "max_steps=21")   # mid-epoch, 1 step after a checkpoint
    assert stopped["step"] == 21 and not (tmp_path / "supernet.json").exists()
    assert_same_state(train(tmp_path), uninterrupted[1])
    steps = [r["step"] for r in read_metrics(tmp_path) if "train/loss" in r]
    assert steps == sorted(set(steps))


def test_corrupt_checkpoint_resumes_from_the_previous_one(uninterrupted, tmp_path, caplog):
    train(tmp_path, "max_steps=12")
    latest = tmp_path / LATEST
    data = bytearray(latest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    latest.write_bytes(bytes(data))
    assert_same_state(train(tmp_path), uninterrupted[1])
    assert "unreadable" in caplog.text and "resuming from the previous checkpoint" in caplog.text


def test_resume_replays_augmentation_randomness(tmp_path):
    # in-process augmentation (workers=0) draws from the global RNGs, which the checkpoint restores
    from PIL import Image
    for c in range(2):
        (tmp_path / "data" / str(c)).mkdir(parents=True)
        for i in range(24):
            pixels = np.random.default_rng(100 * c + i).integers(0, 255, (10, 10, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / str(c) / f"{i}.png")
    overrides = ["dataset=imagefolder", f"data_dir={tmp_path / 'data'}", "image_size=8", "batch_size=8",
                 "epochs=2", "val_fraction=0.25", "eval_subnets=1"]
    whole = train(tmp_path / "whole", *overrides)
    train(tmp_path / "cut", *overrides, "max_steps=4")
    resumed = train(tmp_path / "cut", *overrides)
    assert whole["step"] == resumed["step"] == 6
    assert all(torch.equal(v, resumed["model"][k]) for k, v in whole["model"].items())


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(uninterrupted, tmp_path):
    # the same thread count as the in-process uninterrupted run: CPU kernels reduce in a
    # thread-dependent order, so other counts give other (equally valid) weights
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "supernet.train", "--out", str(tmp_path), *TINY]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not any(r.get("step", 0) >= 10 for r in read_metrics(tmp_path)) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "supernet.json").exists()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    assert_same_state(load_checkpoint(tmp_path), uninterrupted[1])


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    real_step = train_module.Trainer.train_step

    def poisoned(self, x, y, *inputs):
        stats = real_step(self, x, y, *inputs)
        return stats * torch.tensor([float("nan"), 1, 1], dtype=stats.dtype) if self.step == 6 else stats

    monkeypatch.setattr(train_module.Trainer, "train_step", poisoned)
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path), *TINY])
    assert e.value.code == 2
    assert "error: the training loss became nan between steps 5 and 8" in capsys.readouterr().err
    assert load_checkpoint(tmp_path)["step"] == 4


@pytest.mark.parametrize("overrides, message", [
    (["lrr=0.1"], "error: unknown config key 'lrr' in the command-line overrides; did you mean 'lr'?"),
    (["dataset=cifar10", "data_dir={tmp}/nothing"], "error: CIFAR-10 not found: looked for {tmp}/nothing/cifar-10"),
    (["amp=fp16", "device=cpu"], "error: amp=fp16 needs CUDA"),
    (["keep_decay=0"], "error: keep_decay must be in (0, 1], got 0"),
    (["scoring.metric=loss"], "error: scoring.metric must be one of accuracy, probability, got 'loss'"),
    (["scoring.finetune_step=3"], ("error: unknown config key 'scoring.finetune_step' in the command-line "
                                   "overrides; did you mean 'scoring.finetune_steps'?")),
])
def test_user_errors_are_one_line(tmp_path, capsys, overrides, message):
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path / "run"), *TINY, *[o.format(tmp=tmp_path) for o in overrides]])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith(message.format(tmp=tmp_path)) and err.count("\n") == 1


def test_cli_error_has_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "supernet.train", "--out", str(tmp_path), "dataset=cifar10",
                             f"data_dir={tmp_path}"], check=False, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"error: CIFAR-10 not found: looked for {tmp_path}")


def test_bf16_autocast_trains_on_cpu(tmp_path):
    state = train(tmp_path, "amp=bf16", "max_steps=2")
    torch.manual_seed(0)
    initial = build_supernet("darts", C=4, layers=3, num_classes=10, in_channels=1, stem="cifar").state_dict()
    assert state["step"] == 2 and not torch.equal(state["model"]["classifier.weight"], initial["classifier.weight"])
    assert all(np.isfinite(r["train/loss"]) for r in read_metrics(tmp_path) if "train/loss" in r)


def test_reported_subnet_accuracies_are_the_search_evaluators_scores(uninterrupted):
    # scored as nas-search scores: fine-tuned and BN recalibrated on the first training batches of epoch
    # 0, then the validation batches (digits are not augmented, so those images are the run's); the
    # figures reported are the accuracy, whatever the metric that ranks
    out, _ = uninterrupted
    summary = json.loads((out / "supernet.json").read_text())
    data = make_loaders("digits", "", 64, val_fraction=0.2, workers=0)
    set_epoch(data.train, 0)
    scoring = Scoring(metric="accuracy")
    evaluator = Evaluator([load_supernet(out).eval()], take_batches(data.train, scoring.train_batches, "cpu"),
                          take_batches(data.val, 2, "cpu"), scoring=scoring)
    assert summary["val_acc"] == [evaluator.score(Genotype.from_dict(g)) for g in summary["eval_subnets"]]


def test_the_defaults_are_the_recipe_and_help_shows_them(capsys):
    """A config of data, size and budget alone trains the recipe of docs/options.md, as --help says."""
    cfg = train_module.TrainConfig(dataset="npz", data_dir="photos.npz", C=16, layers=8, epochs=50)
    recipe = {"op_bn": True, "sampling": "dropout", "keep_start": 1.0, "keep_end": 0.0, "keep_decay": 0.5,
              "dropout_mix": "mean", "opt": "adamw", "lr": 1e-3, "weight_decay": 3e-4, "grad_clip": 5.0}
    assert {key: getattr(cfg, key) for key in recipe} == recipe
    assert cfg.scoring == Scoring(calibration_batches=5, finetune_steps=10, finetune_lr=0.05, metric="probability")
    with pytest.raises(SystemExit):
        main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for key, value in {**recipe, "scoring.finetune_steps": 10, "scoring.metric": "probability"}.items():
        assert f"{key}={value!r}" in shown, key


def test_independent_runs_are_runs_of_seed_plus_k_and_the_search_scores_their_mean(tmp_path):
    """runs=2: run k in run<k> is the run of seed k (a run directory of its own, here stopped and
    resumed in run 0); the summary averages their subnet accuracies, and nas-search scores the mean
    of both."""
    out = tmp_path / "runs"
    main(["--out", str(out), *TINY, "epochs=1", "runs=2", "max_steps=3"])   # stops in run 0
    assert not (out / "supernet.json").exists() and not (out / "run1" / LATEST).exists()
    assert load_checkpoint(out / "run0")["step"] == 3
    main(["--out", str(out), *TINY, "epochs=1", "runs=2"])
    accs = []
    for k in range(2):
        expected, run = train(tmp_path / f"seed{k}", "epochs=1", f"seed={k}"), load_checkpoint(out / f"run{k}")
        assert expected["step"] == run["step"] == STEPS // 2
        assert all(torch.equal(v, expected["model"][name]) for name, v in run["model"].items())
        settings = supernet_settings(out / f"run{k}")
        assert settings["seed"] == k and settings["runs"] == 1
        accs.append(json.loads((out / f"run{k}" / "supernet.json").read_text())["val_acc"])
    summary = json.loads((out / "supernet.json").read_text())
    assert len(summary["runs"]) == 2 and summary["val_acc"] == pytest.approx(np.mean(accs, axis=0).tolist())
    assert_search_scores_the_mean(out, [out / f"run{k}" for k in range(2)], tmp_path / "search")


def assert_search_scores_the_mean(run, supernet_dirs, search_dir):
    """nas-search on `run` scores a genotype by the mean of its scores on each supernet of `supernet_dirs`."""
    search_main(["--out", str(search_dir), f"supernet={run}", "strategy=random", "budget=1",
                 "scoring.calibration_batches=2", "eval_batches=2", "workers=0"])
    first = json.loads((search_dir / "search.json").read_text())["history"][0]
    cfg = from_dict(SearchConfig, read_yaml(search_dir / "config.yaml"))
    trained = supernet_settings(run)
    alone = [build_evaluator(cfg, trained, [load_supernet(where).eval()], loaders(cfg, trained),
                             torch.device("cpu")).score(Genotype.from_dict(first["genotype"])) for where in supernet_dirs]
    assert alone[0] != alone[1] and first["score"] == pytest.approx(np.mean(alone))
