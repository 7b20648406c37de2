"""Cost of scoring a candidate with the shared-weight evaluator, against the compute it must do.

For each of `--genotypes` random genotypes, interleaved:
- evaluation: `Evaluator.record(g)` uncached, as the search scores (supernet.scoring): subnet
  selection (`supernet.subnet(g)`), `--finetune-steps` SGD steps, BN recalibration on the
  calibration batches, the validation metrics;
- plain compute: the same work on `subnet(g)` built beforehand: as many plain SGD steps
  (forward, loss, backward, step) on the same batches, then forwards without gradients over the
  same calibration (train mode) and validation (eval mode) images.
eval_overhead_ratio is the median of evaluation time / plain compute time (goal
<= 1.2); evaluations_per_s is 1 / the median evaluation time. The supernet is
an untrained one of the given size (timing does not depend on its weights),
and the images are digits (8x8) or, with `--dataset fake`, random ones of `--image-size`.

    python tools/bench_search.py --json bench_search.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from search.evaluator import Evaluator
from supernet.model import SuperNet
from supernet.runtime.data import make_loaders, set_epoch, take_batches
from supernet.scoring import DEFAULT_SCORING, Scoring
from supernet.space import get_space


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True, help="file to write the results to")
    p.add_argument("--space", default="nasnet", choices=("nasnet", "darts"))
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--calibration-batches", type=int, default=5)
    p.add_argument("--eval-batches", type=int, default=None, help="validation batches (default: all 359 images)")
    p.add_argument("--finetune-steps", type=int, default=DEFAULT_SCORING.finetune_steps,
                   help="the scoring's fine-tuning steps (default: the search's)")
    p.add_argument("--genotypes", type=int, default=8)
    p.add_argument("--dataset", choices=("digits", "fake"), default="digits",
                   help="fake: random 3-channel images of --image-size")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def plain_compute(net, train, steps, validation) -> None:
    """`steps` plain SGD steps on `train` (cycled), then forwards without gradients: train mode over
    `train`, eval mode over `validation`."""
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    net.train()
    for step in range(steps):
        x, y = train[step % len(train)]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()
    with torch.no_grad():
        for x, _ in train:
            net(x)
        net.eval()
        for x, _ in validation:
            net(x)


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    space = get_space(args.space)
    data = make_loaders(args.dataset, "data", args.batch_size, val_fraction=0.2, workers=0,
                        image_size=args.image_size if args.dataset == "fake" else None)
    set_epoch(data.train, 0)
    calibration = take_batches(data.train, args.calibration_batches, device)
    validation = take_batches(data.val, args.eval_batches, device)
    net = SuperNet(space, C=args.C, layers=args.layers, num_classes=data.num_classes,
                   in_channels=data.in_channels).to(device).eval()
    scoring = Scoring(calibration_batches=args.calibration_batches, finetune_steps=args.finetune_steps)
    evaluator = Evaluator([net], calibration, validation, scoring=scoring)
    genotypes = [space.sample(args.seed + k) for k in range(args.genotypes + 1)]
    evaluator.record(genotypes[-1])     # warm-up
    evals, plains, ratios = [], [], []
    for g in genotypes[:-1]:
        plain_compute(net.subnet(g), calibration[:1], 1, calibration[:1])   # warm-up of this subnet's kernels
        t_plain = timed(plain_compute, net.subnet(g), calibration, args.finetune_steps, validation)
        t_eval = timed(evaluator.record, g)
        evals.append(t_eval)
        plains.append(t_plain)
        ratios.append(t_eval / t_plain)
    result = {
        "space": args.space, "C": args.C, "layers": args.layers, "device": str(device),
        "threads": torch.get_num_threads(), "genotypes": args.genotypes, "finetune_steps": args.finetune_steps,
        "calibration_images": sum(len(y) for _, y in calibration),
        "validation_images": sum(len(y) for _, y in validation),
        "evaluations_per_s": round(1 / statistics.median(evals), 3),
        "median_evaluation_s": round(statistics.median(evals), 4),
        "median_plain_compute_s": round(statistics.median(plains), 4),
        "eval_overhead_ratio": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
    }
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "ratios"}))


if __name__ == "__main__":
    main()
