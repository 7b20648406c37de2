"""The reliability matrix (issue 6) on tiny digits runs of each stage: supernet-train, nas-search with a
discrete (evo_nas) and a relaxed (gdas) strategy, nas-retrain.

A killed run resumes to the uninterrupted result; a damaged or foreign checkpoint falls back to the
previous one, or is one clear error when none is left, and runs no code; a NaN or inf loss stops with
one line and leaves the last good checkpoint; user errors are one line and change nothing; under
torchrun a killed worker is restarted and resumes. What tests/test_train.py and tests/test_checkpoint.py
already cover for supernet-train (a killed run, flipped and truncated checkpoints, a NaN loss) is not
repeated here.
"""
import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import retrain.train as retrain_module
from retrain.cli import main as retrain_main
from retrain.train import RetrainConfig
from search import bilevel
from search.cli import main as search_main
from search.config import SearchConfig
from supernet import zoo
from supernet.runtime.checkpoint import LATEST, PREVIOUS, load_checkpoint
from supernet.runtime.config import CONFIG_FILE, load_config
from supernet.train import TrainConfig
from supernet.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
# the thread count of the in-process runs in every subprocess compared with them: CPU kernels
# reduce in a thread-dependent order, so other counts give other (equally valid) numbers
ENV = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "PYTHONPATH": str(ROOT)}


@dataclass(frozen=True)
class Stage:
    module: str          # python -m MODULE
    main: object
    config: type
    settings: tuple      # of its tiny run; "{supernet}" stands for the supernet run directory
    full: tuple          # overrides of the uninterrupted run
    partial: tuple       # overrides of the invocations that leave an unfinished run with two checkpoints
    summary: str         # written when the run is done


SEARCH = ("supernet={supernet}", "scoring.calibration_batches=2", "scoring.finetune_steps=2", "eval_batches=2",
          "workers=0")
STAGES = {
    # 16 steps, a checkpoint every 4
    "supernet": Stage("supernet.train", train_main, TrainConfig,
                      ("space=darts", "C=4", "layers=3", "epochs=1", "batch_size=64", "amp=off", "workers=0",
                       "val_fraction=0.2", "eval_subnets=1", "eval_batches=1", "checkpoint_every=4"),
                      (), (("max_steps=8",),), "supernet.json"),
    # rounds of 4 evaluations, a checkpoint after each
    "evo_nas": Stage("search", search_main, SearchConfig,
                     (*SEARCH, "strategy=evo_nas", "ask_size=4",
                      "strategy_options={population_size: 8, sample_size: 3}"),
                     ("budget=24",), (("budget=8",),), "search.json"),
    # 2 epochs of 16 steps, a checkpoint after each epoch and where max_steps stops the run
    "gdas": Stage("search", search_main, SearchConfig,
                  (*SEARCH, "strategy=gdas", "strategy_options={epochs: 2}", "batch_size=64", "log_every=4",
                   "device=cpu"),
                  (), (("max_steps=4",), ("max_steps=8",)), "search.json"),
    # 3 epochs of 22 steps, a checkpoint after each
    "retrain": Stage("retrain", retrain_main, RetrainConfig,
                     ("genotype=darts_v2", "C=4", "layers=3", "dataset=digits", "epochs=3", "batch_size=64",
                      "lr=0.05", "cutout=0", "amp=off", "workers=0"),
                     (), (("max_steps=44",),), "retrain.json"),
}
NOT_RESULTS = {"wall_time_s", "cpu_time_s", "seconds", "elapsed", "cpu", "train_time", "rng"}   # timings, and RNGs retrain never seeds


@pytest.fixture(scope="module")
def supernet_dir(tmp_path_factory):
    """A finished supernet run: what the searches search, and the uninterrupted run of the torchrun test."""
    out = tmp_path_factory.mktemp("supernet")
    train_main(["--out", str(out), *STAGES["supernet"].settings])
    return out


@pytest.fixture(scope="module")
def argv(supernet_dir):
    """argv(stage, out, *overrides): the arguments of the stage's command."""
    def make(stage, out, *overrides):
        settings = [s.replace("{supernet}", str(supernet_dir)) for s in STAGES[stage].settings]
        return ["--out", str(out), *settings, *overrides]
    return make


@pytest.fixture(scope="module")
def runs(argv, tmp_path_factory):
    """runs(stage, kind): the stage's run of this kind ("full" or "partial"), made on first use."""
    made = {}

    def get(stage, kind):
        if (stage, kind) not in made:
            out = tmp_path_factory.mktemp(f"{stage}_{kind}")
            for overrides in (STAGES[stage].full,) if kind == "full" else STAGES[stage].partial:
                STAGES[stage].main(argv(stage, out, *overrides))
            made[stage, kind] = out
        return made[stage, kind]
    return get


