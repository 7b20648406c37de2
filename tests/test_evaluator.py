"""The shared-weight evaluator: BN recalibration, scoring, constraints and the cache."""
import copy
from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from retrain.sizes import measure
from retrain.spec import NetSpec
from search.config import SearchConfig, scoring_of
from search.constraints import Constraints
from search.evaluator import Evaluator
from supernet import zoo
from supernet.errors import UserError
from supernet.model import SuperNet
from supernet.scoring import Scoring, batch_norms, recalibrate_bn
from supernet.space import get_space
from supernet.train import TrainConfig


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    return SuperNet(get_space("darts"), C=4, layers=3, num_classes=10, in_channels=1).eval()


def batches(count, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, 1, 8, 8, generator=g) * 2 + 0.5, torch.randint(10, (size,), generator=g))
            for _ in range(count)]


def test_recalibrated_statistics_are_those_of_the_calibration_batches(supernet):
    net = supernet.subnet(get_space("darts").sample(0))
    calibration = batches(3)
    # independently: what each BN sees in train mode, batch by batch
    probe = copy.deepcopy(net).train()
    seen = {name: [] for name, m in probe.named_modules() if isinstance(m, nn.BatchNorm2d)}
    for name, m in probe.named_modules():
        if name in seen:
            m.register_forward_pre_hook(lambda m, args, name=name: seen[name].append(args[0].detach()))
    with torch.no_grad():
        for x, _ in calibration:
            probe(x)

    recalibrate_bn(net, calibration)
    assert not net.training
    modules = dict(net.named_modules())
    for name, inputs in seen.items():
        bn = modules[name]
        # equal batch sizes: the cumulative average of the batch means is the mean over all images
        all_images = torch.cat(inputs)
        torch.testing.assert_close(bn.running_mean, all_images.mean((0, 2, 3)), rtol=1e-4, atol=1e-5)
        batch_vars = torch.stack([x.var((0, 2, 3), unbiased=True) for x in inputs])
        torch.testing.assert_close(bn.running_var, batch_vars.mean(0), rtol=1e-4, atol=1e-5)
        assert bn.num_batches_tracked.item() == len(calibration)



def test_on_several_supernets_the_score_is_the_mean_of_each_ones(supernet):
    """A run of several supernets scores on each: the reward is the mean of the single scores."""
    torch.manual_seed(1)
    other = SuperNet(get_space("darts"), C=4, layers=3, num_classes=10, in_channels=1).eval()
    genotype = get_space("darts").sample(2)
    calibration, validation = batches(2, seed=1), batches(3, seed=2)
    scoring = Scoring(metric="probability")
    alone = [Evaluator([net], calibration, validation, scoring=scoring).score(genotype) for net in (supernet, other)]
    assert alone[0] != alone[1]
    both = Evaluator([supernet, other], calibration, validation, scoring=scoring).score(genotype)
    assert both == pytest.approx(sum(alone) / 2)

def test_score_is_eval_mode_accuracy_or_true_class_probability_of_the_recalibrated_subnet_and_leaves_the_supernet_alone(
        supernet):
    genotype = get_space("darts").sample(1)
    calibration, validation = batches(2, seed=1), batches(3, seed=2)
    before = copy.deepcopy(supernet.state_dict())
    unturned = Scoring(finetune_steps=0, metric="accuracy")
    score = Evaluator([supernet], calibration, validation, scoring=unturned).score(genotype)

    net = supernet.subnet(genotype).train()
    for bn in batch_norms(net):
        bn.reset_running_stats()
        bn.momentum = None
    with torch.no_grad():
        for x, _ in calibration:
            net(x)
        net.eval()
        hits = sum((net(x).argmax(1) == y).sum().item() for x, y in validation)
        likelihood = sum(net(x).softmax(1)[torch.arange(len(y)), y].sum().item() for x, y in validation)
    assert score == hits / 48
    probability = Evaluator([supernet], calibration, validation,
                            scoring=replace(unturned, metric="probability")).score(genotype)
    assert probability == pytest.approx(likelihood / 48, rel=1e-6) and probability != score
    for key, value in supernet.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_a_search_scores_as_the_supernet_run_was_told_unless_told_otherwise():
    trained = asdict(TrainConfig(scoring=Scoring(finetune_steps=3, metric="accuracy")))
    assert scoring_of(trained, SearchConfig(supernet="run").scoring) == Scoring(finetune_steps=3, metric="accuracy")
    told = SearchConfig(supernet="run", scoring={"metric": "probability", "finetune_steps": 10}).scoring
    assert scoring_of(trained, told) == Scoring()
    with pytest.raises(UserError, match="unknown config key 'scoring.steps'"):
        SearchConfig(supernet="run", scoring={"steps": 3})


