"""Tests of pnd_theory.nn: laws of the masks, exact gradients, bounded memory.

Statistical checks run in float64 with fixed seeds and accept an estimate
within K = 5 standard errors of the closed form (standard error of a mean:
sd / sqrt(n); of a sample variance: sqrt((m4 - s2^2) / n), with m4 the sample
fourth central moment; of a sample covariance: the sd of the centered
products / sqrt(n)). Exact identities are checked to float64 rounding.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

import pnd_theory.nn as pnn
from pnd_theory._validation import InvalidParameterError
from pnd_theory.kernels import counter_masks
from pnd_theory.laws._sampling import sample_mask
from pnd_theory.nn import (
    BlockDropout,
    DropConnectLinear,
    GaussianDropout,
    NodeDropout,
    PerNodeDropLinear,
    per_sample_masked_linear,
)

K = 5.0  # standard errors
DT = torch.float64
STIRS = ["drop", "gaussian"]


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


# ----------------------------------------------------------------------------
# statistics helpers
# ----------------------------------------------------------------------------
def se_mean(a: np.ndarray) -> float:
    return float(a.std(ddof=1) / math.sqrt(a.size))


def se_var(a: np.ndarray) -> float:
    c = a - a.mean()
    m2 = np.mean(c**2)
    m4 = np.mean(c**4)
    return float(math.sqrt(max(m4 - m2**2, 0.0) / a.size))


def cov_and_se(a: np.ndarray, b: np.ndarray):
    prod = (a - a.mean()) * (b - b.mean())
    return float(prod.mean()), float(prod.std(ddof=1) / math.sqrt(a.size))


def assert_close_stat(est, truth, se, what=""):
    assert abs(est - truth) <= K * se, f"{what}: estimate {est:.6g} vs {truth:.6g} (se {se:.3g})"


def closed_form(layer, x):
    """Mean W x + b and variance lam * sum_i W_ji^2 x_i^2 of each output unit."""
    W = layer.weight.detach()
    b = layer.bias.detach() if layer.bias is not None else 0.0
    lam = layer.p / (1 - layer.p)
    return (W @ x + b).numpy(), (lam * (W**2) @ (x**2)).numpy()


def make_layer(stir="drop", local=False, p=0.3, in_f=4, out_f=3, seed=0, **kw):
    torch.manual_seed(seed)
    return PerNodeDropLinear(in_f, out_f, p=p, stir=stir, local_reparameterization=local, dtype=DT, **kw)


def naive_masked_linear(x, W, b, p, stir, seed):
    """Autograd through the fully materialized (batch, out, in) masks of the reference generator."""
    M = counter_masks(seed, torch.arange(x.shape[0]), *W.shape, p, stir == "gaussian", dtype=W.dtype)
    return torch.einsum("koi,ki->ko", W * M, x) + b


LAYER_KINDS = [("drop", False), ("gaussian", False), ("gaussian", True)]
LAYER_IDS = ["exact-drop", "exact-gaussian", "gaussian-local-reparam"]


# ----------------------------------------------------------------------------
# construction
# ----------------------------------------------------------------------------
def test_same_init_as_nn_linear():
    torch.manual_seed(7)
    ref = torch.nn.Linear(6, 5)
    for cls in (PerNodeDropLinear, DropConnectLinear):
        torch.manual_seed(7)
        layer = cls(6, 5)
        assert torch.equal(layer.weight, ref.weight) and torch.equal(layer.bias, ref.bias)
        assert layer.weight.shape == (5, 6)
    assert PerNodeDropLinear(6, 5, bias=False).bias is None
    assert "stir='drop'" in repr(PerNodeDropLinear(6, 5))


# ----------------------------------------------------------------------------
# per-sample independence vs per-batch DropConnect
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("stir,local", LAYER_KINDS, ids=LAYER_IDS)
def test_samples_of_a_batch_get_independent_masks(stir, local):
    layer = make_layer(stir, local, p=0.5).train()
    x = torch.tensor([0.7, -1.2, 0.4, 2.0], dtype=DT)
    batch = x.expand(2, -1)
    R = 2000
    torch.manual_seed(1)
    with torch.no_grad():
        z = torch.stack([layer(batch) for _ in range(R)]).numpy()  # (R, 2, out)
    for j in range(z.shape[-1]):
        r = np.corrcoef(z[:, 0, j], z[:, 1, j])[0, 1]
        assert abs(r) <= K / math.sqrt(R), f"unit {j}: corr {r:.4f} between samples 0 and 1"
    assert not np.array_equal(z[:, 0], z[:, 1])


def test_per_batch_dropconnect_shares_the_mask_and_per_sample_does_not():
    torch.manual_seed(0)
    dc = DropConnectLinear(4, 3, p=0.5, dtype=DT)
    dcs = DropConnectLinear(4, 3, p=0.5, per_sample=True, dtype=DT)
    dcs.load_state_dict(dc.state_dict())
    x = torch.tensor([0.7, -1.2, 0.4, 2.0], dtype=DT).expand(5, -1)
    R = 2000
    torch.manual_seed(2)
    with torch.no_grad():
        zb = torch.stack([dc(x) for _ in range(R)]).numpy()
        zs = torch.stack([dcs(x) for _ in range(R)]).numpy()
    # per batch: every sample of a call identical, but the mask changes between calls
    assert all(np.array_equal(zb[:, 0], zb[:, k]) for k in range(1, 5))
    assert np.unique(zb[:, 0, 0]).size > 1
    # per batch: the marginal law of one sample is still mean Wx+b, var lam sum W^2 x^2
    mean, var = closed_form(dc, x[0])
    for j in range(3):
        assert_close_stat(zb[:, 0, j].mean(), mean[j], se_mean(zb[:, 0, j]), f"DropConnect mean {j}")
        assert_close_stat(zb[:, 0, j].var(), var[j], se_var(zb[:, 0, j]), f"DropConnect var {j}")
    # per sample: samples 0 and 1 uncorrelated
    for j in range(3):
        r = np.corrcoef(zs[:, 0, j], zs[:, 1, j])[0, 1]
        assert abs(r) <= K / math.sqrt(R)


def test_dropconnect_per_sample_uses_the_per_sample_function():
    torch.manual_seed(0)
    g = torch.Generator()
    dcs = DropConnectLinear(5, 4, p=0.4, per_sample=True, dtype=DT, generator=g)
    x = torch.randn(6, 5, dtype=DT)
    g.manual_seed(11)
    a = dcs(x)
    g.manual_seed(11)
    b = per_sample_masked_linear(x, dcs.weight, dcs.bias, 0.4, "drop", generator=g)
    assert torch.equal(a, b)


# ----------------------------------------------------------------------------
# mean and variance of the outputs
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("stir,local", LAYER_KINDS, ids=LAYER_IDS)
@pytest.mark.parametrize("p", [0.2, 0.6])
def test_output_mean_and_variance_closed_form(stir, local, p):
    layer = make_layer(stir, local, p=p, in_f=4, out_f=3, seed=3).train()
    x = torch.tensor([0.5, -1.5, 1.0, 0.25], dtype=DT)
    n = 60_000
    torch.manual_seed(4)
    with torch.no_grad():
        z = layer(x.expand(n, -1)).numpy()
    mean, var = closed_form(layer, x)
    for j in range(3):
        assert_close_stat(z[:, j].mean(), mean[j], se_mean(z[:, j]), f"mean of unit {j}")
        assert_close_stat(z[:, j].var(ddof=1), var[j], se_var(z[:, j]), f"variance of unit {j}")


def test_local_reparameterization_has_the_exact_gaussian_law():
    exact = make_layer("gaussian", False, p=0.4, in_f=5, out_f=3, seed=5).train()
    fast = make_layer("gaussian", True, p=0.4, in_f=5, out_f=3, seed=5).train()
    assert torch.equal(exact.weight, fast.weight)
    x = torch.tensor([1.0, -0.5, 2.0, 0.3, -1.1], dtype=DT)
    n = 20_000
    torch.manual_seed(6)
    with torch.no_grad():
        ze = exact(x.expand(n, -1)).numpy()
        zf = fast(x.expand(n, -1)).numpy()
    mean, var = closed_form(exact, x)
    for j in range(3):
        d_se = math.hypot(se_mean(ze[:, j]), se_mean(zf[:, j]))
        assert_close_stat(zf[:, j].mean(), ze[:, j].mean(), d_se, f"means of unit {j}")
        d_se = math.hypot(se_var(ze[:, j]), se_var(zf[:, j]))
        assert_close_stat(zf[:, j].var(ddof=1), ze[:, j].var(ddof=1), d_se, f"variances of unit {j}")
        for z in (ze, zf):
            assert_close_stat(z[:, j].mean(), mean[j], se_mean(z[:, j]), "mean")
            assert_close_stat(z[:, j].var(ddof=1), var[j], se_var(z[:, j]), "variance")
    for z in (ze, zf):  # distinct units are uncorrelated in both
        c, se = cov_and_se(z[:, 0], z[:, 1])
        assert_close_stat(c, 0.0, se, "cross-covariance of units 0 and 1")
    assert stats.ks_2samp(ze[:, 0], zf[:, 0]).pvalue > 1e-3
    # and the KS test has power: a wrong variance is detected
    assert stats.ks_2samp(ze[:, 0], 1.2 * (zf[:, 0] - mean[0]) + mean[0]).pvalue < 1e-3


# ----------------------------------------------------------------------------
# eval mode, p = 0, fixed mask
# ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: PerNodeDropLinear(6, 4, p=0.5, dtype=DT),
        lambda: PerNodeDropLinear(6, 4, p=0.5, stir="gaussian", dtype=DT),
        lambda: PerNodeDropLinear(6, 4, p=0.5, stir="gaussian", local_reparameterization=True, dtype=DT),
        lambda: DropConnectLinear(6, 4, p=0.5, dtype=DT),
        lambda: DropConnectLinear(6, 4, p=0.5, per_sample=True, dtype=DT),
    ],
    ids=["drop", "gaussian", "local", "dropconnect", "dropconnect-per-sample"],
)
def test_eval_is_the_plain_layer_and_p0_is_noiseless(make):
    torch.manual_seed(0)
    layer = make()
    x = torch.randn(7, 3, 6, dtype=DT)
    ref = F.linear(x, layer.weight, layer.bias)
    layer.eval()
    assert torch.equal(layer(x), ref) and torch.equal(layer(x), ref)
    layer.train()
    assert not torch.allclose(layer(x), ref)
    layer.p = 0.0
    state = torch.get_rng_state()
    assert torch.equal(layer(x), ref)
    assert torch.equal(torch.get_rng_state(), state)  # nothing drawn at p = 0


def test_p0_constructor_gives_the_plain_layer_in_training():
    for stir in STIRS:
        torch.manual_seed(0)
        layer = PerNodeDropLinear(5, 3, p=0, stir=stir, dtype=DT).train()
        x = torch.randn(4, 5, dtype=DT)
        assert torch.equal(layer(x), F.linear(x, layer.weight, layer.bias))


@pytest.mark.parametrize("stir", STIRS)
def test_fixed_mask(stir):
    torch.manual_seed(0)
    layer = PerNodeDropLinear(6, 4, p=0.5, stir=stir, fixed_mask=True, dtype=DT)
    x = torch.randn(5, 6, dtype=DT)
    m0 = layer.mask.clone()
    assert m0.shape == (4, 6) and "mask" in layer.state_dict()
    if stir == "drop":
        assert set(m0.unique().tolist()) <= {0.0, 2.0}
    z_train = layer.train()(x)
    assert torch.equal(layer(x), z_train)
    z_eval = layer.eval()(x)
    assert torch.equal(z_eval, z_train)
    assert torch.allclose(z_eval, F.linear(x, layer.weight * m0, layer.bias), rtol=0, atol=1e-14)
    assert not torch.allclose(z_eval, F.linear(x, layer.weight, layer.bias))
    assert torch.equal(layer.mask, m0)  # forwards do not touch the mask
    layer.resample_mask()
    assert not torch.equal(layer.mask, m0)
    assert not torch.equal(layer(x), z_eval)
    with pytest.raises(RuntimeError):
        PerNodeDropLinear(3, 2).resample_mask()


# ----------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("stir", STIRS)
def test_gradcheck_exact_fused_path(stir):
    torch.manual_seed(0)
    g = torch.Generator()
    x = torch.randn(5, 3, dtype=DT, requires_grad=True)
    W = torch.randn(4, 3, dtype=DT, requires_grad=True)
    b = torch.randn(4, dtype=DT, requires_grad=True)

    def f(x, W, b):
        g.manual_seed(1234)  # same mask at every call
        return per_sample_masked_linear(x, W, b, 0.5, stir, generator=g)

    assert torch.autograd.gradcheck(f, (x, W, b))
    # and through the module, with its own generator re-seeded at every call
    layer = PerNodeDropLinear(3, 4, p=0.5, stir=stir, dtype=DT, generator=g)

    def h(x):
        g.manual_seed(99)
        return layer(x)

    assert torch.autograd.gradcheck(h, (x,))


def test_gradcheck_local_reparameterization():
    torch.manual_seed(0)
    g = torch.Generator()
    layer = PerNodeDropLinear(3, 4, p=0.3, stir="gaussian", local_reparameterization=True, dtype=DT, generator=g)
    x = torch.randn(5, 3, dtype=DT, requires_grad=True)

    def h(x, W):
        g.manual_seed(5)
        return torch.func.functional_call(layer, {"weight": W, "bias": layer.bias}, (x,))

    W = layer.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(h, (x, W))


@pytest.mark.parametrize("stir", STIRS)
def test_fused_kernel_matches_autograd_through_the_materialized_masks(stir):
    """The kernels against plain autograd through the masks of the reference generator."""
    torch.manual_seed(1)
    x = torch.randn(7, 5, dtype=DT, requires_grad=True)
    W = torch.randn(4, 5, dtype=DT, requires_grad=True)
    b = torch.randn(4, dtype=DT, requires_grad=True)
    g_out = torch.randn(7, 4, dtype=DT)
    z = per_sample_masked_linear(x, W, b, 0.3, stir, seed=77)
    zn = naive_masked_linear(x, W, b, 0.3, stir, seed=77)
    torch.testing.assert_close(z, zn, rtol=1e-13, atol=1e-13)
    g1 = torch.autograd.grad(z, (x, W, b), g_out)
    g2 = torch.autograd.grad(zn, (x, W, b), g_out)
    for a, c in zip(g1, g2):
        torch.testing.assert_close(a, c, rtol=1e-13, atol=1e-13)
    # only the weight needs a gradient / only the input needs one
    gw = torch.autograd.grad(per_sample_masked_linear(x.detach(), W, None, 0.3, stir, seed=77), W, g_out)[0]
    torch.testing.assert_close(gw, g1[1], rtol=1e-13, atol=1e-13)
    gx = torch.autograd.grad(per_sample_masked_linear(x, W.detach(), b, 0.3, stir, seed=77), x, g_out)[0]
    torch.testing.assert_close(gx, g1[0], rtol=1e-13, atol=1e-13)


# ----------------------------------------------------------------------------
# memory
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("stir", STIRS)
def test_nothing_of_size_batch_out_in_is_saved(stir):
    n, in_f, out_f = 9, 6, 5
    torch.manual_seed(0)
    layer = PerNodeDropLinear(in_f, out_f, p=0.5, stir=stir, dtype=DT)
    x = torch.randn(n, in_f, dtype=DT, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (saved.append(t.numel()), t)[1], lambda t: t):
        z = layer(x)
    grads = torch.autograd.grad(z.sum(), (x, layer.weight))
    assert all(torch.isfinite(gr).all() for gr in grads)
    assert saved and max(saved) <= max(n * in_f, out_f * in_f) < n * in_f * out_f


# ----------------------------------------------------------------------------
# reproducibility and shapes
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("stir,local", LAYER_KINDS, ids=LAYER_IDS)
def test_reproducible_with_global_seed_and_generator(stir, local):
    torch.manual_seed(0)
    layer = PerNodeDropLinear(5, 3, p=0.5, stir=stir, local_reparameterization=local, dtype=DT)
    x = torch.randn(4, 5, dtype=DT)
    torch.manual_seed(10)
    a = layer(x)
    torch.manual_seed(10)
    b = layer(x)
    assert torch.equal(a, b) and not torch.equal(a, layer(x))
    g = torch.Generator()
    layer.generator = g
    g.manual_seed(3)
    state = torch.get_rng_state()
    c = layer(x)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is not used
    g.manual_seed(3)
    assert torch.equal(layer(x), c)


def test_leading_dimensions_each_get_their_own_mask():
    torch.manual_seed(0)
    layer = PerNodeDropLinear(4, 3, p=0.5, dtype=DT)
    v = torch.randn(4, dtype=DT)
    x = v.expand(2, 3, 4)
    z = layer(x)
    assert z.shape == (2, 3, 3)
    assert torch.unique(z.reshape(6, 3), dim=0).shape[0] > 1
    assert layer(v).shape == (3,)
    assert layer(torch.empty(0, 4, dtype=DT)).shape == (0, 3)


# ----------------------------------------------------------------------------
# the sampling helper
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("stir", STIRS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sample_mask_is_chunk_invariant_and_out_gives_the_same_values(stir, dtype):
    sizes = (37, 1000, 4099)
    g = torch.Generator().manual_seed(5)
    whole = sample_mask((sum(sizes),), 0.3, stir, generator=g, dtype=dtype)
    g.manual_seed(5)
    buf = torch.empty(max(sizes), dtype=dtype)
    parts = [sample_mask((k,), 0.3, stir, generator=g, out=buf[:k]).clone() for k in sizes]
    assert torch.equal(whole, torch.cat(parts))
    g.manual_seed(5)
    centered = sample_mask((sum(sizes),), 0.3, stir, generator=g, dtype=dtype, centered=True)
    torch.testing.assert_close(centered, whole - 1, rtol=0, atol=4 * torch.finfo(dtype).eps)
    assert torch.isfinite(whole).all()


def test_sample_mask_per_position_p_and_centered_moments():
    p = torch.tensor([0.0, 0.25, 0.5], dtype=DT)
    n = 50_000
    torch.manual_seed(0)
    for stir in STIRS:
        e = sample_mask((n, 3), p, stir, dtype=DT, centered=True).numpy()
        assert (e[:, 0] == 0).all()
        for u in (1, 2):
            lam = float(p[u] / (1 - p[u]))
            assert_close_stat(e[:, u].mean(), 0.0, se_mean(e[:, u]), f"{stir} mean")
            assert_close_stat(e[:, u].var(ddof=1), lam, se_var(e[:, u]), f"{stir} variance")


# ----------------------------------------------------------------------------
# hidden-unit modules
# ----------------------------------------------------------------------------
def test_gaussian_dropout_mean_one_variance_lam():
    p, n = 0.3, 40_000
    torch.manual_seed(0)
    m = GaussianDropout(p)(torch.ones(n, 3, dtype=DT)).numpy()
    lam = p / (1 - p)
    for u in range(3):
        assert_close_stat(m[:, u].mean(), 1.0, se_mean(m[:, u]), "mean")
        assert_close_stat(m[:, u].var(ddof=1), lam, se_var(m[:, u]), "variance")
    r = np.corrcoef(m[:, 0], m[:, 1])[0, 1]
    assert abs(r) <= K / math.sqrt(n)
    assert stats.kstest((m[:, 0] - 1) / math.sqrt(lam), "norm").pvalue > 1e-3


def test_block_dropout_shares_within_blocks_independent_across():
    p, bs, n = 0.4, 3, 40_000
    torch.manual_seed(0)
    mod = BlockDropout(p, block_size=bs)
    m = mod(torch.ones(n, 2, 9, dtype=DT)).reshape(-1, 9).numpy()
    lam = p / (1 - p)
    assert set(np.unique(m).tolist()) <= {0.0, 1 / (1 - p)}
    for blk in range(3):
        cols = m[:, blk * bs:(blk + 1) * bs]
        assert (cols == cols[:, :1]).all(), "units of one block must share the draw"
    for u in (0, 3, 8):
        assert_close_stat(m[:, u].mean(), 1.0, se_mean(m[:, u]), "mean")
        assert_close_stat(m[:, u].var(ddof=1), lam, se_var(m[:, u]), "variance")
    N = m.shape[0]
    for a, c in ((0, 3), (3, 6), (0, 8)):
        r = np.corrcoef(m[:, a], m[:, c])[0, 1]
        assert abs(r) <= K / math.sqrt(N), f"blocks of units {a} and {c} correlated: {r}"
    with pytest.raises(ValueError, match="block_size"):
        mod(torch.ones(2, 10, dtype=DT))


def test_node_dropout_per_unit_rates():
    ps = [0.0, 0.1, 0.5, 0.8]
    n = 60_000
    torch.manual_seed(0)
    mod = NodeDropout(ps)
    m = mod(torch.ones(n, 4, dtype=DT)).numpy()
    assert (m[:, 0] == 1.0).all()
    for u, p in enumerate(ps):
        assert set(np.unique(m[:, u]).tolist()) <= {0.0, 1 / (1 - p)}
        assert_close_stat(m[:, u].mean(), 1.0, se_mean(m[:, u]) if p else 0.0, f"mean of unit {u}")
        if p:
            assert_close_stat(m[:, u].var(ddof=1), p / (1 - p), se_var(m[:, u]), f"variance of unit {u}")
    with pytest.raises(ValueError, match="len"):
        mod(torch.ones(2, 5, dtype=DT))


@pytest.mark.parametrize(
    "mod", [GaussianDropout(0.5), BlockDropout(0.5, 2), NodeDropout([0.5] * 4)], ids=["gauss", "block", "node"]
)
def test_hidden_modules_identity_in_eval(mod):
    x = torch.randn(3, 2, 4, dtype=DT)
    assert torch.equal(mod.eval()(x), x)
    assert not torch.equal(mod.train()(x), x)


# ----------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build,name",
    [
        (lambda: PerNodeDropLinear(0, 3), "in_features"),
        (lambda: PerNodeDropLinear(2.0, 3), "in_features"),
        (lambda: PerNodeDropLinear(True, 3), "in_features"),
        (lambda: PerNodeDropLinear(3, -1), "out_features"),
        (lambda: PerNodeDropLinear(3, 2, p=1.0), "p"),
        (lambda: PerNodeDropLinear(3, 2, p=-0.1), "p"),
        (lambda: PerNodeDropLinear(3, 2, p=True), "p"),
        (lambda: PerNodeDropLinear(3, 2, p=float("nan")), "p"),
        (lambda: PerNodeDropLinear(3, 2, p="0.5"), "p"),
        (lambda: PerNodeDropLinear(3, 2, stir="bernoulli"), "stir"),
        (lambda: PerNodeDropLinear(3, 2, mask_per="batch"), "mask_per"),
        (lambda: PerNodeDropLinear(3, 2, stir="drop", local_reparameterization=True), "local_reparameterization"),
        (lambda: PerNodeDropLinear(3, 2, generator=0), "generator"),
        (lambda: DropConnectLinear(3, 2, p=1.5), "p"),
        (lambda: DropConnectLinear(0, 2), "in_features"),
        (lambda: per_sample_masked_linear(torch.randn(2, 3), torch.randn(4, 3), seed=-1), "seed"),
        (lambda: GaussianDropout(1.0), "p"),
        (lambda: BlockDropout(0.5, 0), "block_size"),
        (lambda: BlockDropout(False, 2), "p"),
        (lambda: NodeDropout([0.1, 1.0]), r"p\[1\]"),
        (lambda: NodeDropout([]), "p"),
        (lambda: NodeDropout(0.5), "p"),
        (lambda: PerNodeDropLinear(3, 2)(torch.randn(4, 5)), "input"),
        (lambda: per_sample_masked_linear(torch.randn(2, 3), torch.randn(4, 3), p=2.0), "p"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_parameter(build, name):
    with pytest.raises(InvalidParameterError, match=name):
        build()


def test_invalid_parameter_error_is_both_value_and_type_error():
    with pytest.raises(ValueError):
        PerNodeDropLinear(4, 3, p="0.5")
    with pytest.raises(TypeError):
        PerNodeDropLinear(4, 3, p="0.5")


# ----------------------------------------------------------------------------
# GPU
# ----------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_large_batch_mean_and_bounded_memory():
    dev = torch.device("cuda")
    torch.manual_seed(0)
    n, d = 4096, 1024
    layer = PerNodeDropLinear(d, d, p=0.5, device=dev)
    x = torch.randn(d, device=dev)
    xb = x.expand(n, d).contiguous().requires_grad_(True)
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    z = layer(xb)
    z.sum().backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    assert peak <= 4 * d * d * 4 + 8 * n * d * 4, f"peak {peak / 2**20:.0f} MiB"  # no (n, d, d) tensor
    with torch.no_grad():
        Wd, xd = layer.weight.double(), x.double()
        mean = Wd @ xd + layer.bias.double()
        se = torch.sqrt(layer.lam * (Wd**2) @ (xd**2) / n)
        zbar = z.double().mean(0)
    assert ((zbar - mean).abs() <= K * se).all()
    # bias gradient is the batch size, input gradient finite
    torch.testing.assert_close(layer.bias.grad, torch.full_like(layer.bias, float(n)))
    assert torch.isfinite(xb.grad).all()


def test_local_reparameterization_input_gradient_variance_is_the_share_of_the_exact_one():
    """dz_j/dx_i: exact variance lam W_ji^2; fast path lam W_ji^2 * (W_ji^2 x_i^2 / s_j)."""
    n, p, j = 40_000, 0.4, 1
    lam = p / (1 - p)
    exact = make_layer("gaussian", False, p=p, in_f=5, out_f=3, seed=8).train()
    fast = make_layer("gaussian", True, p=p, in_f=5, out_f=3, seed=8).train()
    W = exact.weight.detach()
    x = torch.tensor([1.0, -0.5, 2.0, 0.3, -1.1], dtype=DT)
    share = (W[j] ** 2 * x**2) / ((W[j] ** 2) @ (x**2))
    torch.manual_seed(9)
    for layer, factor in ((exact, torch.ones(5, dtype=DT)), (fast, share)):
        xb = x.expand(n, 5).clone().requires_grad_(True)
        layer(xb)[:, j].sum().backward()
        gx = xb.grad.numpy()
        for i in range(5):
            truth = float(lam * W[j, i] ** 2 * factor[i])
            assert_close_stat(gx[:, i].var(ddof=1), truth, se_var(gx[:, i]), f"input-gradient variance {i}")
    assert float(share.min()) < 0.1  # the fast path's input-gradient noise is far too small here
