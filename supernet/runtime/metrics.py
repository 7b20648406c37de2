"""What a run reports: metrics.jsonl, TensorBoard events, and a progress line with rate and ETA.

    metrics = MetricsLog(run_dir, enabled=dist.is_main, resume_step=step)
    metrics.log(step, **{"train/loss": 0.3, "lr": 0.05})
    progress = Progress(total=steps, done=step, items_per_step=global_batch)
    log.info("%s", progress.line(step))
"""
from __future__ import annotations

import json
import math
import time
from datetime import timedelta
from pathlib import Path

from .files import write_atomic

METRICS_FILE, TENSORBOARD_DIR = "metrics.jsonl", "tb"


def read_metrics(run_dir) -> list[dict]:
    """The records of run_dir/metrics.jsonl, oldest first."""
    path = Path(run_dir) / METRICS_FILE
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []


class MetricsLog:
    """Appends one JSON object a line to run_dir/metrics.jsonl and the numbers to TensorBoard
    (run_dir/tb). Does nothing where `enabled` is false (the ranks other than 0).

    A resumed run passes the step of its checkpoint as `resume_step`: records after it,
    written by the run that was cut short, are dropped from both, so each step appears once.
    """

    def __init__(self, run_dir, enabled: bool = True, resume_step: int = 0):
        self.enabled = enabled
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / METRICS_FILE
        kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= resume_step]
        write_atomic(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        self.file = open(self.path, "a")  # noqa: SIM115 - appended to until close()
        self.writer = SummaryWriter(str(run_dir / TENSORBOARD_DIR), purge_step=resume_step + 1)

    def log(self, step: int, **values):
        """Record `values` (numbers, strings, lists) at `step`; numbers also go to TensorBoard."""
        if not self.enabled:
            return
        self.file.write(json.dumps({"step": step, **values}) + "\n")
        self.file.flush()
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(key, value, step)

    def close(self):
        if self.enabled:
            self.file.close()
            self.writer.close()


class Progress:
    """Rate and ETA of a loop of `total` steps of which `done` were done before this process began."""

    def __init__(self, total: int, done: int = 0, items_per_step: int | None = None, unit: str = "step",
                 item: str = "img"):
        self.total, self.start, self.items_per_step, self.unit, self.item = total, done, items_per_step, unit, item
        self.t0 = time.perf_counter()

    def line(self, step: int) -> str:
        """e.g. 'step 120/400 (30%) 12.30 step/s 788 img/s ETA 0:00:22'."""
        elapsed = time.perf_counter() - self.t0
        rate = (step - self.start) / elapsed if elapsed > 0 else 0.0
        eta = timedelta(seconds=round((self.total - step) / rate)) if rate > 0 else "?"
        items = f" {rate * self.items_per_step:.0f} {self.item}/s" if self.items_per_step else ""
        return (f"{self.unit} {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%) "
                f"{rate:.2f} {self.unit}/s{items} ETA {eta}")
