"""The relaxations driving the supernet: GDAS's straight-through sample equals the
single path, and terms whose weight is exactly 0 never run."""
import pytest
import torch

from search.relaxations import ArchParams, RelaxOptions, relaxed_choices
from supernet.model import SuperNet
from supernet.space import get_space


def small_net(space_name):
    torch.manual_seed(0)
    return SuperNet(get_space(space_name), C=4, layers=3, num_classes=5, in_channels=1).eval()


def count_op_calls(net):
    """Forward hooks on every candidate op; returns {(cell, block, input, op): calls}."""
    calls = {}
    for c, cell in enumerate(net.cells):
        for b, block in enumerate(cell.edges):
            for j, inputs in enumerate(block):
                for o, op in enumerate(inputs):
                    key = (c, b, j, o)
                    op.register_forward_hook(lambda *_, key=key: calls.__setitem__(key, calls.get(key, 0) + 1))
    return calls


def expected_terms(net, weights):
    """(cell, block, input, op) whose block weight p_a(j) q_a(o) + p_b(j) q_b(o) is nonzero."""
    B = net.space.num_blocks
    out = set()
    for c, cell in enumerate(net.cells):
        offset = 4 * B * cell.reduction
        for b in range(B):
            p_a, q_a, p_b, q_b = (weights[offset + 4 * b + k] for k in range(4))
            for j in range(b + 2):
                for o in range(len(net.space.ops)):
                    if (p_a[j] * q_a[o] != 0) or (p_b[j] * q_b[o] != 0):
                        out.add((c, b, j, o))
    return out


@pytest.mark.parametrize("space_name", ["nasnet", "darts"])
def test_gdas_sample_equals_the_single_path_with_the_soft_gradient(space_name):
    net = small_net(space_name)
    arch = ArchParams(net.space, seed=1)
    x = torch.randn(3, 1, 12, 12)
    weights = arch.weights("gdas", RelaxOptions(tau=2.0, generator=torch.Generator().manual_seed(4)))
    sampled = net.space.decode([int(w.argmax()) for w in weights])
    relaxed = net(x, weights=weights)
    assert torch.allclose(relaxed, net(x, arch=sampled), rtol=1e-5, atol=1e-6)
    relaxed.sum().backward()
    # Straight-through: every choice of a decision gets a gradient through the soft sample,
    # except "none", which the relaxations never weigh.
    for d, p in zip(net.space.decisions, arch.logits):
        weighed = torch.tensor(relaxed_choices(net.space, d))
        assert (p.grad[weighed] != 0).all()
        assert p.grad.count_nonzero() == len(weighed)


@pytest.mark.parametrize("mapping", ["gdas", "sparsemax", "entmax"])
def test_zero_weight_terms_never_run(mapping):
    net = small_net("nasnet")
    arch = ArchParams(net.space, seed=2)
    with torch.no_grad():  # a clear margin between choices, so the sparse maps keep few of them
        for p in arch.logits:
            p.normal_(0, 2.0, generator=torch.Generator().manual_seed(p.numel()))
    weights = arch.weights(mapping, RelaxOptions(generator=torch.Generator().manual_seed(0)))
    calls = count_op_calls(net)
    net(torch.randn(2, 1, 8, 8), weights=weights)
    expected = expected_terms(net, weights)
    total = sum(len(net.space.ops) * (b + 2) for b in range(net.space.num_blocks)) * len(net.cells)
    assert len(expected) < total / 3
    assert set(calls) == expected
    assert all(n == 1 for n in calls.values())


def test_dense_softmax_runs_every_term_but_none():
    net = small_net("darts")
    calls = count_op_calls(net)
    net(torch.randn(2, 1, 8, 8), weights=ArchParams(net.space).weights("darts"))
    ops = len(net.space.ops) - 1
    total = sum(ops * (b + 2) for b in range(net.space.num_blocks)) * len(net.cells)
    assert len(calls) == total
    assert not any(net.space.ops[o] == "none" for _, _, _, o in calls)
