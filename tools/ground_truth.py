"""Standalone accuracy of a seeded sample of a space's genotypes (and of zoo cells), each trained from
scratch: the ground truth that tools/ranking.py scores supernets against.

    python tools/ground_truth.py --config configs/cifar10_5k_retrain.yaml --space nasnet --sample 24 \\
        --zoo nasnet_a amoebanet_a pnasnet_5 enas --reseed 28 --seeds 3 --jobs 2 --runs runs/ground_truth \\
        --json tools/ground_truth/cifar10_5k_nasnet_c8_l5.json

Every genotype is one `nas-retrain` run under the config (its budget), in RUNS/<name>/seed<k>; a run
that is cut short resumes, a finished one is read back, and so is every run an existing JSON already
records (so a larger `--reseed` or `--seeds` trains only the new runs). The first `--reseed` genotypes
are trained again with seeds 1 ... `--seeds`-1: the seed-to-seed Kendall tau of standalone training
(the mean over pairs of seeds) is the ceiling any proxy of one training run (a supernet, a parameter
count) can reach. `--jobs` runs that many trainings at once, one thread each.
The JSON is a list of {name, genotype, accuracy (the mean over its seeds), accuracies (seed -> test
accuracy), params, macs}.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from ranking import seed_ceiling

from retrain.train import RetrainConfig, retrain
from search.proxies import concat_width
from supernet import zoo
from supernet.runtime.config import from_dict, read_yaml
from supernet.runtime.files import write_json
from supernet.space import get_space


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", type=Path, required=True, help="nas-retrain config: the training budget")
    p.add_argument("--space", default="nasnet")
    p.add_argument("--sample", type=int, default=24, help="random genotypes of the space")
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--min-width", type=int, default=0,
                   help="keep only the draws whose two cells concatenate at least this many states")
    p.add_argument("--zoo", nargs="*", default=[], help="zoo cells to add")
    p.add_argument("--reseed", type=int, default=8, help="genotypes trained with more seeds than seed 0")
    p.add_argument("--seeds", type=int, default=2, help="seeds of each of those genotypes")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--runs", type=Path, default=Path("runs/ground_truth"), help="where the training runs go")
    p.add_argument("--json", type=Path, required=True)
    args = p.parse_args(argv)
    if args.seeds < 1 or args.reseed < 0:
        p.error(f"--seeds must be at least 1 and --reseed at least 0, got {args.seeds} and {args.reseed}")
    return args


def genotypes(space_name: str, sample: int, sample_seed: int, zoo_cells, min_width: int = 0) -> dict:
    """name -> genotype: `sample` seeded draws of the space, of those whose cells concatenate at least
    `min_width` states (the uniform draw conditioned on width: the wide cells that searches find,
    say), then the zoo cells."""
    space, rng = get_space(space_name), np.random.default_rng(sample_seed)
    draws = (space.sample(rng) for _ in itertools.count())
    kept = (g for g in draws if concat_width(g) >= min_width)
    named = {f"{space_name}_{sample_seed}_{i:02d}": g for i, g in zip(range(sample), kept)}
    return {**named, **{name: zoo.get(name) for name in zoo_cells}}


def train_one(config: Path, genotype_json: str, seed: int, out: Path) -> dict:
    """One nas-retrain run (resumed or read back if it exists); its summary."""
    import torch
    torch.set_num_threads(1)
    values = {**read_yaml(config), "genotype": genotype_json, "seed": seed}
    return retrain(from_dict(RetrainConfig, values, str(config)), out)


def recorded(path: Path, cells: dict) -> dict:
    """(name, seed) -> {test_acc, params, macs} of the runs an existing ground-truth JSON holds for
    these very genotypes."""
    if not path.exists():
        return {}
    return {(r["name"], int(seed)): {"test_acc": acc, "params": r["params"], "macs": r["macs"]}
            for r in json.loads(path.read_text())
            if r["name"] in cells and r["genotype"] == cells[r["name"]].to_dict()
            for seed, acc in r["accuracies"].items()}


def main(argv=None):
    args = parse_args(argv)
    cells = genotypes(args.space, args.sample, args.sample_seed, args.zoo, args.min_width)
    reseeded = list(cells)[:args.reseed]
    jobs = [(name, 0) for name in cells] + [(name, seed) for seed in range(1, args.seeds) for name in reseeded]
    results = recorded(args.json, cells)
    todo = [job for job in jobs if job not in results]
    print(f"{len(jobs) - len(todo)} of {len(jobs)} runs recorded in {args.json}; training {len(todo)}", flush=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        futures = {job: pool.submit(train_one, args.config, cells[job[0]].to_json(), job[1],
                                    args.runs / job[0] / f"seed{job[1]}") for job in todo}
        for k, (job, future) in enumerate(futures.items()):
            results[job] = future.result()
            print(f"{k + 1}/{len(todo)} {job[0]} seed {job[1]}: test accuracy {results[job]['test_acc']:.4f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    records = []
    for name, g in cells.items():
        accuracies = {str(seed): results[name, seed]["test_acc"] for n, seed in jobs if n == name}
        records.append({"name": name, "genotype": g.to_dict(), "accuracy": float(np.mean(list(accuracies.values()))),
                        "accuracies": accuracies, "params": results[name, 0]["params"],
                        "macs": results[name, 0]["macs"]})
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.json, records)
    accs = [r["accuracy"] for r in records]
    print(json.dumps({"count": len(records), "accuracy_min": min(accs), "accuracy_max": max(accs),
                      "accuracy_mean": float(np.mean(accs)),
                      "seed_to_seed": seed_ceiling(records), "wall_time_s": round(time.perf_counter() - start),
                      "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
