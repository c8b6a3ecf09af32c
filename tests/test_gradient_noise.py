"""Gradient noise of the mini-batch gradient (per-sample against shared masks): closed form against exact
enumeration, against Monte Carlo over real autograd gradients (LinearNetwork and the torch
layers), per-sample versus shared masks against the batch size, the local-reparameterization
gap, the stationary spread of training, and bad inputs."""

import itertools
import json

import numpy as np
import pytest
import torch

import pnd_theory as pt
from pnd_theory.gradient_covariance import (
    gradient_noise,
    gradient_noise_vs_batch_size,
    mask_sharing_pair,
    monte_carlo_gradient_noise,
    monte_carlo_gradient_noise_vs_batch_size,
)
from pnd_theory import stationary_spread

torch.set_num_threads(1)

#: Monte Carlo estimates must fall within this many standard errors
Z = 5.0


def tiny(seed=0, n_in=3, width=2, n_out=2, batch=3):
    return pt.random_problem(n_in=n_in, width=width, n_out=n_out, n_samples=batch, seed=seed)


TINY_STRATEGIES = [
    pt.DropConnect(0.3, "output"),
    pt.DropConnect(0.3, "input"),
    pt.DropConnect(0.25, "input", per_sample=True),
    pt.PerNodeDrop(0.3, "output"),
    pt.PerNodeDrop(0.35, "input", stir="gaussian"),
    pt.PerNodeDrop(0.6, "output", stir="gaussian"),
    pt.Dropout(0.4),
    pt.GaussianDropout(0.3),
    pt.NodeDropout([0.2, 0.5]),
    pt.DropBlock(0.3, 2),
]


# --------------------------------------------------------------------------- exact

@pytest.mark.parametrize("strategy", TINY_STRATEGIES, ids=repr)
def test_closed_form_equals_enumeration(strategy):
    """The moment formula equals enumeration over a law with the same moments up to order 4
    (gradients by autograd through MaskLaw.predict), to float64 rounding."""
    U, V, X, Y = tiny(seed=7)
    cf = gradient_noise(strategy, U, V, X, Y, method="closed_form")
    en = gradient_noise(strategy, U, V, X, Y, method="enumeration")
    scale = np.abs(en.covariance).max()
    np.testing.assert_allclose(cf.covariance, en.covariance, rtol=1e-10, atol=1e-12 * scale)
    np.testing.assert_allclose(cf.mean, en.mean, rtol=1e-10, atol=1e-12 * np.abs(en.mean).max())
    for name in ("trace", "trace_U", "trace_V", "trace_per_sample", "trace_per_batch"):
        np.testing.assert_allclose(getattr(cf, name), getattr(en, name), rtol=1e-10)
    # the structured traces agree with the trace of the generic covariance
    np.testing.assert_allclose(cf.trace, np.trace(cf.covariance), rtol=1e-10)
    assert cf.per_sample == strategy.law(3, 2, 2).per_sample
    assert cf.trace == (cf.trace_per_sample if cf.per_sample else cf.trace_per_batch)
    assert cf.covariance.shape == (cf.n_parameters, cf.n_parameters)
    G_U, G_V = cf.split(cf.mean)
    assert G_U.shape == U.shape and G_V.shape == V.shape


@pytest.mark.parametrize("strategy", [pt.DropConnect(0.2, "both"), pt.PerNodeDrop(0.3, "both", stir="gaussian"),
                                      pt.PerNodeDrop(0.3, "input"), pt.Dropout(0.4)], ids=repr)
def test_mean_is_gradient_of_expected_loss(strategy):
    """E[g] = grad (L + R) on the batch (central differences of pt.expected_loss); two random
    components ("both") go through enumeration."""
    U, V, X, Y = tiny(seed=3, n_in=2, width=2, n_out=2, batch=3)
    res = gradient_noise(strategy, U, V, X, Y)
    assert res.method == ("enumeration" if strategy.layer == "both" else "closed_form") \
        if hasattr(strategy, "layer") else res.method == "closed_form"
    theta = np.concatenate([U.ravel(), V.ravel()])
    h = 1e-5
    fd = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        f = [pt.expected_loss(strategy, t[:U.size].reshape(U.shape), t[U.size:].reshape(V.shape), X, Y)
             for t in (theta + e, theta - e)]
        fd[i] = (f[0] - f[1]) / (2 * h)
    np.testing.assert_allclose(res.mean, fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())


