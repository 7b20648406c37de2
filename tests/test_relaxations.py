"""The relaxations against independent computations: Gumbel-max frequencies,
straight-through gradients, the simplex projection and exact 1.5-entmax."""
import numpy as np
import pytest
import torch
from scipy import stats

from search.relaxations import (
    MAPPINGS,
    ArchParams,
    RelaxOptions,
    gdas_temperature,
    get_mapping,
    gumbel_noise,
    hard_gumbel_softmax,
    sparsity,
    summarize,
)
from supernet.space import get_space

LOGITS = [1.0, 0.0, -1.0, 2.0, 0.5]


@pytest.mark.parametrize("tau", [0.1, 1.0, 10.0])
def test_gumbel_max_picks_k_with_softmax_probability(tau):
    n = 40_000
    logits = torch.tensor(LOGITS).expand(n, -1)
    gen = torch.Generator().manual_seed(1234)
    w = get_mapping("gdas")(logits, RelaxOptions(tau=tau, generator=gen))
    counts = np.bincount(w.argmax(-1).numpy(), minlength=len(LOGITS))
    expected = n * np.exp(LOGITS) / np.exp(LOGITS).sum()
    chi2 = ((counts - expected) ** 2 / expected).sum()
    # False alarm 1e-6 at the chi-square law with k-1 degrees of freedom.
    assert chi2 < stats.chi2.isf(1e-6, df=len(LOGITS) - 1)


def test_hard_gumbel_is_one_hot_with_the_soft_gradient():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 7, generator=gen, dtype=torch.float64)
    noise = gumbel_noise(logits, gen)
    coef = torch.randn(64, 7, generator=gen, dtype=torch.float64)
    tau = 0.7

    hard_in = logits.clone().requires_grad_()
    hard = hard_gumbel_softmax(hard_in, tau, noise)
    (hard * coef).sum().backward()

    soft_in = logits.clone().requires_grad_()
    z = (soft_in - soft_in.logsumexp(-1, keepdim=True) + noise) / tau
    soft = torch.exp(z - z.logsumexp(-1, keepdim=True))
    (soft * coef).sum().backward()

    winner = soft.detach().argmax(-1)
    assert ((hard != 0).sum(-1) == 1).all()
    assert (hard.detach().argmax(-1) == winner).all()
    assert torch.allclose(hard.detach().max(-1).values, torch.ones(64, dtype=torch.float64), rtol=0, atol=1e-15)
    assert torch.allclose(hard_in.grad, soft_in.grad, rtol=1e-12, atol=1e-14)


def test_gdas_noise_follows_the_seeded_generator():
    logits = torch.zeros(10, 6)
    a = get_mapping("gdas")(logits, RelaxOptions(generator=torch.Generator().manual_seed(5)))
    b = get_mapping("gdas")(logits, RelaxOptions(generator=torch.Generator().manual_seed(5)))
    c = get_mapping("gdas")(logits, RelaxOptions(generator=torch.Generator().manual_seed(6)))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_darts_is_softmax():
    x = torch.tensor(LOGITS, dtype=torch.float64)
    e = np.exp(np.array(LOGITS))
    assert np.allclose(get_mapping("darts")(x, RelaxOptions()).numpy(), e / e.sum(), rtol=1e-12)


def simplex_projection(z):
    """Closed form (Held et al. 1974; Duchi et al. 2008): max(z - theta, 0) with the largest valid support."""
    u = np.sort(z)[::-1]
    css = np.cumsum(u)
    k = np.arange(1, len(z) + 1)
    rho = k[u - (css - 1) / k > 0].max()
    return np.maximum(z - (css[rho - 1] - 1) / rho, 0)


def entmax15_reference(z, iters=200):
    """Exact 1.5-entmax by bisection on tau: p = max(z/2 - tau, 0)^2 with sum(p) = 1."""
    z = z / 2
    lo, hi = z.max() - 1, z.max()
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (np.maximum(z - mid, 0) ** 2).sum() >= 1 else (lo, mid)
    return np.maximum(z - lo, 0) ** 2


CASES = [np.array(LOGITS), np.array([3.0, 1.0, 0.2, -1.0]), np.array([0.1, 0.12, 0.09, 0.11, 0.1, 0.08])]


@pytest.mark.parametrize("z", CASES)
@pytest.mark.parametrize("name, reference", [("sparsemax", simplex_projection), ("entmax", entmax15_reference)])
def test_sparse_mappings_match_the_exact_solution(z, name, reference):
    w = get_mapping(name)(torch.tensor(z), RelaxOptions()).numpy()
    ref = reference(z)
    assert abs(w.sum() - 1) < 1e-12
    assert np.array_equal(w == 0, ref == 0)
    assert np.allclose(w, ref, atol=1e-10)


def test_sparse_mappings_have_zeros_for_a_clear_margin():
    # Support {0, 1}: sparsemax threshold (2 + 1.5 - 1) / 2 = 1.25; entmax15 threshold on z/2 is about 0.18.
    z = torch.tensor([2.0, 1.5, 0.0, -1.0], dtype=torch.float64)
    assert torch.allclose(get_mapping("sparsemax")(z, RelaxOptions()),
                          torch.tensor([0.75, 0.25, 0, 0], dtype=torch.float64), rtol=0, atol=1e-15)
    w = get_mapping("entmax")(z, RelaxOptions())
    assert (w[2:] == 0).all() and (w[:2] > 0).all()


