"""How well the shared-weight score ranks architectures: Kendall tau against short standalone training.

A sample of `--count` random genotypes of the supernet's space is scored by the
search's evaluator (inherited weights, BN recalibrated, validation accuracy);
each is then trained from scratch as a fixed network of the supernet's size for
`--epochs` epochs (SGD, cosine schedule, timm's factories) and its validation
accuracy measured on the same images. The report gives Kendall's tau between
the two (scipy.stats.kendalltau), the count and the training budget.

    python tools/ranking.py --supernet runs/digits --count 12 --epochs 5 --json ranking.json
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import kendalltau
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2

from search.cli import build_evaluator, loaders, supernet_settings
from search.config import SearchConfig
from search.evaluator import accuracy
from supernet.network import Network
from supernet.runtime.checkpoint import load_supernet
from supernet.runtime.data import set_epoch


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--supernet", required=True, help="supernet-train run directory")
    p.add_argument("--json", required=True, help="file to write the results to")
    p.add_argument("--count", type=int, default=12, help="architectures in the sample")
    p.add_argument("--epochs", type=int, default=5, help="standalone training epochs per architecture")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--calibration-batches", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def train_standalone(genotype, shape: dict, data, epochs: int, lr: float, seed: int):
    """The fixed network of `genotype` trained from scratch (in eval mode), and its number of steps."""
    torch.manual_seed(seed)
    net = Network(genotype, shape["C"], shape["layers"], shape["num_classes"], stem=shape["stem"],
                  in_channels=shape["in_channels"])
    opt = create_optimizer_v2(net, opt="momentum", lr=lr, momentum=0.9, weight_decay=3e-4)
    sched, _ = create_scheduler_v2(opt, sched="cosine", num_epochs=epochs, step_on_epochs=False,
                                   updates_per_epoch=len(data.train))
    step = 0
    for epoch in range(epochs):
        set_epoch(data.train, epoch)
        net.train()
        for x, y in data.train:
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            step += 1
            sched.step_update(step)
    net.eval()
    return net, step


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    cfg = SearchConfig(supernet=args.supernet, batch_size=args.batch_size,
                       calibration_batches=args.calibration_batches, seed=args.seed)
    trained = supernet_settings(args.supernet)
    supernet = load_supernet(args.supernet).eval()
    data = loaders(cfg, trained)
    evaluator = build_evaluator(cfg, supernet, data, torch.device("cpu"))
    rng = np.random.default_rng(args.seed)
    genotypes = [supernet.space.sample(rng) for _ in range(args.count)]
    shared, standalone, steps = [], [], 0
    for k, g in enumerate(genotypes):
        shared.append(evaluator.score(g))
        net, steps = train_standalone(g, supernet.config, data, args.epochs, args.lr, args.seed + k)
        standalone.append(accuracy(net, evaluator.validation))
        print(f"{k + 1}/{args.count}: shared-weight {shared[-1]:.4f}, standalone {standalone[-1]:.4f}", flush=True)
    tau, p_value = kendalltau(shared, standalone)
    result = {
        "kendall_tau": float(tau), "p_value": float(p_value), "count": args.count,
        "standalone_budget": {"epochs": args.epochs, "steps": steps, "batch_size": args.batch_size, "lr": args.lr},
        "supernet": args.supernet, "validation_images": sum(len(y) for _, y in evaluator.validation),
        "shared_weight_accuracy": shared, "standalone_accuracy": standalone,
        "genotypes": [g.to_dict() for g in genotypes], "wall_time_s": round(time.perf_counter() - start, 1),
    }
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: result[k] for k in ("kendall_tau", "p_value", "count", "standalone_budget")}))


if __name__ == "__main__":
    main()
