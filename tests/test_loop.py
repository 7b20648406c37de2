"""The one training loop (supernet.runtime.loop) as its three users meet it: the same result when stopped
early, the same refusal of another network's checkpoint, and bugs that keep their traceback."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from retrain.train import RetrainConfig, retrain
from search.bilevel import BilevelSearch
from search.cli import loaders, supernet_settings
from search.config import SearchConfig
from supernet.runtime.checkpoint import LATEST, CheckpointError, load_supernet
from supernet.runtime.distributed import init_distributed
from supernet.train import TrainConfig, main, train

ROOT = Path(__file__).resolve().parents[1]
SUPERNET = {"space": "darts", "C": 4, "layers": 3, "epochs": 1, "batch_size": 64, "amp": "off", "workers": 0,
            "val_fraction": 0.2, "eval_subnets": 1, "eval_batches": 1, "device": "cpu"}


@pytest.fixture(scope="module")
def supernets(tmp_path_factory):
    """Two finished digits supernets of different widths."""
    out = tmp_path_factory.mktemp("supernets")
    for C in (4, 6):
        main(["--out", str(out / f"C{C}"), *(f"{k}={v}" for k, v in SUPERNET.items()), f"C={C}"])
    return out


def bilevel(supernet_dir, out, **settings) -> BilevelSearch:
    cfg = SearchConfig(supernet=str(supernet_dir), strategy="gdas", strategy_options={"epochs": 1}, device="cpu",
                       **settings)
    data = loaders(cfg, supernet_settings(supernet_dir))
    return BilevelSearch(cfg, load_supernet(supernet_dir), data, out, init_distributed("cpu"))


def test_every_loop_returns_none_when_stopped_early_and_its_summary_at_the_end(supernets, tmp_path):
    assert train(TrainConfig(**SUPERNET, max_steps=3), tmp_path / "supernet") is None
    retrain_cfg = RetrainConfig(genotype="darts_v2", C=4, layers=3, dataset="digits", epochs=2, cutout=0,
                                amp="off", workers=0, max_steps=3)
    assert retrain(retrain_cfg, tmp_path / "retrain") is None
    assert bilevel(supernets / "C4", tmp_path / "search", max_steps=3).run() is None
    finished = bilevel(supernets / "C4", tmp_path / "search").run()
    assert finished["finished"] and finished["steps"] == 16


def test_the_relaxed_search_refuses_a_checkpoint_of_another_network(supernets, tmp_path):
    bilevel(supernets / "C4", tmp_path / "a", max_steps=2).run()
    (tmp_path / "b").mkdir()
    shutil.copy(tmp_path / "a" / LATEST, tmp_path / "b" / LATEST)
    with pytest.raises(CheckpointError, match=r"the checkpoint in .*b is of another supernet \(C: 4 -> 6\)"):
        bilevel(supernets / "C6", tmp_path / "b").run()


def test_a_torch_error_inside_a_command_keeps_its_traceback(tmp_path):
    # a shape error raised by torch is a ValueError: a bug, not a one-line user error
    script = ("import torch, torch.nn.functional as F, supernet.train as t\n"
              "t.Trainer.train_step = lambda self, x, y, *inputs: F.cross_entropy(torch.zeros(2, 10), y)\n"
              f"t.main(['--out', {str(tmp_path)!r}, 'space=darts', 'C=4', 'layers=3', 'epochs=1', 'amp=off',"
              " 'workers=0', 'eval_subnets=1'])\n")
    result = subprocess.run([sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1 and "Traceback (most recent call last)" in result.stderr
    assert "ValueError: Expected input batch_size (2) to match target batch_size (64)" in result.stderr
    assert "error: Expected" not in result.stderr
