"""Step time and peak memory of the relaxations, side by side on one supernet and one batch.

Modes (a forward + backward of a training step; the optimizer update is left out
since it does not depend on the relaxation):
- single_path: `net(x, arch=g)`, g the genotype GDAS would sample at that step;
- gdas: hard Gumbel-softmax weights (one sample per decision, straight-through);
- darts: softmax weights, every term computed;
- entmax: 1.5-entmax weights after they have sparsified. Its logits are drawn
  N(0, entmax_std^2) per choice (seeded), the margins a trained search reaches;
  the sparsity reached and the terms run per block are reported.

Memory: on CUDA, torch.cuda.max_memory_allocated over the step minus what was
allocated before it; on CPU, the bytes of the distinct activation storages saved
for backward (torch.autograd.graph.saved_tensors_hooks; parameters excluded).
Modes are interleaved step by step and the median step time is reported.

    python tools/bench_relax.py --json bench_relax.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from search.relaxations import ArchParams, RelaxOptions, gumbel_noise, sparsity
from supernet.model import SuperNet
from supernet.space import get_space

MODES = ("single_path", "gdas", "darts", "entmax")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", required=True, help="file to write the results to")
    p.add_argument("--space", default="nasnet", choices=("nasnet", "darts"))
    p.add_argument("--C", type=int, default=8)
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=16, help="input image side")
    p.add_argument("--steps", type=int, default=5, help="timed steps per mode (after one warm-up step)")
    p.add_argument("--entmax-std", type=float, default=2.0, help="std of the sparsified entmax logits")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


class SavedActivations:
    """Bytes of the distinct non-parameter storages that autograd saves for backward."""

    def __init__(self, params):
        self.skip = {p.untyped_storage().data_ptr() for p in params}
        self.storages: dict[int, int] = {}

    def pack(self, t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in self.skip:
            self.storages[storage.data_ptr()] = storage.nbytes()
        return t

    @property
    def bytes(self) -> int:
        return sum(self.storages.values())


def terms_per_block(space, weights) -> float:
    """Mean number of (input, op) terms with nonzero weight p_a q_a + p_b q_b per block."""
    counts = [int(((torch.outer(weights[i], weights[i + 1]) + torch.outer(weights[i + 2], weights[i + 3])) != 0).sum())
              for i in range(0, len(weights), 4)]
    return sum(counts) / len(counts)


def timed_step(net, x, y, forward, device) -> tuple[float, int]:
    """Seconds and peak bytes of one forward + backward."""
    net.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    saved = SavedActivations(net.parameters())
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(saved.pack, lambda t: t):
        loss = F.cross_entropy(forward(), y)
    loss.backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter() - start, torch.cuda.max_memory_allocated() - base
    return time.perf_counter() - start, saved.bytes


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    space = get_space(args.space)
    torch.manual_seed(args.seed)
    net = SuperNet(space, C=args.C, layers=args.layers).to(device).train()
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)

    near_uniform = ArchParams(space, seed=args.seed).to(device)
    sparse = ArchParams(space, seed=args.seed).to(device)
    with torch.no_grad():
        gen = torch.Generator(device=device).manual_seed(args.seed + 1)
        for p in sparse.logits:
            p.normal_(0, args.entmax_std, generator=gen)
    # The same seed for both, so single_path runs the very genotypes GDAS samples.
    gdas_gen = torch.Generator(device=device).manual_seed(args.seed)
    path_gen = torch.Generator(device=device).manual_seed(args.seed)

    def single_path():
        with torch.no_grad():
            g = space.decode([int((p.log_softmax(-1) + gumbel_noise(p, path_gen)).argmax()) for p in near_uniform.logits])
        return lambda: net(x, arch=g)

    forwards = {
        "single_path": single_path,
        "gdas": lambda: lambda: net(x, weights=near_uniform.weights("gdas", RelaxOptions(generator=gdas_gen))),
        "darts": lambda: lambda: net(x, weights=near_uniform.weights("darts")),
        "entmax": lambda: lambda: net(x, weights=sparse.weights("entmax")),
    }
    times = {m: [] for m in MODES}
    memory = {m: 0 for m in MODES}
    for step in range(args.steps + 1):
        for mode in MODES:
            seconds, peak = timed_step(net, x, y, forwards[mode](), device)
            if step:  # the first round warms up
                times[mode].append(seconds)
                memory[mode] = max(memory[mode], peak)

    entmax_weights = sparse.distribution("entmax")
    dense_weights = near_uniform.distribution("darts")
    modes = {m: {"step_ms": 1e3 * statistics.median(times[m]), "peak_bytes": memory[m]} for m in MODES}
    modes["single_path"]["terms_per_block"] = modes["gdas"]["terms_per_block"] = 2.0
    modes["darts"]["terms_per_block"] = terms_per_block(space, dense_weights)
    modes["entmax"]["terms_per_block"] = terms_per_block(space, entmax_weights)
    modes["entmax"]["sparsity"] = sparsity(entmax_weights)

    def ratio(a, b, goal):
        return {"time_ratio": modes[a]["step_ms"] / modes[b]["step_ms"],
                "memory_ratio": modes[a]["peak_bytes"] / modes[b]["peak_bytes"], "goal_time_ratio": goal}

    result = {
        "command": " ".join(["python", "tools/bench_relax.py", *(argv if argv is not None else sys.argv[1:])]),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch_threads": torch.get_num_threads(),
        "memory": "cuda max_memory_allocated" if device.type == "cuda" else "saved activation bytes",
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        "modes": modes,
        "gdas_vs_single_path": ratio("gdas", "single_path", 1.2),
        "entmax_vs_darts": {**ratio("entmax", "darts", 0.4), "entmax_sparsity": modes["entmax"]["sparsity"]},
    }
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: result[k] for k in ("gdas_vs_single_path", "entmax_vs_darts")}, indent=2))


if __name__ == "__main__":
    main()
