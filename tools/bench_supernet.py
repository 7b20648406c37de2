"""Supernet cost against the fixed network it stands for, measured side by side.

single_path.time_ratio: a supernet training step on the single path of g over a
step of the standalone `subnet(g)` (same batch, same loss, same optimizer),
averaged over several genotypes; steps of the two alternate so drift hits both.
single_path.activation_memory_ratio: bytes autograd saves for backward in the
two steps (saved_tensors_hooks), plus peak allocated memory above the model
footprint on CUDA. single_path.steps_per_s and images_per_s: the supernet's training steps
(median). --amp bf16 and --channels-last apply to both sides. relaxed.dense_vs_sparse_time_ratio: a relaxed step with
dense softmax weights over one with one-hot weights.

    python tools/bench_supernet.py --json bench_supernet.json
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
from supernet.runtime.precision import mixed_precision
from supernet.space import get_space


def saved_bytes(step) -> int:
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    return total


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
    }
    with open(args.json, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({"single_path.images_per_s": single["images_per_s"],
                      "single_path.time_ratio": single["time_ratio"],
                      "single_path.activation_memory_ratio": single["activation_memory_ratio"],
                      "relaxed.dense_vs_sparse_time_ratio": relaxed["dense_vs_sparse_time_ratio"]}, indent=2))


if __name__ == "__main__":
    main()
