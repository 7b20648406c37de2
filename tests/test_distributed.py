import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from supernet.model import build_supernet
from supernet.runtime.distributed import _buckets, average_gradients

ROOT = Path(__file__).resolve().parents[1]


def test_buckets_split_on_size_and_dtype():
    grads = [torch.zeros(10), torch.zeros(10), torch.zeros(30), torch.zeros(5, dtype=torch.float64), torch.zeros(2)]
    sizes = [[g.numel() for g in b] for b in _buckets(grads, bucket_bytes=80)]
    assert sizes == [[10, 10], [30], [5], [2]]


def base_grads():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(3, 4, generator=g), torch.randn(5, generator=g, dtype=torch.float64),
            torch.randn(100, generator=g)]


def _average_worker(rank, store, out):
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    params = [torch.nn.Parameter(torch.zeros_like(g)) for g in base_grads()]
    unused = torch.nn.Parameter(torch.zeros(7))
    for p, g in zip(params, base_grads()):
        p.grad = g * (rank + 1)
    average_gradients([params[0], unused, *params[1:]], bucket_bytes=64)
    torch.save({"grads": [p.grad for p in params], "unused": unused.grad}, f"{out}.{rank}")
    dist.destroy_process_group()


def test_average_gradients_over_two_gloo_processes(tmp_path):
    mp.start_processes(_average_worker, args=(str(tmp_path / "store"), str(tmp_path / "out")), nprocs=2,
                       start_method="fork")  # fork: the workers need no fresh import of torch
    for rank in range(2):
        result = torch.load(f"{tmp_path / 'out'}.{rank}", weights_only=True)
        assert result["unused"] is None
        for got, g in zip(result["grads"], base_grads()):
            torch.testing.assert_close(got, g * 1.5, rtol=0, atol=1e-6)


def run_train(out, *overrides, nproc=1):
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
                if nproc > 1 else [sys.executable])
    cmd = launcher + ["-m", "supernet.train", "--out", str(out), "space=darts", "C=4", "layers=3", "epochs=1",
                      "amp=off", "workers=0", "val_fraction=0.2", "eval_subnets=1", "eval_batches=1", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True, timeout=600)
    return torch.load(Path(out) / "checkpoint.pt", weights_only=True)


@pytest.mark.slow
def test_two_processes_reach_the_weights_of_one_with_twice_the_batch(tmp_path):
    # Batch norm normalises with per-process batch statistics, and SyncBatchNorm runs on GPUs
    # only, so 2 gloo processes of batch 16 equal one process with batch 32 in which each half is
    # normalised on its own: accum_steps=2, whose micro-batches are exactly the ranks' shares
    # (EpochSampler). Gradient averaging, identical architecture sampling on every rank, the
    # data split and the optimizer, clipping and schedule must all be right for the weights to
    # match. BN running statistics are per-process buffers, not weights, so they are not compared.
    two = run_train(tmp_path / "two", "batch_size=16", "max_steps=12", nproc=2)
    one = run_train(tmp_path / "one", "batch_size=32", "accum_steps=2", "max_steps=12")
    assert two["step"] == one["step"] == 12
    torch.manual_seed(0)
    initial = build_supernet("darts", C=4, layers=3, num_classes=10, in_channels=1, stem="cifar").state_dict()
    assert not torch.allclose(one["model"]["classifier.weight"], initial["classifier.weight"], atol=1e-3)
    for k, v in one["model"].items():
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            torch.testing.assert_close(two["model"][k], v, rtol=0, atol=1e-5, msg=k)


def run_search(out, supernet, strategy, *overrides, nproc=1):
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
                if nproc > 1 else [sys.executable])
    # arch_lr: every decision moves in 6 steps
    cmd = launcher + ["-m", "search", "--out", str(out), f"supernet={supernet}", f"strategy={strategy}",
                      "strategy_options={epochs: 1, arch_lr: 0.03}", "max_steps=6", "log_every=3", "device=cpu",
                      *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run(cmd, check=True, cwd=ROOT, env=env, capture_output=True, timeout=600)
    return torch.load(Path(out) / "checkpoint.pt", weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["gdas", "entmax"])
def test_a_relaxed_search_on_two_processes_equals_one_with_twice_the_batch(strategy, tmp_path):
    # as for supernet training: the ranks' shares of each global batch are the micro-batches of one
    # process, for the weight step's training batches and the architecture step's validation batches
    supernet = tmp_path / "supernet"
    run_train(supernet, "batch_size=32")
    two = run_search(tmp_path / "two", supernet, strategy, "batch_size=16", nproc=2)
    one = run_search(tmp_path / "one", supernet, strategy, "batch_size=32", "accum_steps=2")
    assert two["step"] == one["step"] == 6
    moved = [torch.norm(v) for v in one["arch"].values()]
    assert min(moved) > 1e-2   # the logits left their initial 1e-3 scale
    for part in ("arch", "model"):
        for k, v in one[part].items():
            if not k.endswith(("running_mean", "running_var", "num_batches_tracked")):
                torch.testing.assert_close(two[part][k], v, rtol=0, atol=1e-5, msg=f"{part} {k}")
