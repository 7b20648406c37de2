"""Retraining speed, measured side by side in one run.

nasnet_a_vs_timm.time_ratio: forward time (eval, no grad) of our NASNet-A Large, built from the
zoo genotype in the NASNet convention, over timm's hand-written `nasnetalarge`, on the same
input; the two alternate so drift hits both (goal: at most 1.0).
cifar_train: training images/s (from the median step time, the variants
taking turns) of the DARTS V2 CIFAR-10 network (36 channels, 20 cells, auxiliary head,
drop-path) in eager mode and with channels_last, each also (with --compile, or on CUDA) under
torch.compile and (with --amp, or on CUDA) under bf16 autocast.

    python tools/bench_retrain.py --json bench_retrain.json
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import timm
import torch
import torch.nn.functional as F

from retrain.spec import NetSpec
from supernet import zoo
from supernet.runtime.precision import mixed_precision


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def seconds(fn, device) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def median(v):
    return sorted(v)[len(v) // 2]


def nasnet_vs_timm(device, batch: int, size: int, repeats: int) -> dict:
    ours = NetSpec(zoo.get("nasnet_a"), 168, 20, 1000, size, convention="nasnet",
                   skip_reduction_input=True).build().to(device).eval()
    ref = timm.create_model("nasnetalarge").to(device).eval()
    x = torch.randn(batch, 3, size, size, device=device)
    times = {"ours": [], "timm": []}
    with torch.no_grad():
        for model in (ours, ref):   # warm-up
            model(x)
        for _ in range(repeats):
            for name, model in (("ours", ours), ("timm", ref)):
                times[name].append(seconds(lambda m=model: m(x), device))
    ours_s, timm_s = median(times["ours"]), median(times["timm"])
    return {"batch": batch, "image_size": size, "ours_s": round(ours_s, 4), "timm_s": round(timm_s, 4),
            "time_ratio": round(ours_s / timm_s, 4)}


def train_step(device, batch: int, channels_last: bool, compile_: bool, amp: bool = False):
    """One DARTS-protocol training step of the CIFAR network (bf16 autocast with `amp`), as a closure."""
    torch.manual_seed(0)
    net = NetSpec(zoo.get("darts_v2"), 36, 20, 10, 32).build(auxiliary=True, drop_path=0.2).to(device).train()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    net.to(memory_format=memory_format)
    model = torch.compile(net) if compile_ else net
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)
    x = torch.randn(batch, 3, 32, 32, device=device).contiguous(memory_format=memory_format)
    y = torch.randint(10, (batch,), device=device)

    autocast = mixed_precision("bf16" if amp else "off", device)[0]

    def step():
        with autocast():
            logits, aux = model(x)
            loss = F.cross_entropy(logits.float(), y) + 0.4 * F.cross_entropy(aux.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
    return step


def train_images_per_s(device, batch: int, steps: int, variants: dict) -> dict:
    """Images/s of each variant from the median step time; the variants take turns step by step."""
    stepfns = {name: train_step(device, batch, *flags) for name, flags in variants.items()}
    for step in stepfns.values():   # warm-up (and compilation)
        step()
    times = {name: [] for name in stepfns}
    for _ in range(steps):
        for name, step in stepfns.items():
            times[name].append(seconds(step, device))
    return {f"{name}_img_s": round(batch / median(t), 1) for name, t in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", required=True, help="where to write the figures")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, help="CIFAR training batch (default: 96 on CUDA, 32 on CPU)")
    ap.add_argument("--steps", type=int, help="timed training steps per variant (default: 20 on CUDA, 5 on CPU)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (always on CUDA)")
    ap.add_argument("--amp", action="store_true", help="also time bf16 autocast (always on CUDA)")
    ap.add_argument("--no-nasnet", action="store_true", help="skip the NASNet-A Large forward comparison")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    batch, steps = args.batch or (96 if cuda else 32), args.steps or (20 if cuda else 5)
    compiles, amps = (False, True) if cuda or args.compile else (False,), (False, True) if cuda or args.amp else (False,)
    variants = {"_".join(name for name, on in (("channels_last", cl), ("compile", co), ("amp", am)) if on) or "eager":
                (cl, co, am) for am in amps for co in compiles for cl in (False, True)}
    results = {
        "device": torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu",
        "threads": torch.get_num_threads(), "torch": torch.__version__, "timm": timm.__version__,
        "nasnet_a_vs_timm": None if args.no_nasnet else nasnet_vs_timm(device, 8 if cuda else 1, 331, args.repeats),
        "cifar_train": {"batch": batch, "steps": steps, **train_images_per_s(device, batch, steps, variants)},
    }
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
