"""`nas-pipeline`: train a supernet, search it, retrain the best cells, and report.

    nas-pipeline --config configs/digits.yaml --out runs/digits
    nas-pipeline --config configs/digits.yaml --out runs/d2 supernet.epochs=5 search.strategy=gdas retrain.epochs=3
    nas-pipeline --config configs/digits.yaml --out runs/d3 "search.strategy=[random,evo_nas,gdas]"
    python -m pipeline --config ...

The config names one config file per stage (see pipeline.config); overrides carry the stage as a
prefix. The stages run in DIR/supernet, DIR/search and DIR/retrain (see pipeline.stages).
Re-running the command resumes the stage that was cut short and skips the finished ones. The run ends with a summary table and DIR/report/ (see pipeline.report).
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from supernet.runtime.cli import command
from supernet.runtime.distributed import barrier, distributed_session, is_main_process

from .config import STAGES, read_pipeline_config, stage_overrides
from .report import REPORT_DIR, SUMMARY_MD, summary_table, write_report
from .stages import resolve_configs, run_stage

log = logging.getLogger(__name__)


def run_pipeline(config: Path, out: Path, overrides) -> dict | None:
    """Run (or resume) the pipeline in `out`; the report's summary (on rank 0 of a torchrun job; None on
    the others), None if a stage stopped early."""
    start = time.perf_counter()
    files = read_pipeline_config(config).stage_files(config)
    configs = resolve_configs(files, stage_overrides(overrides), out)
    with distributed_session(configs["supernet"].device):   # one process group for every stage
        for stage in STAGES:
            if run_stage(stage, configs[stage], out / stage) is None:
                log.info("the %s stage stopped before its end (max_steps); re-run to continue", stage)
                return None
            # rank 0 writes what a stage ends with (search.json): every rank waits for it
            barrier()
    if not is_main_process():
        return None   # rank 0 of a torchrun job reports
    summary = write_report(out, configs)
    print(f"\n{summary_table(summary)}")
    print(f"cells: {summary['genotype_str']}\nreport: {out / REPORT_DIR / SUMMARY_MD} "
          f"(this run: {time.perf_counter() - start:.0f} s)")
    return summary


@command
def main(argv=None):
    parser = argparse.ArgumentParser(prog="nas-pipeline", description="Train a supernet, search it, retrain the best cells, and report.")
    parser.add_argument("--config", type=Path, required=True,
                        help="pipeline YAML naming the supernet, search and retrain config files")
    parser.add_argument("--out", type=Path, required=True, help="run directory (created; re-run to resume)")
    parser.add_argument("overrides", nargs="*", metavar="stage.key=value",
                        help="settings of a stage, e.g. supernet.epochs=5 search.budget=100 retrain.epochs=3")
    args = parser.parse_intermixed_args(argv)
    run_pipeline(args.config, args.out, args.overrides)


if __name__ == "__main__":
    main()