def copy(run, tmp_path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(run) -> dict:
    """The digest of each file under `run`."""
    return {p.relative_to(run).as_posix(): digest(p) for p in run.rglob("*") if p.is_file()}


def flatten(value, key=()) -> dict:
    if not isinstance(value, (dict, list, tuple)):
        return {key: value}
    out = {}
    for k, v in value.items() if isinstance(value, dict) else enumerate(value):
        out.update(flatten(v, (*key, str(k))))
    return out


def outcome(stage, run) -> dict:
    """What a run ends with: its summary JSON and newest checkpoint, flattened, without timings."""
    summary = run / STAGES[stage].summary
    state = {"summary": json.loads(summary.read_text()) if summary.exists() else None,
             "checkpoint": load_checkpoint(run)}
    return {k: v for k, v in flatten(state).items() if not NOT_RESULTS.intersection(k)}


def assert_same(a: dict, b: dict):
    differing = sorted(a.keys() ^ b.keys()) or [
        k for k, v in a.items() if not (torch.equal(v, b[k]) if torch.is_tensor(v) else v == b[k])]
    assert not differing, f"{len(differing)} differ, first {differing[:3]}"


def user_error(main, args, capsys) -> str:
    """The one line that `main(args)` prints to stderr as it exits with status 2."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.endswith("\n"), err
    return err[:-1]


def only_config_written(out: Path, config: type, corrected: list):
    """The failed command wrote nothing but its config.yaml, and that does not refuse the corrected command."""
    assert [p.name for p in out.iterdir()] == [CONFIG_FILE]
    load_config(config, corrected)


# -- killed runs ------------------------------------------------------------------------------------------

def kill_at_first_checkpoint(proc, pid: int, run: Path):
    """SIGKILL process `pid` (of `proc`'s job) as soon as `run` holds a checkpoint."""
    deadline = time.monotonic() + 300
    while not (run / LATEST).exists():
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint within 5 minutes"
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["evo_nas", "gdas", "retrain"])
def test_a_killed_run_resumes_to_the_uninterrupted_result(stage, runs, argv, tmp_path):
    whole, run = runs(stage, "full"), tmp_path / "run"
    cmd = [sys.executable, "-m", STAGES[stage].module, *argv(stage, run, *STAGES[stage].full)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_at_first_checkpoint(proc, proc.pid, run)
    assert proc.wait() == -signal.SIGKILL and not (run / STAGES[stage].summary).exists()
    resumed = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600, check=True)
    assert f"resuming {run} " in resumed.stderr
    assert_same(outcome(stage, run), outcome(stage, whole))


def worker_of(launcher: int, module: str) -> int:
    """The pid of the child of `launcher` that runs `python -m module`, once it runs."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{launcher}/task").glob("*/children"):
            for child in task.read_text().split():
                with contextlib.suppress(OSError, ValueError):   # gone, or no -m: not the worker
                    # (a fork of the launcher, before it execs, has the launcher's command line)
                    args = Path(f"/proc/{child}/cmdline").read_text().split("\0")
                    if args[args.index("-m") + 1] == module:
                        return int(child)
        time.sleep(0.05)
    raise AssertionError(f"no worker of {launcher} runs {module}")


@pytest.mark.slow
def test_torchrun_restarts_a_killed_worker_which_resumes_to_the_uninterrupted_weights(supernet_dir, argv,
                                                                                        tmp_path):
    run, log = tmp_path / "run", tmp_path / "torchrun.log"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "--max-restarts=1",
           "-m", "supernet.train", *argv("supernet", run)]
    with open(log, "w") as out:
        launcher = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT)
        kill_at_first_checkpoint(launcher, worker_of(launcher.pid, "supernet.train"), run)
        assert launcher.wait(timeout=600) == 0, log.read_text()
    assert f"resuming {run} at step " in log.read_text()   # the restarted worker continued from the checkpoint
    assert_same(outcome("supernet", run), outcome("supernet", supernet_dir))


# -- damaged and malicious checkpoints --------------------------------------------------------------------

class Payload:
    """Unpickled, it creates `marker`: the code a checkpoint file can smuggle into a plain torch.load."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def damage(path: Path, how: str, marker: Path):
    if how == "exploit":
        torch.save({"model": Payload(marker), "step": 0}, path)
        return
    data = bytearray(path.read_bytes())
    if how == "truncate":
        data = data[:len(data) // 2]
    else:   # flip: a byte in the middle, which torch.load alone does not notice
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_the_payload_runs_code_under_a_plain_load(tmp_path):
    damage(tmp_path / LATEST, "exploit", tmp_path / "marker")
    torch.load(tmp_path / LATEST, weights_only=False)
    assert (tmp_path / "marker").exists()


DAMAGED = [(stage, how) for stage in ("evo_nas", "gdas", "retrain") for how in ("truncate", "flip", "exploit")]
DAMAGED.append(("supernet", "exploit"))


@pytest.mark.parametrize("stage, how", DAMAGED)
def test_a_damaged_checkpoint_is_skipped_and_the_run_continues_from_the_previous_one(stage, how, runs, argv,
                                                                                       tmp_path, caplog):
    template = runs(stage, "partial")
    run, marker = copy(template, tmp_path), tmp_path / "marker"
    previous = digest(run / PREVIOUS)
    damage(run / LATEST, how, marker)
    STAGES[stage].main(argv(stage, run, *STAGES[stage].partial[-1]))   # redoes the damaged checkpoint's work
    assert f"checkpoint {run / LATEST} is unreadable (" in caplog.text
    assert f"resuming from the previous checkpoint {run / PREVIOUS}" in caplog.text
    assert not marker.exists()
    assert_same(outcome(stage, run), outcome(stage, template))
    if how != "exploit":   # a damaged newest is not rotated over the previous one (an intact zip is)
        assert digest(run / PREVIOUS) == previous


@pytest.mark.parametrize("stage, how", DAMAGED)
def test_with_no_readable_checkpoint_left_the_run_stops_with_one_line(stage, how, runs, argv, tmp_path, capsys):
    run, marker = copy(runs(stage, "partial"), tmp_path), tmp_path / "marker"
    for name in (LATEST, PREVIOUS):
        damage(run / name, how, marker)
    before = files(run)
    err = user_error(STAGES[stage].main, argv(stage, run, *STAGES[stage].partial[-1]), capsys)
    assert err.startswith(f"error: no readable checkpoint in {run} (checkpoint.pt: ")
    assert "; checkpoint.prev.pt: " in err and err.endswith("); delete the run directory to start over")
    assert not marker.exists() and files(run) == before


# -- non-finite losses ------------------------------------------------------------------------------------

def poison(stage: str, value: float, monkeypatch):
    """Multiply the loss by `value` at one step: the last before the run checks its loss."""
    if stage == "retrain":
        real = retrain_module.Retrainer.loss

        def loss(self, x, y):
            loss, logits = real(self, x, y)
            return loss * value if self.step + 1 == self.cfg.epochs * len(self.data.train) else loss, logits

        monkeypatch.setattr(retrain_module.Retrainer, "loss", loss)
    else:
        real = bilevel.BilevelSearch.loss

        def loss(self, x, y, weights):
            loss, correct = real(self, x, y, weights)
            return loss * value if self.step + 1 == 12 else loss, correct

        monkeypatch.setattr(bilevel.BilevelSearch, "loss", loss)


NON_FINITE = {
    "retrain": "error: the training loss became {value} in epoch 3; {run} keeps the checkpoint before it "
               "(try a lower lr, or amp=off)",
    # the weight step's non-finite gradients make the weights NaN before the architecture step
    "gdas": "error: the search loss became {value} (validation nan) before step 12; the run stopped, and {run} "
            "keeps its last good checkpoint",
}


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("stage", ["gdas", "retrain"])
def test_a_non_finite_loss_stops_with_one_line_and_leaves_the_last_good_checkpoint(stage, value, runs, argv,
                                                                                     tmp_path, monkeypatch, capsys):
    run = copy(runs(stage, "partial"), tmp_path)
    watched = (LATEST, PREVIOUS, STAGES[stage].summary)
    before = {name: digest(run / name) for name in watched if (run / name).exists()}
    poison(stage, value, monkeypatch)
    assert user_error(STAGES[stage].main, argv(stage, run), capsys) == NON_FINITE[stage].format(value=value, run=run)
    assert {name: digest(run / name) for name in watched if (run / name).exists()} == before


# -- user errors ------------------------------------------------------------------------------------------

def broken_darts_v2() -> dict:
    """darts_v2 with a block reading a state that does not exist yet."""
    genotype = zoo.get("darts_v2").to_dict()
    genotype["normal"][1] = ["sep_conv_3x3", 9]
    return genotype


@pytest.mark.parametrize("source, message", [
    ("text", "error: normal: block 0 cannot take input 9 (choices are 0..1)"),
    ("unknown_op", "error: op 'sep_conv_4x4' is not a DARTS-convention op (ops: none, skip_connect, "),
    ("cut_text", "error: cannot parse genotype \"Genotype(normal=[('sep_conv_3x3', 0), "),
    ("search.json", "error: {tmp}/search.json holds no genotype: normal: block 0 cannot take input 9 (choices are "),
    ("cut_file", "error: {tmp}/cut.json holds no genotype: "),
])
def test_a_malformed_genotype_is_one_line_and_writes_nothing(source, message, argv, tmp_path, capsys):
    text = str(zoo.get("darts_v2"))
    genotype = {"text": text.replace("('sep_conv_3x3', 1)", "('sep_conv_3x3', 9)", 1),
                "unknown_op": text.replace("sep_conv_3x3", "sep_conv_4x4", 1), "cut_text": text[:60],
                "search.json": str(tmp_path / "search.json"), "cut_file": str(tmp_path / "cut.json")}[source]
    (tmp_path / "search.json").write_text(json.dumps({"strategy": "evo_nas", "best": {
        "genotype": broken_darts_v2(), "reward": 0.5}, "history": []}))
    (tmp_path / "cut.json").write_text((tmp_path / "search.json").read_text()[:40])   # cut off mid-write
    out = tmp_path / "run"
    assert user_error(retrain_main, argv("retrain", out, f"genotype={genotype}"), capsys).startswith(
        message.format(tmp=tmp_path))
    only_config_written(out, RetrainConfig, argv("retrain", out))


@pytest.mark.parametrize("stage, typo, message", [
    ("supernet", "lrr=0.1", "'lrr' in the command-line overrides; did you mean 'lr'?"),
    ("evo_nas", "budgte=8", "'budgte' in the command-line overrides; did you mean 'budget'?"),
    ("gdas", "strategy_options.tau_mx=5", ("'strategy_options.tau_mx' in the config; did you mean "
                                           "'strategy_options.tau_max'?")),
    ("retrain", "cutuot: 0", "'cutuot' in {config}; did you mean 'cutout'?"),   # in a config file
])
def test_an_unknown_config_key_is_one_line_and_changes_nothing(stage, typo, message, runs, argv, tmp_path,
                                                                capsys):
    run, config = copy(runs(stage, "partial"), tmp_path), tmp_path / "config.yaml"
    config.write_text(typo + "\n")
    before = files(run)
    args = argv(stage, run, *(["--config", str(config)] if ": " in typo else [typo]))
    assert user_error(STAGES[stage].main, args, capsys) == "error: unknown config key " + message.format(config=config)
    assert files(run) == before


@pytest.mark.parametrize("stage", ["supernet", "retrain"])
def test_a_missing_dataset_folder_is_one_line_and_writes_nothing(stage, argv, tmp_path, capsys):
    out, missing = tmp_path / "run", tmp_path / "nonexistent"
    err = user_error(STAGES[stage].main, argv(stage, out, "dataset=imagefolder", f"data_dir={missing}"), capsys)
    assert err == f"error: image folder {missing} does not exist"
    only_config_written(out, STAGES[stage].config, argv(stage, out))


@pytest.mark.parametrize("stage, change, differences", [
    ("supernet", "space=nasnet", "space: 'darts' -> 'nasnet'"),
    ("supernet", "C=6", "C: 4 -> 6"),
    ("retrain", "C=6", "C: 4 -> 6"),
])
def test_resuming_with_another_space_or_size_is_one_line_and_changes_nothing(stage, change, differences, runs, argv,
                                                                             tmp_path, capsys):
    run = copy(runs(stage, "partial"), tmp_path)
    before = files(run)
    assert user_error(STAGES[stage].main, argv(stage, run, change), capsys) == (
        f"error: {run} holds a run with other settings ({differences}); re-run with its settings to resume, "
        "or pick a new --out")
    assert files(run) == before


@pytest.mark.parametrize("stage, what", [("retrain", "network"), ("supernet", "supernet")])
def test_a_checkpoint_of_another_size_is_one_line_and_not_loaded(stage, what, runs, argv, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(runs(stage, "partial") / LATEST, run / LATEST)   # no config.yaml to tell it apart
    checkpoint = digest(run / LATEST)
    assert user_error(STAGES[stage].main, argv(stage, run, "C=6"), capsys) == (
        f"error: the checkpoint in {run} is of another {what} (C: 4 -> 6); re-run with its settings to resume, "
        "or pick a new --out")
    assert digest(run / LATEST) == checkpoint and sorted(p.name for p in run.iterdir()) == [LATEST, CONFIG_FILE]


def test_a_supernet_whose_checkpoint_is_of_another_space_than_its_config_is_one_line(supernet_dir, argv, tmp_path,
                                                                                    capsys):
    supernet, out = Path(shutil.copytree(supernet_dir, tmp_path / "supernet")), tmp_path / "search"
    config = supernet / CONFIG_FILE
    config.write_text(config.read_text().replace("space: darts\n", "space: nasnet\n"))
    before = files(supernet)
    assert user_error(search_main, argv("evo_nas", out, f"supernet={supernet}", "budget=4"), capsys) == (
        f"error: the checkpoint in {supernet} is not the supernet its config.yaml describes "
        "(space 'nasnet' in config.yaml, 'darts' in the checkpoint)")
    assert files(supernet) == before
    only_config_written(out, SearchConfig, argv("evo_nas", out, "budget=4"))
