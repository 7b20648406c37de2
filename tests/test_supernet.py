import numpy as np
import pytest
import torch
import torch.nn.functional as F

from supernet.genotype import GenotypeError
from supernet.model import SuperNet
from supernet.space import get_space


def _trained_supernet(space_name, stem="cifar", size=8, seed=0):
    """A small supernet whose weights and BN statistics have moved away from their initial values."""
    torch.manual_seed(seed)
    space = get_space(space_name)
    net = SuperNet(space, C=4, layers=5, num_classes=5, stem=stem, in_channels=2)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x = torch.randn(6, 2, size, size)
    y = torch.randint(0, 5, (6,))
    for step in range(4):
        opt.zero_grad()
        F.cross_entropy(net(x, arch=space.sample(100 + step)), y).backward()
        opt.step()
    return net, x


def _one_hot_weights(space, genotype):
    return [F.one_hot(torch.tensor(v), d.num_choices).float() for v, d in zip(space.encode(genotype), space.decisions)]


@pytest.mark.parametrize("space_name", ["nasnet", "darts"])
@pytest.mark.parametrize("stem,size", [("cifar", 8), ("imagenet", 32)])
def test_weight_inheritance(space_name, stem, size):
    net, x = _trained_supernet(space_name, stem, size)
    space = net.space
    for seed in range(6):
        g = space.sample(seed)
        for train in (False, True):
            net.train(train)
            sub = net.subnet(g)
            assert sub.training == train
            with torch.no_grad():
                torch.testing.assert_close(net(x, arch=g), sub(x), atol=1e-5, rtol=0)
    # the copies are independent: training the subnet leaves the supernet alone
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        for p in sub.parameters():
            p.add_(1.0)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_every_term_of_a_cell_holds_its_own_op():
    """The nasnet space's 5 blocks read 2, 3, 4, 5 and 6 states (20 inputs) with 13 ops each."""
    net, _ = _trained_supernet("nasnet")
    for cell in net.cells:
        assert len({id(op) for inputs in cell.edges for ops in inputs for op in ops}) == 20 * 13


def test_subnet_holds_only_the_chosen_ops():
    net, _ = _trained_supernet("nasnet")
    g = net.space.sample(0)
    sub = net.subnet(g)
    for cell in sub.cells:
        pairs, concat = g.cell(cell.reduction)
        assert len(cell.ops) == len(pairs)
        assert cell.concat == list(concat)
    assert sum(p.numel() for p in sub.parameters()) < sum(p.numel() for p in net.parameters()) / 5


@pytest.mark.parametrize("space_name", ["nasnet", "darts"])
def test_relaxed_one_hot_equals_single_path(space_name):
    net, x = _trained_supernet(space_name)
    net.eval()
    for seed in range(5):
        g = net.space.sample(seed)
        with torch.no_grad():
            torch.testing.assert_close(net(x, weights=_one_hot_weights(net.space, g)), net(x, arch=g),
                                       atol=1e-5, rtol=0)


def _count_op_calls(net):
    calls = {}
    for c, cell in enumerate(net.cells):
        for b, inputs in enumerate(cell.edges):
            for j, ops in enumerate(inputs):
                for o, op in enumerate(ops):
                    op.register_forward_hook(lambda *_, key=(c, b, j, o): calls.__setitem__(key, calls.get(key, 0) + 1))
    return calls


def test_zero_weight_terms_never_run():
    net, x = _trained_supernet("nasnet")
    space = net.space
    rng = np.random.default_rng(0)
    weights = []
    for d in space.decisions:  # a random sparse distribution per decision
        w = rng.random(d.num_choices) * (rng.random(d.num_choices) < 0.4)
        w[rng.integers(d.num_choices)] += 0.1
        weights.append(torch.tensor(w / w.sum(), dtype=torch.float32, requires_grad=True))
    calls = _count_op_calls(net)
    out = net(x, weights=weights)
    expected = set()
    for c, cell in enumerate(net.cells):
        base = int(cell.reduction) * 4 * space.num_blocks
        for b in range(space.num_blocks):
            pa, qa, pb, qb = (weights[base + 4 * b + k].detach().numpy() for k in range(4))
            W = np.outer(pa, qa) + np.outer(pb, qb)
            expected |= {(c, b, j, o) for j, o in zip(*np.nonzero(W))}
    assert set(calls) == expected and set(calls.values()) == {1}
    out.sum().backward()
    assert all(w.grad is not None for w in weights)


def test_single_path_runs_two_ops_per_block():
    net, x = _trained_supernet("darts")
    calls = _count_op_calls(net)
    g = net.space.sample(4)
    net(x, arch=g)
    assert sum(calls.values()) == 2 * net.space.num_blocks * len(net.cells)


def test_forward_arguments_are_checked():
    net, x = _trained_supernet("darts")
    with pytest.raises(ValueError, match="exactly one"):
        net(x)
    with pytest.raises(ValueError, match="one vector per decision"):
        net(x, weights=[torch.ones(2)])
    with pytest.raises(GenotypeError):
        net(x, arch=get_space("nasnet").sample(0))
