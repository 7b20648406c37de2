"""Supernet training within a memory budget: checkpointed ops learn what plain ones do, the plan runs
each step the quickest way that fits, and a budget nothing fits stops the run before it starts."""
import copy
import os

import pytest
import torch
import torch.nn.functional as F

import supernet.train as train_module
from supernet.model import build_supernet
from supernet.runtime.checkpoint import load_checkpoint
from supernet.runtime.memory import (
    GB,
    OVERHEAD,
    MemoryBudgetError,
    MemoryPlan,
    StepPlan,
    available_bytes,
    kept_terms,
    saved_bytes,
)
from supernet.train import main, sample_paths

TINY = ["space=darts", "C=4", "layers=3", "epochs=1", "batch_size=32", "workers=0", "val_fraction=0.2",
        "eval_subnets=1", "eval_batches=1", "max_steps=6", "scoring.finetune_steps=2"]


@pytest.mark.skipif(not os.path.exists("/proc/meminfo"), reason="Linux's MemAvailable")
def test_the_default_budget_counts_the_page_cache_the_system_can_drop():
    """Available memory is at least the free pages (with room for what other processes take meanwhile)."""
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert available_bytes() >= free - 0.1 * GB


def test_a_checkpointed_step_has_the_gradients_and_batch_norm_statistics_of_the_plain_one():
    """The recomputation in backward leaves the running statistics as the forward left them."""
    torch.manual_seed(0)
    net = build_supernet("nasnet", 4, 3, 10, op_bn=True)
    x, y = torch.randn(4, 3, 16, 16), torch.randint(10, (4,))
    (path,) = sample_paths(net.space, 0, 0, "dropout", keep=0.7)
    grads, buffers = [], []
    for checkpoint in (False, True):
        copied = copy.deepcopy(net)
        F.cross_entropy(copied(x, weights=path["weights"], checkpoint=checkpoint), y).backward()
        grads.append([p.grad for p in copied.parameters()])
        buffers.append(list(copied.buffers()))
    assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(*grads))
    assert all(torch.equal(a, b) for a, b in zip(*buffers))
    assert any(not torch.equal(a, b) for a, b in zip(buffers[0], net.buffers()))   # the step did update them
    kept = [saved_bytes(lambda c=c: net(x, weights=path["weights"], checkpoint=c)) for c in (False, True)]
    assert kept[1] < kept[0] / 5


@pytest.mark.parametrize("space_name, shape", [("darts", (1, 8, 8)), ("nasnet", (3, 16, 16))])
def test_the_estimate_is_the_rest_and_the_terms_a_path_runs(space_name, shape):
    """Against the bytes each path keeps, measured: exact for the dense mixture, never below for others
    (a sparse path leaves unread some cell states that the estimate counts), and close above them where
    the ops run as they are (with their ops checkpointed, sparse paths are cheap whatever the estimate)."""
    torch.manual_seed(0)
    net = build_supernet(space_name, 4, 3, 10, in_channels=shape[0], op_bn=True)
    images = torch.randn(2, *shape)
    plan = MemoryPlan(net, images, 2, 1, 10 * GB)
    for keep in (0.0, 0.3, 0.7, 1.0):
        (path,) = sample_paths(net.space, 0, 5, "dropout", keep=keep)
        for checkpoint in (False, True):
            kept = saved_bytes(lambda c=checkpoint, w=path["weights"]: net(images, weights=w, checkpoint=c))
            estimate = plan.estimate(kept_terms(path["weights"]), checkpoint) / OVERHEAD
            assert kept <= estimate, (keep, checkpoint)
            if not checkpoint:
                assert estimate <= 1.25 * kept and (keep < 1.0 or estimate == pytest.approx(kept)), keep


def test_each_step_runs_the_quickest_way_that_fits():
    torch.manual_seed(0)
    plan = MemoryPlan(build_supernet("darts", 4, 3, 10, in_channels=1), torch.randn(2, 1, 8, 8), 32, 1, 10 * GB)
    plain, checkpointed = (plan.estimate(plan.dense, c) for c in (False, True))
    assert checkpointed < plain / 3
    for budget, expected in ((plain * 1.01, StepPlan(False, 1)), (plain * 0.99, StepPlan(True, 1)),
                             (checkpointed * 0.3, StepPlan(True, 4))):
        plan.budget = budget
        assert plan.plan(plan.dense) == expected
    plan.budget = checkpointed / 40   # below one image of the 32
    with pytest.raises(MemoryBudgetError, match="lower batch_size, image_size or C, or raise memory_budget"):
        plan.plan(plan.dense)


def test_a_run_under_a_budget_that_checkpoints_its_dense_steps_learns_the_same_weights(tmp_path, caplog):
    caplog.set_level("INFO")
    main(["--out", str(tmp_path / "free"), *TINY])
    free = load_checkpoint(tmp_path / "free")
    line = next(r.message for r in caplog.records if "memory: the costliest step takes about" in r.message)
    plain = float(line.split("about ")[1].split(" GB")[0])
    main(["--out", str(tmp_path / "tight"), *TINY, f"memory_budget={plain / 2}"])
    assert "ops checkpointed" in caplog.text
    tight = load_checkpoint(tmp_path / "tight")
    weights = [k for k in free["model"] if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert all(torch.equal(free["model"][k], tight["model"][k]) for k in weights)


def test_a_budget_too_small_for_any_split_stops_at_once_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path / "run"), *TINY, "memory_budget=0.000001"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "raise memory_budget" in err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.yaml"]


def test_out_of_memory_is_one_line_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    real_step = train_module.Trainer.train_step

    def failing(self, *args):
        if self.step == 5:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(self, *args)

    monkeypatch.setattr(train_module.Trainer, "train_step", failing)
    with pytest.raises(SystemExit) as e:
        main(["--out", str(tmp_path), *TINY, "checkpoint_every=2", "max_steps=8"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: the GPU ran out of memory at step 5") and "memory_budget" in err
    assert load_checkpoint(tmp_path)["step"] == 4 and not (tmp_path / "supernet.json").exists()