def test_shared_and_per_sample_masks_share_mean_and_expected_loss_not_noise():
    U, V, X, Y = tiny(seed=5, batch=4)
    for layer in ("output", "input"):
        per_sample, per_batch = mask_sharing_pair(pt.DropConnect(0.3, layer))
        a, b = gradient_noise(per_sample, U, V, X, Y), gradient_noise(per_batch, U, V, X, Y)
        np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12)
        assert pt.expected_loss(per_sample, U, V, X, Y) == pytest.approx(pt.expected_loss(per_batch, U, V, X, Y),
                                                                        rel=1e-13)
        # the same law, the other sharing
        assert a.trace == pytest.approx(b.trace_per_sample, rel=1e-12)
        assert b.trace == pytest.approx(a.trace_per_batch, rel=1e-12)
        assert b.trace > 1.2 * a.trace
        # PerNodeDrop is the per-sample DropConnect
        c = gradient_noise(pt.PerNodeDrop(0.3, layer), U, V, X, Y)
        np.testing.assert_allclose(c.covariance, a.covariance, rtol=1e-12, atol=1e-14 * np.abs(a.covariance).max())


# --------------------------------------------------------------------------- Monte Carlo (autograd)

MC_CASES = [
    (pt.DropConnect(0.3, "output"), "network"),
    (pt.DropConnect(0.3, "input"), "layers"),
    (pt.PerNodeDrop(0.3, "input"), "layers"),
    (pt.PerNodeDrop(0.3, "output", stir="gaussian"), "network"),
    (pt.DropConnect(0.25, "output", per_sample=True), "layers"),
    (pt.Dropout(0.4), "layers"),
]


@pytest.mark.parametrize("strategy,via", MC_CASES, ids=lambda v: repr(v))
def test_closed_form_matches_monte_carlo_autograd(strategy, via):
    U, V, X, Y = pt.random_problem(n_in=4, width=3, n_out=3, n_samples=5, seed=11)
    exact = gradient_noise(strategy, U, V, X, Y)
    mc = monte_carlo_gradient_noise(strategy, U, V, X, Y, draws=1600, seed=4, groups=16, via=via)
    assert abs(mc.trace - exact.trace) < Z * mc.trace_se, (mc.trace, mc.trace_se, exact.trace)
    assert np.all(np.abs(mc.mean - exact.mean) < Z * mc.mean_se + 1e-12)
    # the estimate resolves the noise: its standard error is a few percent of it
    assert mc.trace_se < 0.1 * exact.trace


def test_both_layers_by_enumeration_matches_monte_carlo():
    strategy = pt.DropConnect(0.2, "both")
    U, V, X, Y = tiny(seed=2, n_in=2, width=2, n_out=2, batch=4)
    exact = gradient_noise(strategy, U, V, X, Y)
    assert exact.method == "enumeration"
    for via in ("network", "layers"):
        mc = monte_carlo_gradient_noise(strategy, U, V, X, Y, draws=1600, seed=9, groups=16, via=via)
        assert abs(mc.trace - exact.trace) < Z * mc.trace_se


# --------------------------------------------------------------------------- Bernoulli versus Gaussian

@pytest.mark.parametrize("layer,seed", [("output", 2), ("input", 10)])
def test_bernoulli_and_gaussian_differ_in_gradient_noise_not_in_expected_loss(layer, seed):
    U, V, X, Y = pt.random_problem(n_in=3, width=2, n_out=2, n_samples=4, seed=seed)
    bern, gauss = pt.PerNodeDrop(0.5, layer, "drop"), pt.PerNodeDrop(0.5, layer, "gaussian")
    # expected loss: equal (closed form and exact enumeration)
    assert pt.expected_loss(bern, U, V, X, Y) == pytest.approx(pt.expected_loss(gauss, U, V, X, Y), rel=1e-13)
    assert pt.exact_expected_loss(bern, U, V, X, Y) == pytest.approx(pt.exact_expected_loss(gauss, U, V, X, Y),
                                                                     rel=1e-12)
    a, b = gradient_noise(bern, U, V, X, Y), gradient_noise(gauss, U, V, X, Y)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12, atol=1e-13 * np.abs(a.mean).max())
    # gradient covariance: different (third and fourth moments differ)
    assert b.trace > 1.5 * a.trace
    # and Monte Carlo over autograd gradients of the torch layer sees both values
    mc = {s.stir: monte_carlo_gradient_noise(s, U, V, X, Y, draws=1600, seed=1, groups=16, via="layers")
          for s in (bern, gauss)}
    for exact, s in ((a, bern), (b, gauss)):
        assert abs(mc[s.stir].trace - exact.trace) < Z * mc[s.stir].trace_se
    gap_se = np.hypot(mc["drop"].trace_se, mc["gaussian"].trace_se)
    assert mc["gaussian"].trace - mc["drop"].trace > Z * gap_se


