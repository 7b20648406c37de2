"""`nas-search`: search a trained supernet for the best cells.

    nas-search --config configs/search_digits.yaml --out runs/search supernet=runs/digits strategy=evo_nas budget=200
    python -m search --config configs/search_digits.yaml --out runs/search supernet=runs/digits
    torchrun --nproc_per_node=2 -m search --config ... (the candidates of each round are shared out)

The supernet, its dataset and its validation split come from the supernet run
directory. Discrete strategies (random, evolution, rl, evo_nas) run the
ask/evaluate/tell loop of search.loop; the relaxed ones (gdas, darts,
sparsemax, entmax) hand over to search.bilevel, and the genotype they
derive is then scored by the same evaluator. Re-running resumes. A list of
strategies (`strategy=[random,evo_nas,gdas]`) runs one search each in
DIR/<strategy>/ and compares them (search.compare).
"""
from __future__ import annotations

import copy
import logging
import time
from dataclasses import replace
from pathlib import Path

import yaml

from supernet.errors import MissingFileError
from supernet.genotype import Genotype
from supernet.genotype_lookup import resolve_genotype
from supernet.runtime.checkpoint import CheckpointError, load_supernets
from supernet.runtime.cli import command
from supernet.runtime.config import CONFIG_FILE, load_config
from supernet.runtime.data import make_loaders, set_epoch, take_batches
from supernet.runtime.distributed import distributed_session
from supernet.runtime.files import write_json
from supernet.runtime.precision import mixed_precision, uses_channels_last

from .compare import strategy_runs, write_comparison
from .config import SearchConfig, scoring_of
from .constraints import Constraints, SizeTable
from .evaluator import Evaluator
from .loop import SUMMARY_FILE, run_search
from .screening import screened_search
from .strategy import create_strategy

log = logging.getLogger(__name__)


def supernet_settings(run_dir) -> dict:
    """The resolved config of a supernet-train run directory."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise MissingFileError(f"{run_dir} is not a supernet-train run directory (no {CONFIG_FILE}); "
                                f"train one with supernet-train --out {run_dir}")
    return yaml.safe_load(path.read_text())


def check_supernet(net, trained: dict, run_dir):
    """The checkpoint must hold the supernet that the run directory's config describes."""
    found = {"space": net.spec.space, "C": net.spec.C, "layers": net.spec.layers}
    changed = [f"{k} {trained.get(k)!r} in {CONFIG_FILE}, {v!r} in the checkpoint" for k, v in found.items()
               if trained.get(k) != v]
    if changed:
        raise CheckpointError(f"the checkpoint in {run_dir} is not the supernet its {CONFIG_FILE} describes "
                              f"({'; '.join(changed)})")


def loaders(cfg: SearchConfig, trained: dict, rank: int = 0, world_size: int = 1, shard_eval: bool = False):
    """The supernet run's dataset and splits, batched for the search (this rank's share of the training
    batches; with `shard_eval`, its shard of the evaluation splits)."""
    return make_loaders(trained["dataset"], cfg.data_dir or trained["data_dir"], cfg.batch_size,
                        image_size=trained["image_size"], val_fraction=trained["val_fraction"],
                        workers=cfg.workers, seed=cfg.seed, rank=rank, world_size=world_size, shard_eval=shard_eval)


def size_limit(limit: int | str | dict | None, metric: str, target: Constraints) -> int | None:
    """A max_params / max_macs setting as a number: itself, or the size of a genotype's target network."""
    if limit is None or isinstance(limit, int):
        return limit
    return target.size(resolve_genotype(limit)[0])[metric]


def build_evaluator(cfg: SearchConfig, trained: dict, nets: list, data, device) -> Evaluator:
    """Scoring (fine-tuning, BN calibration) on the first training batches of epoch 0; validation on the val split."""
    set_epoch(data.train, 0)
    constraints = None
    if cfg.max_params is not None or cfg.max_macs is not None:
        shape = nets[0].spec
        target = Constraints(cfg.target_C or shape.C, cfg.target_layers or shape.layers, shape.num_classes,
                             cfg.target_image_size or data.image_size, shape.in_channels)
        constraints = replace(target, max_params=size_limit(cfg.max_params, "params", target),
                              max_macs=size_limit(cfg.max_macs, "macs", target))
    scoring, channels_last = scoring_of(trained, cfg.scoring), uses_channels_last(trained.get("channels_last"), device)
    train = take_batches(data.train, scoring.train_batches, device, channels_last)
    validation = take_batches(data.val, cfg.eval_batches, device, channels_last) if data.val is not None else []
    return Evaluator(nets, train, validation, constraints, mixed_precision(cfg.amp, device)[0], scoring, channels_last)


