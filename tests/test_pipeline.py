"""nas-pipeline end to end on digits with tiny stages: stage folders, report, skipping, errors, a killed run."""
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
import yaml

import pipeline.stages
from pipeline.cli import main
from pipeline.draw import cell_figure
from pipeline.report import summary_table
from supernet import zoo

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "digits.yaml"
TINY = ["supernet.C=4", "supernet.layers=3", "supernet.epochs=1", "supernet.eval_subnets=2", "search.budget=16",
        "search.ask_size=4", "search.strategy_options={population_size: 6, sample_size: 3}", "retrain.C=4",
        "retrain.layers=3", "retrain.epochs=1"]
STAGE_FILES = {"supernet": "supernet.json", "search": "search.json", "retrain": "retrain.json"}


def read(path):
    return json.loads(Path(path).read_text())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline")
    main(["--config", str(CONFIG), "--out", str(out), *TINY])
    return out


def test_every_stage_and_the_report_write_their_files(run):
    for stage, final in STAGE_FILES.items():
        for name in (final, "config.yaml", "metrics.jsonl", "checkpoint.pt"):
            assert (run / stage / name).stat().st_size > 0, (stage, name)
    for name in ("normal.png", "reduce.png", "search.png"):
        assert (run / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert (run / "report" / "search.png").read_bytes() == (run / "search" / "search.png").read_bytes()


def test_the_stages_are_linked_and_use_the_digits_configs(run):
    search_cfg = yaml.safe_load((run / "search" / "config.yaml").read_text())
    retrain_cfg = yaml.safe_load((run / "retrain" / "config.yaml").read_text())
    supernet_cfg = yaml.safe_load((run / "supernet" / "config.yaml").read_text())
    assert search_cfg["supernet"] == str(run / "supernet") and search_cfg["strategy"] == "evo_nas"
    assert retrain_cfg["genotype"] == str(run / "search" / "search.json")
    assert (retrain_cfg["dataset"], retrain_cfg["data_dir"]) == (supernet_cfg["dataset"], supernet_cfg["data_dir"])
    retrain_file = yaml.safe_load((ROOT / "configs" / "digits_retrain.yaml").read_text())
    assert retrain_cfg["lr"] == retrain_file["lr"] and retrain_cfg["C"] == 4   # the file, then the override
    assert supernet_cfg["batch_size"] == yaml.safe_load((ROOT / "configs" / "digits_supernet.yaml").read_text())[
        "batch_size"]


def test_summary_figures_are_those_of_the_stage_jsons(run):
    supernet, found, retrained = (read(run / stage / final) for stage, final in STAGE_FILES.items())
    summary = read(run / "report" / "summary.json")
    assert summary["strategy"] == found["strategy"] == "evo_nas"
    assert summary["reward"] == found["best"]["reward"] == max(r["reward"] for r in found["history"])
    assert summary["genotype"] == found["best"]["genotype"] == retrained["genotype"]
    assert summary["supernet_val_acc_mean"] == supernet["val_acc_mean"]
    for key in ("params", "macs", "test_acc", "test_top5"):
        assert summary[key] == retrained[key], key
    assert summary["time_s"] == {"supernet": supernet["wall_time_s"], "search": found["wall_time_s"],
                                 "retrain": retrained["wall_time_s"]}
    markdown = (run / "report" / "summary.md").read_text()
    assert f"{summary['test_acc']:.4f}" in markdown and summary["genotype_str"] in markdown
    # the reward row names the search's metric: the digits configs rank by the default, the probability
    assert summary["reward_metric"] == "probability" and "reward: validation true-class probability of" in markdown
    assert "reward: validation accuracy of" in summary_table({**summary, "reward_metric": "accuracy"})
    assert summary["predictor"] is None and "predictor" not in markdown   # an evo_nas search has none
    predicted = summary_table({**summary, "predictor": {"cross_validated_tau": 0.4321, "per_s": 2345.6}})
    rows = {cells[2].strip(): cells[3].strip() for cells in (line.split("|") for line in predicted.splitlines()[2:])}
    assert rows["predictor: Kendall tau of its cross-validated predictions of its own cells"] == "0.4321"
    assert rows["predictor: candidates ranked a second"] == "2,346"
    unscored = summary_table({**summary, "supernet_val_acc_mean": None, "supernet_eval_subnets": 0})
    assert "| mean validation accuracy of 0 random subnets" in unscored and "| n/a " in unscored


def test_rerun_skips_the_finished_stages_and_prints_the_summary(run, monkeypatch, capsys):
    def must_not_run(cfg, out):
        raise AssertionError(f"{out} was run again")

    monkeypatch.setattr(pipeline.stages, "RUNNERS", dict.fromkeys(STAGE_FILES, must_not_run))
    before = {p: p.stat().st_mtime_ns for stage in STAGE_FILES for p in (run / stage).iterdir() if p.is_file()}
    main(["--config", str(CONFIG), "--out", str(run), *TINY])
    assert {p: p.stat().st_mtime_ns for p in before} == before
    printed = capsys.readouterr().out
    summary = read(run / "report" / "summary.json")
    assert f"| {summary['test_acc']:.4f} / {summary['test_top5']:.4f}" in printed
    assert f"{summary['reward']:.4f}" in printed and f"{summary['params']:,}" in printed


@pytest.mark.parametrize("overrides, message", [
    (["search.budgte=3"], ("error: search stage: unknown config key 'budgte' in the command-line overrides; "
                           "did you mean 'budget'?")),
    (["search.scoring.finetune_step=3"], ("error: search stage: unknown config key 'scoring.finetune_step' in "
                                          "the config; did you mean 'scoring.finetune_steps'?")),
    (["retrain.epochs=many"], "error: retrain stage: epochs must be int, got 'many'"),
    (["budget=3"], "error: override 'budget=3' must name its stage"),
    (["searhc.budget=3"], "error: override 'searhc.budget=3' must name its stage"),
    (["retrain.genotype=darts_v2"], "error: retrain.genotype is set by the pipeline"),
    (["retrain.data_dir=elsewhere"], "error: retrain.data_dir is set by the pipeline"),
    (["retrain.val_fraction=0.1"], "error: retrain.val_fraction is set by the pipeline"),
])
def test_a_config_error_is_one_line_and_claims_no_run_directory(tmp_path, capsys, overrides, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--config", str(CONFIG), "--out", str(tmp_path / "run"), *TINY, *overrides])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(message) and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text, message", [
    ("supernet: {c}/digits_supernet.yaml\nsearch: {c}/search_digits.yaml\nretrain: {c}/digits_retrain.yaml\nreport: x\n",
     "unknown config key 'report'"),
    ("supernet: {c}/digits_supernet.yaml\nsearch: {c}/search_digits.yaml\n", "add retrain: FILE.yaml"),
    ("supernet: {c}/digits_supernet.yaml\nsearch: nowhere.yaml\nretrain: {c}/digits_retrain.yaml\n",
     "error: search stage: config file {tmp}/nowhere.yaml does not exist"),
])
def test_a_bad_pipeline_config_is_one_line(tmp_path, capsys, text, message):
    config = tmp_path / "pipeline.yaml"
    config.write_text(text.format(c=ROOT / "configs"))
    with pytest.raises(SystemExit):
        main(["--config", str(config), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert message.format(tmp=tmp_path) in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("name", ["nasnet_a", "darts_v2"])
def test_a_drawn_cell_shows_every_edge_and_state(name):
    import matplotlib.pyplot as plt
    from matplotlib.text import Annotation

    genotype = zoo.get(name)
    for reduction in (False, True):
        pairs, concat = genotype.cell(reduction)
        fig = cell_figure(genotype, reduction)
        ax = fig.axes[0]
        labels = [t.get_text() for t in ax.texts if not isinstance(t, Annotation)]
        arrows = [t for t in ax.texts if isinstance(t, Annotation)]
        blocks = [str(b) for b in range(len(pairs) // 2)]
        assert sorted(labels) == sorted([op for op, _ in pairs] + blocks + ["$c_{k-2}$", "$c_{k-1}$", "$c_{k}$"])
        assert len(arrows) == len(pairs) + len(concat)
        plt.close(fig)


@pytest.mark.slow
def test_killed_in_the_search_the_pipeline_ends_as_an_uninterrupted_run(run, tmp_path):
    # the thread count of the in-process uninterrupted run: CPU kernels reduce in a thread-dependent order
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "pipeline", "--config", str(CONFIG), "--out", str(tmp_path), *TINY]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history, deadline = tmp_path / "search" / "history.jsonl", time.time() + 300
    while not (history.is_file() and len(history.read_text().splitlines()) >= 4) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "supernet" / "supernet.json").is_file() and not (tmp_path / "search" / "search.json").exists()
    rerun = subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=600)
    assert "supernet stage: finished already" in rerun.stderr and "resuming" in rerun.stderr
    killed, whole = read(tmp_path / "report" / "summary.json"), read(run / "report" / "summary.json")
    killed.pop("time_s"), whole.pop("time_s")
    assert killed == whole
    keep = ("genotype", "reward", "round", "cached")
    assert ([{k: r[k] for k in keep} for r in read(tmp_path / "search" / "search.json")["history"]]
            == [{k: r[k] for k in keep} for r in read(run / "search" / "search.json")["history"]])


def _photos(root: Path) -> Path:
    """An image folder of 2 classes x 24 tiny PNGs, half of them 10x10 pixels, half 14x14."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for c in range(2):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(24):
            size = 10 if i % 2 else 14
            pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8) // (c + 1)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i}.png")
    return root


@pytest.mark.parametrize("size", [8, 12])
def test_every_stage_works_on_the_supernet_image_size(size, tmp_path):
    photos, out = _photos(tmp_path / "photos"), tmp_path / "run"
    main(["--config", str(CONFIG), "--out", str(out), *TINY, "supernet.dataset=imagefolder",
          f"supernet.data_dir={photos}", f"supernet.image_size={size}", "supernet.val_fraction=0.25",
          "supernet.batch_size=8", "search.batch_size=8", "retrain.batch_size=8", "search.budget=4"])
    configs = {stage: yaml.safe_load((out / stage / "config.yaml").read_text()) for stage in STAGE_FILES}
    assert configs["retrain"]["image_size"] == configs["supernet"]["image_size"] == size
    assert configs["retrain"]["dataset"] == "imagefolder" and configs["retrain"]["data_dir"] == str(photos)
    assert read(out / "retrain" / "retrain.json")["image_size"] == size


def test_the_retrain_image_size_is_the_pipelines_to_set(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--config", str(CONFIG), "--out", str(tmp_path / "run"), *TINY, "retrain.image_size=16"])
    assert capsys.readouterr().err.startswith("error: retrain.image_size is set by the pipeline")


# nas-pipeline with rank 0 slow to write search.json (only rank 0 writes it): rank 1 must not start
# the retrain stage, which reads that file, before it is there
SLOW_RANK_0 = """import sys, time
import search.loop
from pipeline.cli import main
write = search.loop.write_json
search.loop.write_json = lambda *args: (time.sleep(3), write(*args))
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_the_pipeline_runs_under_torchrun_on_two_processes_however_slowly_rank_0_writes(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    script = tmp_path / "slow_rank_0.py"
    script.write_text(SLOW_RANK_0)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           "--config", str(CONFIG), "--out", str(out), *TINY]
    result = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    for stage, final in STAGE_FILES.items():
        assert (out / stage / final).is_file(), stage
    assert read(out / "supernet" / "supernet.json")["world_size"] == 2
    assert read(out / "retrain" / "retrain.json")["world_size"] == 2
    summary = read(out / "report" / "summary.json")
    assert summary["genotype"] == read(out / "retrain" / "retrain.json")["genotype"]
    assert result.stdout.count("| retrain  | test accuracy") == 1   # one report, from rank 0