# --------------------------------------------------------------------------- batch size

@pytest.mark.parametrize("layer", ["output", "input"])
def test_batch_size_closed_forms_equal_brute_force_over_batches(layer):
    """The expected trace over random batches equals the average of the exact per-batch
    traces over every possible batch (with and without replacement), and "first" is the
    exact trace of the first B columns."""
    U, V, X, Y = pt.random_problem(n_in=2, width=2, n_out=2, n_samples=4, seed=8)
    strategy = pt.PerNodeDrop(0.3, layer)
    N = X.shape[1]
    sizes = [1, 2, 3]
    for sampling, draw in (("with_replacement", lambda B: itertools.product(range(N), repeat=B)),
                           ("without_replacement", lambda B: itertools.permutations(range(N), B))):
        res = gradient_noise_vs_batch_size(strategy, U, V, X, Y, sizes, sampling=sampling)
        for i, B in enumerate(sizes):
            runs = [gradient_noise(strategy, U, V, X[:, list(idx)], Y[:, list(idx)], full_covariance=False)
                    for idx in draw(B)]
            assert res.per_sample[i] == pytest.approx(np.mean([r.trace_per_sample for r in runs]), rel=1e-10)
            assert res.per_batch[i] == pytest.approx(np.mean([r.trace_per_batch for r in runs]), rel=1e-10)
    first = gradient_noise_vs_batch_size(strategy, U, V, X, Y, [1, 3, 4], sampling="first")
    for i, B in enumerate([1, 3, 4]):
        r = gradient_noise(strategy, U, V, X[:, :B], Y[:, :B])
        assert first.per_sample[i] == pytest.approx(r.trace_per_sample, rel=1e-12)
        assert first.per_batch[i] == pytest.approx(r.trace_per_batch, rel=1e-12)


@pytest.mark.parametrize("layer", ["output", "input"])
def test_per_sample_falls_like_one_over_B_shared_tends_to_a_positive_limit(layer):
    U, V, X, Y = pt.random_problem(n_in=4, width=3, n_out=3, n_samples=128, seed=4)
    strategy = pt.PerNodeDrop(0.3, layer)
    B = np.array([1, 4, 16, 64, 256, 4096, 10**6])
    res = gradient_noise_vs_batch_size(strategy, U, V, X, Y, B)
    T1, Tinf = res.single_sample_trace, res.full_data_trace
    np.testing.assert_allclose(res.per_sample * B, T1, rtol=1e-12)
    np.testing.assert_allclose(res.per_batch, Tinf + (T1 - Tinf) / B, rtol=1e-12)
    np.testing.assert_allclose(res.ratio, 1 + (B - 1) * res.correlation, rtol=1e-10)
    assert 0 < Tinf < T1 and res.per_batch[-1] == pytest.approx(Tinf, rel=1e-5)
    assert res.per_sample[-1] < 1e-4 * Tinf
    # the limit is the mask noise of the full-data gradient with one shared mask
    full = gradient_noise(pt.DropConnect(0.3, layer), U, V, X, Y, full_covariance=False)
    assert Tinf == pytest.approx(full.trace, rel=1e-10)
    # without replacement the whole data set is reached at B = N
    wo = gradient_noise_vs_batch_size(strategy, U, V, X, Y, [1, 128], sampling="without_replacement")
    assert wo.per_batch[-1] == pytest.approx(Tinf, rel=1e-10)
    assert wo.per_sample[0] == pytest.approx(T1, rel=1e-12)


