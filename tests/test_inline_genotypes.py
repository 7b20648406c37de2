"""A genotype written inline (JSON on the command line, a mapping in YAML) works as it does in a file:
in nas-retrain, in nas-search's size limits and in nas-pipeline overrides; a malformed one is one line."""
import json
from pathlib import Path

import pytest
import torch

from pipeline.config import read_pipeline_config, stage_overrides
from pipeline.stages import resolve_configs
from retrain.cli import main as retrain_main
from search.cli import build_evaluator
from search.config import SearchConfig
from search.constraints import Constraints
from supernet import zoo
from supernet.model import build_supernet
from supernet.runtime.data import make_loaders
from supernet.runtime.lock import release_run_dirs
from supernet.space import get_space

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ["C=4", "layers=3", "dataset=digits", "epochs=1", "cutout=0", "amp=off", "workers=0", "batch_size=64"]


def test_nas_retrain_takes_a_genotype_as_inline_json(tmp_path):
    g = get_space("darts").sample(5)
    retrain_main(["--out", str(tmp_path), f"genotype={g.to_json()}", *DIGITS])
    assert json.loads((tmp_path / "retrain.json").read_text())["genotype"] == g.to_dict()


def test_a_malformed_inline_genotype_is_one_line(tmp_path, capsys):
    broken = zoo.get("darts_v2").to_dict()
    broken["normal"][1] = ["sep_conv_3x3", 9]
    with pytest.raises(SystemExit) as e:
        retrain_main(["--out", str(tmp_path), f"genotype={json.dumps(broken)}", *DIGITS])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: the genotype given inline is malformed: normal: block 0 cannot take input 9")


def test_a_genotype_sets_nas_search_size_limits():
    net = build_supernet("darts", C=4, layers=3, num_classes=10, in_channels=1)
    data = make_loaders("digits", "", 64, val_fraction=0.2, workers=0)
    g = get_space("darts").sample(2)
    cfg = SearchConfig(supernet="unused", max_params=g.to_dict(), max_macs="darts_v2", target_C=16, target_layers=8)
    limits = build_evaluator(cfg, {}, [net], data, torch.device("cpu")).constraints
    target = Constraints(16, 8, 10, 8, in_channels=1)
    assert limits.max_params == target.size(g)["params"] and limits.max_macs == target.size(zoo.get("darts_v2"))["macs"]


def test_nas_pipeline_passes_an_inline_genotype_through_its_overrides(tmp_path):
    g = get_space("nasnet").sample(1)
    overrides = stage_overrides([f"search.max_params={g.to_json()}"])
    config = ROOT / "configs" / "digits.yaml"
    try:
        configs = resolve_configs(read_pipeline_config(config).stage_files(config), overrides, tmp_path)
    finally:
        release_run_dirs()   # resolving claims the run directory, as the command does
    assert configs["search"].max_params == g.to_dict()
