"""tools/gpu_check.sh, the measurement a developer runs when a GPU is lent, runs end to end (on CPU, at
toy sizes, with --smoke), so that it cannot rot before a GPU is there to run it."""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_check_runs_and_writes_every_figure(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(["bash", "tools/gpu_check.sh", "--smoke", "--out", str(tmp_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads((tmp_path / "gpu_check.json").read_text())
    assert set(figures["supernet_single_path"]) == {"off_contiguous", "off_channels_last", "bf16_contiguous",
                                                    "bf16_channels_last"}
    assert all(v["images_per_s"] > 0 and v["time_ratio"] > 0 for v in figures["supernet_single_path"].values())
    assert figures["search_evaluations_per_s"] > 0 and figures["entmax_vs_darts_time_ratio"] > 0
    assert {"eager_img_s", "channels_last_img_s", "amp_img_s", "channels_last_amp_img_s"} <= set(
        figures["darts_v2_train_images_per_s"])
    assert figures["torchrun_one_process"]["steps"] == 20