@pytest.mark.parametrize("layer", ["output", "input"])
def test_batch_size_law_by_monte_carlo_autograd(layer):
    """Monte Carlo over autograd gradients of the torch layers on the first B columns: the
    per-sample noise falls like 1/B, the shared noise stays near its limit, both as the
    closed form says."""
    U, V, X, Y = pt.random_problem(n_in=3, width=2, n_out=2, n_samples=48, seed=6)
    per_sample, per_batch = mask_sharing_pair(pt.PerNodeDrop(0.3, layer))
    sizes = [6, 48]
    theory = gradient_noise_vs_batch_size(per_sample, U, V, X, Y, sizes, sampling="first")
    mc = {}
    for key, s in (("per_sample", per_sample), ("per_batch", per_batch)):
        mc[key] = monte_carlo_gradient_noise_vs_batch_size(s, U, V, X, Y, sizes, batches=10, draws=80, seed=3,
                                                           sampling="first", via="layers")
        np.testing.assert_array_less(np.abs(mc[key].trace - getattr(theory, key)), Z * mc[key].trace_se)
    # per sample: eight times the batch, an eighth of the noise (up to the first columns' spread)
    assert theory.per_sample[1] < 0.25 * theory.per_sample[0]
    # shared: the noise at B = 48 is far above the per-sample one
    gap = mc["per_batch"].trace[1] - mc["per_sample"].trace[1]
    assert gap > Z * np.hypot(mc["per_batch"].trace_se[1], mc["per_sample"].trace_se[1])
    assert theory.per_batch[1] > 3 * theory.per_sample[1]


# --------------------------------------------------------------------------- local reparameterization

@pytest.mark.parametrize("layer", ["input", "output"])
def test_local_reparameterization_gap_closed_form_and_monte_carlo(layer):
    U, V, X, Y = pt.random_problem(n_in=6, width=3, n_out=3, n_samples=4, seed=13)
    strategy = pt.PerNodeDrop(0.4, layer, stir="gaussian")
    exact = gradient_noise(strategy, U, V, X, Y)
    fast = gradient_noise(strategy, U, V, X, Y, local_reparameterization=True)
    # same expected gradient (an unbiased gradient of the same expected loss)
    np.testing.assert_allclose(fast.mean, exact.mean, rtol=1e-12, atol=1e-13 * np.abs(exact.mean).max())
    assert fast.trace_per_batch is None and fast.per_sample
    mc_fast = monte_carlo_gradient_noise(strategy, U, V, X, Y, draws=1600, seed=2, groups=16, via="layers",
                                         local_reparameterization=True)
    mc_exact = monte_carlo_gradient_noise(strategy, U, V, X, Y, draws=1600, seed=3, groups=16, via="layers")
    assert abs(mc_fast.trace - fast.trace) < Z * mc_fast.trace_se
    assert abs(mc_exact.trace - exact.trace) < Z * mc_exact.trace_se
    assert np.all(np.abs(mc_fast.mean - fast.mean) < Z * mc_fast.mean_se + 1e-12)
    gap_se = np.hypot(mc_fast.trace_se, mc_exact.trace_se)
    gap = fast.trace - exact.trace
    assert abs(gap) > Z * gap_se                                 # the gap is real and resolved
    assert abs((mc_fast.trace - mc_exact.trace) - gap) < Z * gap_se
    assert np.sign(mc_fast.trace - mc_exact.trace) == np.sign(gap) and abs(mc_fast.trace - mc_exact.trace) > 2 * gap_se
    # batch-size law of the fast path: per sample, 1/B
    res = gradient_noise_vs_batch_size(strategy, U, V, X, Y, [1, 8], local_reparameterization=True)
    assert res.per_batch is None and res.per_sample[0] == pytest.approx(8 * res.per_sample[1])


# --------------------------------------------------------------------------- training

def test_stationary_spread_shared_masks_spread_more_and_land_on_the_optimum():
    _, _, X, Y = pt.random_problem(n_in=3, width=3, n_out=2, n_samples=64, seed=5)
    kw = dict(lr=0.01, steps=60, seeds=8, batch_size=32, snapshots=6, burn_in=30)
    ps = stationary_spread(pt.PerNodeDrop(0.3, "output"), X, Y, 3, **kw)
    pb = stationary_spread(pt.DropConnect(0.3, "output"), X, Y, 3, **kw)
    se = np.hypot(ps.spread_se, pb.spread_se)
    assert pb.spread - ps.spread > 3 * se, (pb.spread, ps.spread, se)
    # both means land on the same closed-form optimum (within the seeds' spread)
    np.testing.assert_allclose(ps.optimum, pb.optimum)
    for r in (ps, pb):
        assert r.distance_to_optimum < 4 * r.distance_se
        assert r.spread_about_optimum == pytest.approx(r.spread, rel=0.5)