def test_finetuned_score_is_that_of_the_subnet_after_plain_sgd_with_a_cosine_schedule(supernet):
    genotype = get_space("darts").sample(2)
    train, validation = batches(3, seed=3), batches(2, seed=4)
    scoring = Scoring(calibration_batches=2, finetune_steps=5, finetune_lr=0.1)
    before = copy.deepcopy(supernet.state_dict())
    scoring = Scoring(calibration_batches=2, finetune_steps=5, finetune_lr=0.1, metric="accuracy")
    score = Evaluator([supernet], train, validation, scoring=scoring).score(genotype)

    # independently: torch's SGD and cosine schedule over the training batches in turn
    net = supernet.subnet(genotype).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=3e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)
    for step in range(5):
        x, y = train[step % 3]
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        schedule.step()
    recalibrate_bn(net, train[:2])
    with torch.no_grad():
        hits = sum((net(x).argmax(1) == y).sum().item() for x, y in validation)
    assert score == hits / 32
    unturned = replace(scoring, finetune_steps=0)
    assert hits / 32 != Evaluator([supernet], train, validation, scoring=unturned).score(genotype)   # the steps count
    for key, value in supernet.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.parametrize("settings", [{"metric": "loss"}, {"finetune_steps": -1}, {"finetune_lr": 0},
                                      {"calibration_batches": 0}])
def test_bad_scoring_settings_are_user_errors(settings):
    with pytest.raises(UserError):
        Scoring(**settings)


class CountingEvaluator(Evaluator):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.scored = []

    def score(self, genotype):
        self.scored.append(genotype)
        return 0.5 + 0.01 * len(self.scored)


def test_cache_and_constraints(supernet):
    space = get_space("darts")
    genotypes = [space.sample(s) for s in range(4)]
    sizes = [Constraints(C=4, layers=3, num_classes=10, image_size=8, in_channels=1).size(g) for g in genotypes]
    limit = int(np.median([s["params"] for s in sizes]))
    constraints = Constraints(C=4, layers=3, num_classes=10, image_size=8, in_channels=1, max_params=limit)
    evaluator = CountingEvaluator([supernet], batches(1), batches(1), constraints)
    records = evaluator.evaluate(genotypes + [genotypes[0]])
    allowed = [g for g, s in zip(genotypes, sizes) if s["params"] <= limit]
    assert 0 < len(allowed) < len(genotypes)
    assert evaluator.scored == allowed     # rejected candidates are never scored
    for rec, size in zip(records, sizes):
        assert rec["params"] == size["params"]
        assert (rec["rejected"] is None) == (size["params"] <= limit)
        assert rec["reward"] == (rec["score"] if rec["rejected"] is None else 0.0)
    assert [r["cached"] for r in records] == [False] * 4 + [True]
    assert records[4]["reward"] == records[0]["reward"]

    again = evaluator.evaluate([genotypes[1]])
    assert again[0]["cached"] and len(evaluator.scored) == len(allowed)


def test_constraint_sizes_match_the_retraining_counts_and_the_darts_paper():
    genotype = zoo.get("darts_v2")
    size = Constraints(C=48, layers=14, num_classes=1000, image_size=224).size(genotype)
    assert size == measure(NetSpec(genotype, C=48, layers=14, num_classes=1000, image_size=224))
    assert 4.5e6 < size["params"] < 4.9e6    # DARTS (ImageNet mobile): 4.7M params, 574M mult-adds
    assert 5.0e8 < size["macs"] < 6.0e8


def _sharded_worker(rank, store, out):
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    torch.manual_seed(0)
    net = SuperNet(get_space("darts"), C=4, layers=3, num_classes=10, in_channels=1).eval()
    evaluator = CountingEvaluator([net], batches(1), batches(1))
    space = get_space("darts")
    genotypes = [space.sample(s) for s in range(5)]
    records = evaluator.evaluate(genotypes + [genotypes[2]])
    torch.save({"scored": [space.encode(g) for g in evaluator.scored],
                "rewards": [r["reward"] for r in records], "cached": [r["cached"] for r in records]}, f"{out}.{rank}")
    dist.destroy_process_group()


def test_candidates_are_shared_out_across_ranks_and_gathered(tmp_path):
    mp.start_processes(_sharded_worker, args=(str(tmp_path / "store"), str(tmp_path / "out")), nprocs=2,
                       start_method="fork")
    space = get_space("darts")
    results = [torch.load(f"{tmp_path / 'out'}.{rank}", weights_only=True) for rank in range(2)]
    expected = [[space.encode(space.sample(s)) for s in (0, 2, 4)], [space.encode(space.sample(s)) for s in (1, 3)]]
    assert [r["scored"] for r in results] == expected        # each rank scores its own share only
    # CountingEvaluator's reward is 0.5 + 0.01 * (number scored on that rank so far)
    assert results[0]["rewards"] == results[1]["rewards"] == [0.51, 0.51, 0.52, 0.52, 0.53, 0.52]
    assert results[0]["cached"] == [False] * 5 + [True]