@pytest.mark.parametrize("name, alpha", [("sparsemax", 1.5), ("entmax", 1.5), ("entmax", 1.3), ("entmax", 2.0)])
def test_sparse_mapping_gradients_match_finite_differences(name, alpha):
    # Every logit is clear of its support boundary, where the map is not differentiable.
    z = torch.tensor([[1.0, -0.4, -1.5, 1.6, 0.6], [0.3, 0.1, -0.4, 0.25, 0.0]], dtype=torch.float64,
                     requires_grad=True)
    fn = get_mapping(name)
    options = RelaxOptions(alpha=alpha)
    w = fn(z, options)
    assert (w == 0).any() and ((w > 0).sum(-1) > 1).all()
    assert torch.autograd.gradcheck(lambda x: fn(x, options), (z,), eps=1e-6, atol=1e-8)


def test_entmax_by_bisection_agrees_with_the_sort_solution():
    z = torch.tensor([[1.0, 0.0, -1.0, 2.0, 0.5], [3.0, 1.0, 0.2, -1.0, -3.0]], dtype=torch.float64)
    exact = get_mapping("entmax")(z, RelaxOptions())
    bisect = get_mapping("entmax")(z, RelaxOptions(alpha=1.5 + 1e-12))
    assert torch.allclose(exact, bisect, atol=1e-8)
    sparsemax = get_mapping("sparsemax")(z, RelaxOptions())
    assert torch.allclose(get_mapping("entmax")(z, RelaxOptions(alpha=2.0)), sparsemax, atol=1e-8)


def test_arch_params_have_one_vector_per_decision_and_derive_the_argmax():
    space = get_space("nasnet")
    arch = ArchParams(space, seed=3)
    assert [p.numel() for p in arch.logits] == [d.num_choices for d in space.decisions]
    target = space.sample(7)
    with torch.no_grad():
        for p, v in zip(arch.logits, space.encode(target)):
            p[v] += 1.0
    assert arch.derive() == target
    for name in MAPPINGS:
        w = arch.weights(name, RelaxOptions(generator=torch.Generator().manual_seed(0)))
        assert [t.shape[0] for t in w] == [d.num_choices for d in space.decisions]
        assert all(abs(float(t.detach().sum()) - 1) < 1e-5 for t in w)


@pytest.mark.parametrize("name", sorted(MAPPINGS))
def test_relaxations_never_weigh_none(name):
    space = get_space("darts")
    arch = ArchParams(space, seed=5)
    with torch.no_grad():
        for p in arch.logits:
            p.normal_(0, 2.0, generator=torch.Generator().manual_seed(p.numel()))
    none = space.ops.index("none")
    options = RelaxOptions(generator=torch.Generator().manual_seed(0))
    weights = arch.weights(name, options)
    reference = get_mapping(name)
    for d, logit, w in zip(space.decisions, arch.logits, weights):
        if d.kind == "op":
            assert w[none] == 0
            rest = [i for i in range(d.num_choices) if i != none]
            if name != "gdas":   # gdas draws fresh noise per call; its one-hot is checked by the sum
                assert torch.allclose(w[rest], reference(logit.detach()[rest], options))
        assert abs(float(w.detach().sum()) - 1) < 1e-5


def set_logits(arch, values):
    with torch.no_grad():
        for p, v in zip(arch.logits, values):
            p.copy_(torch.as_tensor(v, dtype=torch.float32))


def test_derivation_is_the_argmax_of_each_decision_when_the_slots_differ():
    space = get_space("nasnet")
    arch = ArchParams(space)
    target = space.sample(11)
    seq = space.encode(target)
    blocks = [seq[k:k + 4] for k in range(0, len(seq), 4)]
    assert all((a, b) != (c, d) for a, b, c, d in blocks)   # no block of this sample repeats a pair
    set_logits(arch, [torch.arange(d.num_choices) == v for d, v in zip(space.decisions, seq)])
    assert arch.derive() == target


def test_derivation_never_picks_none_and_keeps_the_slots_distinct():
    space = get_space("darts")
    arch = ArchParams(space)
    none, last = space.ops.index("none"), len(space.ops) - 1
    values = []
    for d in space.decisions:
        v = torch.zeros(d.num_choices)
        if d.kind == "op":
            v[none], v[last], v[last - 1] = 9.0, 3.0, 1.0   # "none", then the last op, then the one before
        else:
            v[-1], v[0] = 2.0, 1.5                         # the latest input, then input 0
        values.append(v)
    set_logits(arch, values)
    g = arch.derive()
    for cell in (g.normal, g.reduce):
        for b in range(len(cell) // 2):
            a_pair, b_pair = cell[2 * b], cell[2 * b + 1]
            assert a_pair == (space.ops[last], b + 1)
            # slot b's best pair is slot a's; its next best: log-prob margin 0.5 (input) < 2 (op)
            assert b_pair == (space.ops[last], 0)


def test_unknown_mapping_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown relaxation 'softmin'"):
        get_mapping("softmin")


def test_temperature_is_linear_from_10_to_0_1():
    taus = [gdas_temperature(e, 5) for e in range(5)]
    assert np.allclose(taus, np.linspace(10, 0.1, 5))


def test_summary_counts_zeros_and_entropy():
    space = get_space("darts")
    weights = [torch.full((d.num_choices,), 1.0 / d.num_choices) for d in space.decisions]
    weights[0] = torch.tensor([1.0, 0.0])
    total = sum(d.num_choices for d in space.decisions)
    assert sparsity(weights) == pytest.approx(1 / total)
    s = summarize(space, weights)
    assert s["decisions"][space.decisions[0].name]["entropy"] == 0
    assert s["decisions"][space.decisions[1].name]["entropy"] == pytest.approx(np.log(8))
    assert s["sparsity"] == pytest.approx(1 / total)