# --------------------------------------------------------------------------- large sizes

def test_closed_form_scales():
    """Structured traces: a few hundred parameters and samples in well under a second each."""
    U, V, X, Y = pt.random_problem(n_in=12, width=10, n_out=8, n_samples=256, seed=1)
    for layer in ("output", "input"):
        res = gradient_noise(pt.DropConnect(0.3, layer), U, V, X, Y, full_covariance=False)
        assert res.covariance is None and res.trace > 0 and res.mean.shape == (200,)
        vs = gradient_noise_vs_batch_size(pt.PerNodeDrop(0.3, layer), U, V, X, Y, [1, 256])
        assert vs.full_data_trace == pytest.approx(res.trace, rel=1e-10)


# --------------------------------------------------------------------------- bad inputs

def test_bad_inputs():
    U, V, X, Y = tiny()
    s = pt.DropConnect(0.3, "output")
    with pytest.raises(TypeError, match="strategy"):
        gradient_noise("dropout", U, V, X, Y)
    with pytest.raises(ValueError, match="same number of columns"):
        gradient_noise(s, U[:, :1], V, X, Y)
    with pytest.raises(ValueError, match="X_batch"):
        gradient_noise(s, U, V, X[:2], Y)
    with pytest.raises(ValueError, match="samples"):
        gradient_noise(s, U, V, X, Y[:, :2])
    with pytest.raises(ValueError, match="non-finite"):
        gradient_noise(s, U, V, np.full_like(X, np.nan), Y)
    with pytest.raises(ValueError, match="method"):
        gradient_noise(s, U, V, X, Y, method="magic")
    with pytest.raises(TypeError, match="local_reparameterization"):
        gradient_noise(s, U, V, X, Y, local_reparameterization="yes")
    with pytest.raises(ValueError, match="local_reparameterization"):
        gradient_noise(s, U, V, X, Y, local_reparameterization=True)
    with pytest.raises(ValueError, match="local_reparameterization"):
        gradient_noise(pt.PerNodeDrop(0.3, "both", "gaussian"), U, V, X, Y, local_reparameterization=True)
    with pytest.raises(ValueError, match="HiddenNoise"):
        gradient_noise(pt.HiddenNoise(np.eye(2)), U, V, X, Y)
    with pytest.raises(ValueError, match="closed form covers"):
        gradient_noise(pt.DropConnect(0.3, "both"), U, V, X, Y, method="closed_form")
    with pytest.raises(ValueError, match="max_configurations"):
        gradient_noise(pt.DropConnect(0.3, "both"), U, V, X, Y, max_configurations=10)
    with pytest.raises(ValueError, match="batch_sizes"):
        gradient_noise_vs_batch_size(s, U, V, X, Y, [])
    with pytest.raises(ValueError, match="batch_sizes"):
        gradient_noise_vs_batch_size(s, U, V, X, Y, [0])
    with pytest.raises(ValueError, match="batch_sizes"):
        gradient_noise_vs_batch_size(s, U, V, X, Y, [4], sampling="first")
    with pytest.raises(ValueError, match="sampling"):
        gradient_noise_vs_batch_size(s, U, V, X, Y, [1], sampling="stratified")
    with pytest.raises(ValueError, match="draws"):
        monte_carlo_gradient_noise(s, U, V, X, Y, draws=10, groups=10)
    with pytest.raises(ValueError, match="groups"):
        monte_carlo_gradient_noise(s, U, V, X, Y, draws=10, groups=1)
    with pytest.raises(ValueError, match="via"):
        monte_carlo_gradient_noise(s, U, V, X, Y, via="jax")
    with pytest.raises(ValueError, match="via='layers'"):
        monte_carlo_gradient_noise(pt.PerNodeDrop(0.3, "input", "gaussian"), U, V, X, Y,
                                   local_reparameterization=True)
    with pytest.raises(ValueError, match="torch layer"):
        monte_carlo_gradient_noise(pt.HiddenNoise(np.eye(2)), U, V, X, Y, via="layers")
    with pytest.raises(ValueError, match="per-batch version"):
        mask_sharing_pair(pt.Dropout(0.3))
    with pytest.raises(ValueError, match="seeds"):
        stationary_spread(s, X, Y, 2, lr=0.01, steps=1, seeds=1)
    with pytest.raises(ValueError, match="lr"):
        stationary_spread(s, X, Y, 2, lr=-1.0, steps=1)
    with pytest.raises(ValueError, match="batch_size"):
        stationary_spread(s, X, Y, 2, lr=0.01, steps=1, batch_size=99)


