"""A run directory belongs to one job at a time: a second command on a directory in use stops at once with
one line and changes nothing; a killed job leaves no lock behind."""
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from supernet.runtime.lock import hold_run_dir, release_run_dirs

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TINY = ["space=darts", "C=4", "layers=3", "epochs=1", "amp=off", "workers=0", "eval_subnets=1", "max_steps=2"]
COMMANDS = {
    "supernet-train": ["supernet.train", *TINY],
    "nas-pipeline": ["pipeline", "--config", str(ROOT / "configs" / "digits.yaml"), "supernet.C=4"],
}


def files(run: Path) -> dict:
    return {p.relative_to(run).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in run.rglob("*") if p.is_file()}


def command(name: str, out: Path) -> subprocess.CompletedProcess:
    module, *args = COMMANDS[name]
    return subprocess.run([sys.executable, "-m", module, "--out", str(out), *args], check=False, cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_second_job_on_a_directory_in_use_stops_at_once_and_changes_nothing(name, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("space: nasnet\n")   # the first job's, which the second must not touch
    before = files(out)
    hold_run_dir(out)   # this process is the job that works there
    try:
        result = command(name, out)
    finally:
        release_run_dirs()
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == f"error: run directory {out} is in use by process {os.getpid()}"
    assert files(out) == before


def test_a_killed_job_leaves_no_lock_behind(tmp_path):
    out = tmp_path / "run"
    script = (f"import time; from supernet.runtime.lock import hold_run_dir; hold_run_dir({str(out)!r}); "
              "print('held', flush=True); time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    busy = command("supernet-train", out)
    assert busy.returncode == 2 and f"is in use by process {holder.pid}" in busy.stderr
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    time.sleep(0.1)
    finished = command("supernet-train", out)
    assert finished.returncode == 0, finished.stderr
    assert (out / "checkpoint.pt").is_file()
