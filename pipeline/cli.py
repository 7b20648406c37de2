"""`nas-pipeline`: train a supernet, search it, retrain the best cells, and report.

    nas-pipeline --config configs/digits.yaml --out runs/digits
    nas-pipeline --config configs/digits.yaml --out runs/d2 supernet.epochs=5 search.strategy=gdas retrain.epochs=3
    nas-pipeline --config configs/digits.yaml --out runs/d3 "search.strategy=[random,evo_nas,gdas]"
    nas-pipeline --config configs/cifar10_5k.yaml --out runs/c5k shortlist=3
    python -m pipeline --config ...

The config names one config file per stage (see pipeline.config); overrides carry the stage as a
prefix. The stages run in DIR/supernet, DIR/search and DIR/retrain (see pipeline.stages); with
shortlist=K, the search's K best candidates are trained in DIR/shortlist first and the retrain stage
takes the most accurate (pipeline.shortlist). Re-running the command resumes the step that was cut
short and skips the finished ones. The run ends with a summary table and DIR/report/ (see pipeline.report).
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from supernet.runtime.cli import command
from supernet.runtime.distributed import barrier, distributed_session, is_main_process

from .config import STAGES, read_pipeline_config, split_overrides
from .report import REPORT_DIR, SUMMARY_MD, summary_table, write_report
from .shortlist import SHORTLIST_DIR, run_shortlist
from .stages import resolve_configs, run_stage, stage_argv

log = logging.getLogger(__name__)


def run_pipeline(config: Path, out: Path, overrides) -> dict | None:
    """Run (or resume) the pipeline in `out`; the report's summary (on rank 0 of a torchrun job; None on
    the others), None if a stage stopped early."""
    start = time.perf_counter()
    own, stage_overrides = split_overrides(overrides)
    pipeline = read_pipeline_config(config, own)
    files = pipeline.stage_files(config)
    configs = resolve_configs(files, stage_overrides, out, pipeline.shortlist)
    with distributed_session(configs["supernet"].device):   # one process group for every step
        for stage in STAGES:
            summary = run_stage(stage, configs[stage], out / stage)
            if summary is None:
                log.info("the %s stage stopped before its end (max_steps/max_epochs); re-run to continue", stage)
                return None
            if stage == "search" and pipeline.shortlist and run_shortlist(
                    pipeline.shortlist, stage_argv("retrain", files, stage_overrides, out, configs, pipeline.shortlist),
                    configs["supernet"], out / "search", summary, out / SHORTLIST_DIR) is None:
                log.info("a candidate stopped before its end (max_epochs); re-run to continue")
                return None
            # rank 0 writes what a stage ends with (search.json, shortlist.json): every rank waits for it
            barrier()
    if not is_main_process():
        return None   # rank 0 of a torchrun job reports
    summary = write_report(out, configs, pipeline.shortlist)
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
                        help="settings of a stage, e.g. supernet.epochs=5 search.budget=100 retrain.epochs=3, "
                             "or the pipeline's shortlist=K")
    args = parser.parse_intermixed_args(argv)
    run_pipeline(args.config, args.out, args.overrides)


if __name__ == "__main__":
    main()