# --------------------------------------------------------------------------- figure plumbing

def test_figure_writes_png_pdf_and_json_atomically(tmp_path, monkeypatch):
    """The figure script's writing path, with its (slow) computation replaced by a stub."""
    fig_mod = pytest.importorskip("paper_figures.fig_gradient_noise")
    B = [1, 2, 4]
    layer = {"per_sample": [3.0, 1.5, 0.75], "per_batch": [3.0, 2.0, 1.5], "full_data_trace": 1.0,
             "mc_per_sample": {"trace": [3.1, 0.7], "se": [0.1, 0.05]},
             "mc_per_batch": {"trace": [2.9, 1.4], "se": [0.1, 0.05]}}
    local = {"exact": [3.0, 1.5, 0.75], "local": [2.0, 1.0, 0.5], "mc_exact": {"trace": [3.0, 0.8], "se": [0.1, 0.1]},
             "mc_local": {"trace": [2.0, 0.5], "se": [0.1, 0.1]}}
    stub = {"batch_sizes": B, "monte_carlo": {"batch_sizes": [1, 4]}, "problem": {"p": 0.3},
            "layers": {"output": layer, "input": layer}, "local_reparameterization": {"output": local, "input": local}}
    monkeypatch.setattr(fig_mod, "compute", lambda quick=False, device=None: dict(stub))
    paths = fig_mod.make(tmp_path, quick=True)
    assert sorted(p.name for p in paths) == ["gradient_noise.json", "gradient_noise.pdf", "gradient_noise.png"]
    assert json.loads((tmp_path / "gradient_noise.json").read_text())["batch_sizes"] == B
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temp files left


def test_monte_carlo_of_large_gradients_keeps_a_finite_error_and_says_when_they_overflow():
    U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=6, seed=0)
    c = 1e50  # gradients of size ~1e100: their variances ~1e200 are finite, their squares are not
    exact = pt.gradient_noise(pt.Dropout(0.3), U * c, V, X, Y).trace
    mc = pt.monte_carlo_gradient_noise(pt.Dropout(0.3), U * c, V, X, Y, draws=400, groups=10, progress=False)
    assert np.isfinite(mc.trace_se) and 0 < mc.trace_se < mc.trace
    assert abs(mc.trace - exact) < 5 * mc.trace_se
    with pytest.warns(RuntimeWarning, match="overflow the float range, so the trace and its standard error are"):
        mc = pt.monte_carlo_gradient_noise(pt.Dropout(0.3), U * 1e80, V, X, Y, draws=40, groups=4, progress=False)
    assert mc.trace == mc.trace_se == np.inf
    with pytest.raises(pt.InvalidParameterError, match="U, V, X_batch, Y_batch must have scales whose gradients"):
        pt.monte_carlo_gradient_noise(pt.Dropout(0.3), U, V, X * 1e200, Y, draws=40, groups=4, progress=False)


def test_batch_size_curves_of_overflowing_traces_are_inf_never_nan():
    U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=6, seed=0)
    with pytest.warns(RuntimeWarning):
        r = pt.gradient_noise_vs_batch_size(pt.Dropout(0.3), U * 1e100, V, X, Y, [1, 2, 5])
    assert np.all(r.trace == np.inf) and r.correlation is None
    with pytest.raises(pt.InvalidParameterError, match=r"batch_sizes must be positive integers below 2\^62"):
        pt.gradient_noise_vs_batch_size(pt.Dropout(0.3), U, V, X, Y, [10**30])
    with pytest.raises(pt.InvalidParameterError, match=r"batch_sizes \(largest 10000000000000\) must be sizes"):
        pt.monte_carlo_gradient_noise_vs_batch_size(pt.Dropout(0.3), U, V, X, Y, [10**13], progress=False)
    with pytest.raises(pt.InvalidParameterError, match=r"draws=100000000000 .* must be sizes whose gradient draws"):
        pt.monte_carlo_gradient_noise(pt.Dropout(0.3), U, V, X, Y, draws=10**11, progress=False)
    with pytest.raises(pt.InvalidParameterError, match=r"draws must be a positive integer at most 2\^40"):
        pt.monte_carlo_gradient_noise(pt.Dropout(0.3), U, V, X, Y, draws=10**13, progress=False)