def search(cfg: SearchConfig, out) -> dict | None:
    """Run (or resume) the search in `out`; the summary that search.json holds, None if a relaxed
    search stopped at max_steps (its search.json then says `finished: false`)."""
    out = Path(out)
    with distributed_session(cfg.device) as dist:
        trained = supernet_settings(cfg.supernet)
        nets = [net.to(dist.device).eval() for net in
                load_supernets(cfg.supernet, trained, untrained=cfg.untrained)]
        check_supernet(nets[0], trained, cfg.supernet)
        data = loaders(cfg, trained)
        evaluator = build_evaluator(cfg, trained, nets, data, dist.device)
        if cfg.relaxed:   # the relaxation trains a copy of the first supernet's weights where a run has several
            return relaxed_search(cfg, nets[0], trained, evaluator, out, dist)
        spec = nets[0].spec
        sizes = SizeTable(spec.C, spec.layers, spec.num_classes, data.image_size, spec.in_channels, spec.stem)
        strategy = create_strategy(cfg.strategy, nets[0].space, seed=cfg.seed, **cfg.strategy_options,
                                   context={"sizes": sizes, "limits": evaluator.constraints})
        if not cfg.screening.on:
            return run_search(cfg, strategy, evaluator, out, dist.is_main)
        cheap = build_evaluator(replace(cfg, scoring={**cfg.scoring, **cfg.screening.scoring}), trained, nets, data,
                                dist.device)
        return screened_search(cfg, strategy, evaluator, cheap, sizes, out, dist.is_main)


def relaxed_search(cfg: SearchConfig, net, trained: dict, evaluator: Evaluator, out: Path, dist) -> dict | None:
    from .bilevel import run

    # the search trains a copy: the derived genotype is scored on the supernet's weights, as the discrete ones are
    result = run(cfg, copy.deepcopy(net), loaders(cfg, trained, dist.rank, dist.world_size), out, dist)
    # the derived genotype and each epoch's are the candidates, scored as the discrete strategies' are:
    # the best of them (the derived one on a tie) is the search's best
    candidates = [Genotype.from_dict(g) for g in [result["genotype"], *(h["genotype"] for h in result["history"])]]
    start = time.perf_counter()
    reward, genotype = max(zip((r["reward"] for r in evaluator.evaluate(candidates)), candidates), key=lambda rg: rg[0])
    summary = {"best": {"genotype": genotype.to_dict(), "genotype_str": str(genotype), "reward": reward},
               "strategy": cfg.strategy, "evaluations": len(set(candidates)), "steps": result["steps"],
               "finished": result["finished"], "supernet": cfg.supernet,
               # the whole search's, as a discrete one's: the training (over its resumptions) and the scoring
               "wall_time_s": round(result["wall_time_s"] + time.perf_counter() - start, 3), "result": result}
    if dist.is_main:
        write_json(out / SUMMARY_FILE, summary)
    return summary if result["finished"] else None


def run(cfg: SearchConfig, out) -> dict | None:
    """One search in `out` (its summary), or one per strategy of a list and their comparison; None
    while a relaxed one is unfinished."""
    if not isinstance(cfg.strategy, list):
        return search(cfg, out)
    results = [(one, search(one, run_dir)) for one, run_dir in strategy_runs(cfg, out)]
    return write_comparison(cfg, results, out, scoring_of(supernet_settings(cfg.supernet), cfg.scoring).metric)


@command
def main(argv=None):
    cfg, out = load_config(SearchConfig, argv, description="Search a trained supernet for the best cells.")
    run(cfg, out)


if __name__ == "__main__":
    main()
