"""Supernet cost against the fixed network it stands for, measured side by side.

single_path.time_ratio: a supernet training step on the single path of g over a
step of the standalone `subnet(g)` (same batch, same loss, same optimizer),
averaged over several genotypes; steps of the two alternate so drift hits both.
single_path.activation_memory_ratio: bytes autograd saves for backward in the
two steps (saved_tensors_hooks), plus peak allocated memory above the model
footprint on CUDA. single_path.steps_per_s and images_per_s: the supernet's training steps
(median). --amp bf16 and --channels-last apply to both sides. relaxed.dense_vs_sparse_time_ratio: a relaxed step with
dense softmax weights over one with one-hot weights.

memory: what a training step of the recipe (op BN, path dropout) keeps for backward at the sizes of the
configs (MEMORY_CONFIGS), at its first step (the dense mixture), mid-thinning (each choice kept with
probability 0.5, a quarter of the way through the recipe's steps) and on a single path, as its ops run
and checkpointed (supernet.runtime.memory): measured term by term on two images and scaled to the
config's batch (activations grow linearly with it), which holds sizes this machine could not run; the
first config's dense step is also measured whole, to check that scaling. On CUDA, the peak allocated
memory of each full step that fits. memory.checkpointed_dense_time_ratio: a dense step with its ops
checkpointed over the plain one.

    python tools/bench_supernet.py --json bench_supernet.json [--memory]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import platform
import time

import torch
import torch.nn.functional as F

from supernet.model import SuperNet
from supernet.runtime.memory import GB, OVERHEAD, PROBE_IMAGES, MemoryPlan, kept_terms, saved_bytes
from supernet.runtime.precision import mixed_precision
from supernet.space import get_space
from supernet.train import sample_paths

# name: (C, layers, image size, batch) of the NASNet-space supernet of a config
MEMORY_CONFIGS = {
    "cifar10_5k_supernet (5,085 photos, 32 px)": (8, 5, 32, 64),
    "own photos at 64 px (cifar10_5k_supernet image_size=64)": (8, 5, 64, 64),
    "cifar10_supernet (CIFAR-10, the GPU config)": (16, 8, 32, 64),
}


def peak_bytes(step, device) -> int | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - base


def timed(step, device, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t)
    return out


def train_step(model, x, y, autocast=contextlib.nullcontext, **forward_kwargs):
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = F.cross_entropy(model(x, **forward_kwargs).float(), y)
        loss.backward()
        opt.step()
    return step


def median(v):
    return sorted(v)[len(v) // 2]


def memory_figures(device, autocast, repeats: int) -> dict:
    """The memory section (see the module docstring)."""
    figures = {}
    for k, (name, (C, layers, size, batch)) in enumerate(MEMORY_CONFIGS.items()):
        torch.manual_seed(0)
        net = SuperNet(get_space("nasnet"), C=C, layers=layers, num_classes=10, op_bn=True).to(device).train()
        plan = MemoryPlan(net, torch.randn(PROBE_IMAGES, 3, size, size, device=device), batch, 1, 0, autocast)
        paths = {"dense": plan.dense,
                 "mid_thinning": kept_terms(sample_paths(net.space, 0, 0, "dropout", keep=0.5)[0]["weights"]),
                 "single_path": plan.kept({"arch": net.space.sample(0)})}
        row = {"C": C, "layers": layers, "image_size": size, "batch": batch}
        for path, kept in paths.items():
            for checkpoint in (False, True):
                row[f"{path}{'_checkpointed' if checkpoint else ''}_gb"] = plan.estimate(kept, checkpoint) / OVERHEAD / GB
        if k == 0:   # the scaling checked: the whole dense step of the first config
            row["dense_measured_whole_gb"], figures["checkpointed_dense_time_ratio"] = whole_dense_step(
                net, size, batch, device, autocast, repeats)
        if device.type == "cuda":
            x, y = torch.randn(batch, 3, size, size, device=device), torch.randint(0, 10, (batch,), device=device)
            for path, checkpoint in (("dense", False), ("dense", True), ("single_path", False)):
                weights = [torch.ones(d.num_choices, device=device) for d in net.space.decisions]
                forward = {"weights": weights} if path == "dense" else {"arch": net.space.sample(0)}
                try:
                    peak = peak_bytes(train_step(net, x, y, autocast, checkpoint=checkpoint, **forward), device)
                except torch.OutOfMemoryError:
                    peak = None
                    torch.cuda.empty_cache()
                row[f"{path}{'_checkpointed' if checkpoint else ''}_peak_gb"] = peak and peak / GB
        figures[name] = row
    return figures


def whole_dense_step(net, size: int, batch: int, device, autocast, repeats: int) -> tuple[float, float]:
    """(GB a dense step of the whole batch keeps for backward, measured; the time of a dense step with
    its ops checkpointed over the plain one's, on 8 images)."""
    x, y = torch.randn(batch, 3, size, size, device=device), torch.randint(0, 10, (batch,), device=device)
    dense = [torch.ones(d.num_choices, device=device) for d in net.space.decisions]
    whole = saved_bytes(lambda: net(x, weights=dense)) / GB
    steps = [train_step(net, x[:8], y[:8], autocast, weights=dense, checkpoint=c) for c in (False, True)]
    times = [[], []]
    for _ in range(repeats):
        for i, step in enumerate(steps):
            times[i] += timed(step, device, 1)
    return whole, median(times[1]) / median(times[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True, help="where to write the figures")
    ap.add_argument("--space", default="nasnet")
    ap.add_argument("--C", type=int, default=16)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--genotypes", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--amp", choices=("off", "bf16"), default="off", help="bf16 autocast for both steps")
    ap.add_argument("--channels-last", action="store_true", help="channels_last memory format for both")
    ap.add_argument("--memory", action="store_true", help="also the memory section, at the configs' sizes")
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    torch.manual_seed(0)
    space = get_space(args.space)
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    autocast = mixed_precision(args.amp, device)[0]
    net = SuperNet(space, C=args.C, layers=args.layers, num_classes=10).to(device, memory_format=memory_format).train()
    x = torch.randn(args.batch, 3, args.size, args.size, device=device).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (args.batch,), device=device)

    per_genotype = []
    for seed in range(args.genotypes):
        g = space.sample(seed)
        sub = net.subnet(g).train().to(memory_format=memory_format)
        super_step, sub_step = train_step(net, x, y, autocast, arch=g), train_step(sub, x, y, autocast)
        super_step(), sub_step()  # warm up
        t_super, t_sub = [], []
        for _ in range(args.repeats):  # alternate so that drift hits both
            t_super += timed(super_step, device, 1)
            t_sub += timed(sub_step, device, 1)
        per_genotype.append({
            "genotype": g.to_dict(),
            "supernet_step_s": median(t_super), "subnet_step_s": median(t_sub),
            "supernet_saved_bytes": saved_bytes(super_step), "subnet_saved_bytes": saved_bytes(sub_step),
            "supernet_peak_bytes": peak_bytes(super_step, device), "subnet_peak_bytes": peak_bytes(sub_step, device),
        })

    def ratio(key_a, key_b):
        return sum(r[key_a] / r[key_b] for r in per_genotype) / len(per_genotype)

    step_s = median([r["supernet_step_s"] for r in per_genotype])
    single = {
        "steps_per_s": 1 / step_s, "images_per_s": args.batch / step_s,
        "time_ratio": ratio("supernet_step_s", "subnet_step_s"),
        "activation_memory_ratio": ratio("supernet_saved_bytes", "subnet_saved_bytes"),
        "per_genotype": per_genotype,
    }
    if device.type == "cuda":
        single["peak_memory_ratio"] = ratio("supernet_peak_bytes", "subnet_peak_bytes")

    dense = [torch.softmax(torch.randn(d.num_choices, device=device), 0) for d in space.decisions]
    one_hot = [F.one_hot(torch.tensor(v), d.num_choices).float().to(device)
               for v, d in zip(space.encode(space.sample(0)), space.decisions)]
    dense_step, sparse_step = (train_step(net, x, y, autocast, weights=dense),
                               train_step(net, x, y, autocast, weights=one_hot))
    dense_step(), sparse_step()
    t_dense, t_sparse = [], []
    for _ in range(max(3, args.repeats // 2)):
        t_dense += timed(dense_step, device, 1)
        t_sparse += timed(sparse_step, device, 1)
    relaxed = {"dense_step_s": median(t_dense), "one_hot_step_s": median(t_sparse),
               "dense_vs_sparse_time_ratio": median(t_dense) / median(t_sparse)}

    result = {
        "setup": {**vars(args), "device": str(device), "torch": torch.__version__, "machine": platform.machine(),
                  "threads": torch.get_num_threads(),
                  "supernet_params": sum(p.numel() for p in net.parameters())},
        "single_path": single, "relaxed": relaxed,
        "memory": memory_figures(device, autocast, max(3, args.repeats // 2)) if args.memory else None,
    }
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({"single_path.images_per_s": single["images_per_s"],
                      "single_path.time_ratio": single["time_ratio"],
                      "single_path.activation_memory_ratio": single["activation_memory_ratio"],
                      "relaxed.dense_vs_sparse_time_ratio": relaxed["dense_vs_sparse_time_ratio"],
                      "memory": result["memory"]}, indent=2))


if __name__ == "__main__":
    main()
