"""The relaxed strategies end to end through `nas-search` on digits: a valid genotype that
beats random genotypes on the supernet's shared weights, logging, and resume."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from search.cli import build_evaluator, loaders, supernet_settings
from search.cli import main as search_main
from search.config import SearchConfig
from search.relaxations import derive
from supernet.genotype import Genotype
from supernet.runtime.checkpoint import load_checkpoint, load_supernet
from supernet.runtime.metrics import read_metrics
from supernet.train import main as train_main

# the digits recipe and scoring (10 fine-tuning steps a subnet) on a small DARTS-space supernet
SUPERNET = ["--config", str(Path(__file__).parents[1] / "configs" / "digits_supernet.yaml"), "space=darts", "C=4",
            "layers=3", "batch_size=64", "val_fraction=0.2", "eval_subnets=1", "eval_batches=1", "device=cpu"]
SEARCH = ["batch_size=64", "device=cpu", "log_every=4"]
STEPS_PER_EPOCH = (1797 - 2 * 359) // 64
# On such a supernet trained for 20 epochs the searches' derived genotypes beat random ones with a
# larger architecture step than the papers'.
SEARCH_EPOCHS = {"gdas": 4, "darts": 2, "sparsemax": 2, "entmax": 2}


def train_supernet(out, epochs):
    train_main(["--out", str(out), *SUPERNET, f"epochs={epochs}"])
    return out


@pytest.fixture(scope="module")
def tiny_supernet(tmp_path_factory):
    return train_supernet(tmp_path_factory.mktemp("tiny_supernet"), 1)


@pytest.fixture(scope="module")
def trained_supernet(tmp_path_factory):
    return train_supernet(tmp_path_factory.mktemp("trained_supernet"), 20)


def search(out, supernet_dir, strategy, *overrides):
    search_main(["--out", str(out), f"supernet={supernet_dir}", f"strategy={strategy}", *SEARCH, *overrides])
    return json.loads((out / "search.json").read_text())


def supernet_evaluator(supernet_dir):
    """The search's evaluator on the supernet's own weights."""
    cfg = SearchConfig(supernet=str(supernet_dir), device="cpu")
    net = load_supernet(supernet_dir)
    trained = supernet_settings(supernet_dir)
    return build_evaluator(cfg, trained, [net.eval()], loaders(cfg, trained), torch.device("cpu"))


@pytest.mark.slow
@pytest.mark.parametrize("strategy", list(SEARCH_EPOCHS))
def test_relaxed_search_beats_random_genotypes(strategy, trained_supernet, tmp_path):
    supernet_dir, epochs = trained_supernet, SEARCH_EPOCHS[strategy]
    summary = search(tmp_path, supernet_dir, strategy, f"strategy_options.epochs={epochs}",
                     "strategy_options.arch_lr=0.01")
    genotype = Genotype.from_dict(summary["best"]["genotype"])
    space = load_supernet(supernet_dir).space
    assert space.decode(space.encode(genotype)) == genotype
    result = summary["result"]
    assert summary["strategy"] == strategy and result["finished"] and result["steps"] == epochs * STEPS_PER_EPOCH
    # scored on the supernet's weights (the scale of the discrete strategies), not on the searched copy
    evaluator = supernet_evaluator(supernet_dir)
    assert summary["best"]["reward"] == evaluator.record(genotype)["reward"]
    random_rewards = [r["reward"] for r in evaluator.evaluate([space.sample(1000 + i) for i in range(12)])]
    assert summary["best"]["reward"] > np.mean(random_rewards)

    # the final logits and weights: one vector per decision; the genotype is derived from the logits,
    # and the best is the best scored of it and each epoch's
    decisions = result["arch_weights"]["decisions"]
    assert list(decisions) == [d.name for d in space.decisions]
    assert derive(space, [torch.tensor(v) for v in result["logits"]]) == Genotype.from_dict(result["genotype"])
    candidates = [Genotype.from_dict(h["genotype"]) for h in result["history"]]
    assert candidates[-1] == Genotype.from_dict(result["genotype"]) and genotype in candidates
    assert summary["best"]["reward"] == max(r["reward"] for r in evaluator.evaluate(candidates))
    assert all(abs(sum(v["weights"]) - 1) < 1e-4 for v in decisions.values())

    # per-epoch weights, entropy and sparsity in metrics.jsonl
    logged = [r for r in read_metrics(tmp_path) if "arch/entropy" in r]
    assert [r["epoch"] for r in logged] == list(range(1, epochs + 1))
    name = space.decisions[1].name
    assert [logged[-1][f"arch_weight/{name}/{op}"] for op in space.ops] == pytest.approx(
        decisions[name]["weights"], abs=1e-6)
    assert logged[-1]["arch/sparsity"] == result["arch_weights"]["sparsity"]


def test_a_stopped_search_resumes_to_the_uninterrupted_result(tiny_supernet, tmp_path):
    whole = search(tmp_path / "whole", tiny_supernet, "gdas", "strategy_options.epochs=2")
    cut = search(tmp_path / "cut", tiny_supernet, "gdas", "strategy_options.epochs=2", "max_steps=5")
    assert not cut["result"]["finished"] and cut["result"]["steps"] == 5
    resumed = search(tmp_path / "cut", tiny_supernet, "gdas", "strategy_options.epochs=2")
    assert resumed["best"] == whole["best"]
    a, b = load_checkpoint(tmp_path / "whole"), load_checkpoint(tmp_path / "cut")
    for part in ("model", "arch", "a_opt", "w_opt"):
        flat_a, flat_b = flatten(a[part]), flatten(b[part])
        assert flat_a.keys() == flat_b.keys()
        assert all(torch.equal(flat_a[k], flat_b[k]) if torch.is_tensor(flat_a[k]) else flat_a[k] == flat_b[k]
                   for k in flat_a), part
    assert torch.equal(a["gumbel"], b["gumbel"]) and a["step"] == b["step"] == 2 * STEPS_PER_EPOCH
    assert a["history"] == b["history"]


def flatten(d, prefix=""):
    out = {}
    for k, v in (d.items() if isinstance(d, dict) else enumerate(d)):
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, (dict, list)) else {f"{prefix}{k}": v})
    return out


def test_without_warm_start_the_search_starts_from_fresh_weights(tiny_supernet, tmp_path):
    search(tmp_path, tiny_supernet, "gdas", "strategy_options={epochs: 1, warm_start: false, lr: 0}",
           "max_steps=1")
    searched, trained = load_checkpoint(tmp_path)["model"], load_checkpoint(tiny_supernet)["model"]
    conv = "stem.stem0.0.weight"
    assert not torch.allclose(searched[conv], trained[conv])
    search(tmp_path / "warm", tiny_supernet, "gdas", "strategy_options={epochs: 1, lr: 0}", "max_steps=1")
    assert torch.equal(load_checkpoint(tmp_path / "warm")["model"][conv], trained[conv])
