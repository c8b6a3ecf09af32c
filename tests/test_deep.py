"""Deep linear networks: closed form, enumeration, Monte Carlo and symbolic routes at any depth.

Every route is held against an independent one: at depth 2 the single-layer API; at depths 3
and 4 exact enumeration over the masks (to rounding), Monte Carlo with real sampled masks
(within 5 standard errors, fixed seeds) and the path expansion in sympy (to rounding).
Rounding tolerances are relative, a few hundred float64 ulps of values of order one to ten.
"""

import importlib
import itertools
import json

import numpy as np
import pytest
import torch

import pnd_theory as pt
from pnd_theory import deep

from conftest import STRATEGIES, make_problem

RTOL = 1e-12
Z_MAX = 5  # standard errors


def single_layer_as_deep(strategy, n_in, width, n_out):
    """The deep description (hidden, weight_noise) of a single-layer strategy, read from its law."""
    law = strategy.law(n_in, width, n_out)
    hidden = [strategy if law.hidden is not None else None]
    weight_noise = [None, None]
    for i, comp in enumerate((law.input, law.output)):
        if comp is not None:
            weight_noise[i] = comp.single_law if law.per_sample else (comp.single_law, "shared")
    return hidden, weight_noise


def correlated(rng, sizes, n_samples=5):
    mix = np.eye(sizes[0]) + 0.6 * rng.normal(size=(sizes[0], sizes[0]))
    X = mix @ rng.normal(size=(sizes[0], n_samples))
    Y = rng.normal(size=(sizes[-1], n_samples))
    Ws = [rng.normal(size=(sizes[l + 1], sizes[l])) / np.sqrt(sizes[l]) for l in range(len(sizes) - 1)]
    return Ws, X, Y


THREE_POINT = pt.DiscreteLaw([0.0, 0.5, 2.0], [0.2, 0.4, 0.4])

# (name, sizes, hidden, weight_noise): unit noise on every hidden layer, weight noise on an inner
# matrix, and both together, at depths 3 and 4
CASES = [
    ("units-3", (3, 2, 2, 2), [pt.Dropout(0.3), pt.GaussianDropout(0.2)], None),
    ("weights-3", (3, 2, 2, 2), None, [None, pt.Bernoulli(0.3), None]),
    ("both-3", (3, 2, 2, 2), [pt.UnitNoise(THREE_POINT), pt.Dropout(0.25)], [None, (pt.Gaussian(0.3), "shared"), None]),
    ("units-4", (2, 2, 2, 2, 2), [pt.Dropout(0.3), pt.UnitNoise(pt.Uniform(0.5, 1.5)), pt.GaussianDropout(0.4)], None),
    ("weights-4", (2, 2, 2, 2, 2), None, [None, None, THREE_POINT, None]),
    ("both-4", (2, 2, 2, 2, 2), [pt.Dropout(0.2), pt.Dropout(0.4), pt.Dropout(0.3)],
     [None, (pt.Bernoulli(0.2), "shared"), None, None]),
    ("blocks-3", (2, 4, 2, 2), [pt.DropBlock(0.3, 2), pt.HiddenNoise(np.array([[0.3, 0.1], [0.1, 0.2]]))],
     [None, pt.Gaussian(0.2), None]),
]


# ----------------------------------------------------------------- depth 2 = the single-layer API

@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_depth_two_equals_single_layer(strategy, rng):
    U, V, X, Y = make_problem(rng, n_in=2, width=4, n_out=1)
    n_in, width, n_out = V.shape[0], U.shape[1], U.shape[0]
    hidden, weight_noise = single_layer_as_deep(strategy, n_in, width, n_out)
    weights = [V.T, U]
    S = pt.second_moment(X)
    kw = dict(hidden=hidden, weight_noise=weight_noise)
    np.testing.assert_allclose(deep.expected_loss(weights, X, Y, **kw), pt.expected_loss(strategy, U, V, X, Y),
                               rtol=RTOL)
    np.testing.assert_allclose(deep.expected_penalty(weights, S, **kw), pt.expected_penalty(strategy, U, V, S),
                               rtol=RTOL)
    np.testing.assert_allclose(deep.expected_penalty(weights, **kw), pt.expected_penalty(strategy, U, V), rtol=RTOL)
    np.testing.assert_allclose(deep.exact_expected_loss(weights, X, Y, **kw),
                               pt.exact_expected_loss(strategy, U, V, X, Y), rtol=RTOL)
    est, se = deep.monte_carlo_loss(weights, X, Y, 4000, seed=3, **kw)
    assert abs(est - pt.expected_loss(strategy, U, V, X, Y)) < Z_MAX * se


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_depth_two_symbolic_equals_single_layer(strategy, rng):
    U, V, X, Y = make_problem(rng, n_in=2, width=4, n_out=1)
    hidden, weight_noise = single_layer_as_deep(strategy, 2, 4, 1)
    S = pt.second_moment(X)
    d = deep.derive((2, 4, 1), hidden=hidden, weight_noise=weight_noise)
    np.testing.assert_allclose(d.penalty_function()([V.T, U], S), pt.expected_penalty(strategy, U, V, S), rtol=1e-10)


# ----------------------------------------------------------------- depths 3 and 4

@pytest.mark.parametrize("name,sizes,hidden,weight_noise", CASES, ids=[c[0] for c in CASES])
def test_closed_form_equals_enumeration_and_monte_carlo(name, sizes, hidden, weight_noise, rng):
    Ws, X, Y = correlated(rng, sizes)
    kw = dict(hidden=hidden, weight_noise=weight_noise)
    closed = deep.expected_loss(Ws, X, Y, **kw)
    exact = deep.exact_expected_loss(Ws, X, Y, **kw)
    np.testing.assert_allclose(closed, exact, rtol=RTOL)
    assert closed - deep.plain_loss(Ws, X, Y) > 1e-3  # the noise is there
    est, se = deep.monte_carlo_loss(Ws, X, Y, 20000, seed=11, **kw)
    assert abs(est - exact) < Z_MAX * se


@pytest.mark.parametrize("name,sizes,hidden,weight_noise", CASES[:6], ids=[c[0] for c in CASES[:6]])
def test_symbolic_equals_numeric(name, sizes, hidden, weight_noise, rng):
    kw = dict(hidden=hidden, weight_noise=weight_noise)
    Ws, X, _ = correlated(rng, sizes)
    S = pt.second_moment(X)
    d = deep.derive(sizes, **kw)
    f = d.penalty_function()
    for _ in range(3):
        Ws = [rng.normal(size=W.shape) for W in Ws]
        np.testing.assert_allclose(f(Ws, S), deep.expected_penalty(Ws, S, **kw), rtol=1e-10)


def test_latex_states_the_compact_sum():
    d = deep.derive((2, 2, 2, 2), hidden=[pt.Dropout(0.3), pt.Dropout(0.2)], weight_noise=[None, pt.Bernoulli(0.1), None])
    text = d.latex()
    assert text.startswith("R = ") and r"\Phi" in text and r"\lambda" in text
    c = d.compact()
    # Phi[h1, h2] and Phi[W2] are one term (a noise operator next to a noisy matrix changes nothing)
    merged = next(t for t in c.terms if ("W2",) in t["equivalent"])
    assert ("h1", "h2") in merged["equivalent"] and merged["name"] == "l2-path"


def test_compact_form_names_the_l2_path_term():
    lam = [0.3 / 0.7, 0.2 / 0.8, 0.4 / 0.6]
    d = deep.derive((2, 2, 2, 2, 2), hidden=[pt.Dropout(0.3), pt.Dropout(0.2), pt.Dropout(0.4)])
    c = d.compact()
    assert len(c.terms) == 7  # every nonempty subset of the three hidden layers
    for term in c.terms:
        layers = [int(s[1:]) - 1 for s in term["sites"]]
        value = float(term["coefficient"].subs({s: lam[int(str(s)[-1]) - 1] for s in term["coefficient"].free_symbols}))
        np.testing.assert_allclose(value, np.prod([lam[i] for i in layers]), rtol=1e-12)
    path = c.l2_path()
    assert path["sites"] == ("h1", "h2", "h3")
    assert [t["name"] for t in c.terms].count("l2-path") == 1
    # the l2-path term is the sum over paths of the squared weights, S at the input
    rng = np.random.default_rng(0)
    Ws = [rng.normal(size=(2, 2)) for _ in range(4)]
    B = rng.normal(size=(2, 2))
    S = B @ B.T
    subs = {s: v for Wsym, W in zip(d.symbols["weights"], Ws) for s, v in zip(Wsym, W.ravel())}
    subs.update({d.symbols["S"][i, j]: S[i, j] for i in range(2) for j in range(2)})
    G = Ws[0] @ S @ Ws[0].T
    psi = sum(Ws[3][o, c] ** 2 * Ws[2][c, b] ** 2 * Ws[1][b, a] ** 2 * G[a, a]
              for o in range(2) for c in range(2) for b in range(2) for a in range(2))
    np.testing.assert_allclose(float(path["expression"].subs(subs)), psi, rtol=1e-12)


def test_torch_inputs_keep_backend_and_gradients(rng):
    sizes = (3, 2, 2, 2)
    Ws, X, Y = correlated(rng, sizes)
    kw = dict(hidden=[pt.Dropout(0.3), pt.Dropout(0.2)], weight_noise=[None, pt.Bernoulli(0.3), None])
    Wt = [torch.tensor(W, requires_grad=True) for W in Ws]
    value = deep.expected_loss(Wt, torch.as_tensor(X), torch.as_tensor(Y), **kw)
    assert torch.is_tensor(value) and value.dim() == 0
    np.testing.assert_allclose(float(value.detach()), deep.expected_loss(Ws, X, Y, **kw), rtol=RTOL)
    value.backward()
    # central differences of the numpy route
    h = 1e-6
    for l, (W, Wg) in enumerate(zip(Ws, Wt)):
        E = np.zeros_like(W)
        E[0, 1] = h
        plus = [w + E if k == l else w for k, w in enumerate(Ws)]
        minus = [w - E if k == l else w for k, w in enumerate(Ws)]
        fd = (deep.expected_loss(plus, X, Y, **kw) - deep.expected_loss(minus, X, Y, **kw)) / (2 * h)
        np.testing.assert_allclose(float(Wg.grad[0, 1]), fd, rtol=1e-6, atol=1e-8)


def _joint_enumeration(Ws, X, Y, values, probs, shared):
    """E[loss] with Bernoulli-like weight masks on W_1 only, enumerated jointly over the masks of
    every sample (independent per sample) or over one mask for all samples (shared), in plain
    numpy: the masked network is written out here, apart from the package."""
    n1, n0 = Ws[0].shape
    N = X.shape[1]
    k = n1 * n0 * (1 if shared else N)
    total = 0.0
    for config in itertools.product(range(len(values)), repeat=k):
        prob = np.prod([probs[c] for c in config])
        masks = np.array([values[c] for c in config]).reshape((1 if shared else N), n1, n0)
        loss = 0.0
        for j in range(N):
            h = (Ws[0] * masks[0 if shared else j]) @ X[:, j]
            for W in Ws[1:]:
                h = W @ h
            loss += np.sum((Y[:, j] - h) ** 2) / N
        total += prob * loss
    return total


def test_shared_and_per_sample_masks_have_the_same_expected_loss(rng):
    sizes = (2, 2, 2)
    Ws, X, Y = correlated(rng, sizes, n_samples=2)
    law = pt.Bernoulli(0.4)
    values, probs = law.support(2)
    per_sample = _joint_enumeration(Ws, X, Y, values, probs, shared=False)
    shared = _joint_enumeration(Ws, X, Y, values, probs, shared=True)
    closed = deep.expected_loss(Ws, X, Y, weight_noise=[law, None])
    np.testing.assert_allclose(per_sample, closed, rtol=RTOL)
    np.testing.assert_allclose(shared, closed, rtol=RTOL)
    np.testing.assert_allclose(deep.expected_loss(Ws, X, Y, weight_noise=[(law, "shared"), None]), closed, rtol=RTOL)
    assert abs(closed - deep.plain_loss(Ws, X, Y)) > 1e-3
    # real masks drawn once per batch, deeper
    Ws, X, Y = correlated(rng, (2, 2, 2, 2), n_samples=4)
    kw = dict(weight_noise=[None, (pt.Bernoulli(0.4), "shared"), (pt.Bernoulli(0.2), "shared")])
    est, se = deep.monte_carlo_loss(Ws, X, Y, 20000, seed=5, **kw)
    assert abs(est - deep.expected_loss(Ws, X, Y, **kw)) < Z_MAX * se


# ----------------------------------------------------------------- induced regularizer and optimum

def test_induced_regularizer_depth_two_is_the_single_layer_closed_form(rng):
    A = rng.normal(size=(3, 3))
    B = np.eye(3) + 0.5 * rng.normal(size=(3, 3))
    S = B @ B.T / 3
    r = deep.induced_penalty(A, [4], hidden=[pt.Dropout(0.3)], second_moment=S, starts=2)
    closed = pt.induced_penalty(pt.Dropout(0.3), A, 4, S)
    np.testing.assert_allclose(r.value, closed, rtol=1e-8)
    np.testing.assert_allclose(r.envelope, closed, rtol=1e-12)
    np.testing.assert_allclose(deep.mean_map(r.weights), A, atol=1e-10)
    Ws = deep.equalized_factors(A, [4], S, hidden=[pt.Dropout(0.3)])
    np.testing.assert_allclose(deep.mean_map(Ws), A, atol=1e-10)
    np.testing.assert_allclose(deep.expected_penalty(Ws, S, hidden=[pt.Dropout(0.3)]), closed, rtol=1e-10)


def test_induced_regularizer_lies_above_its_envelope_and_rank_one_attains_it(rng):
    p = 0.3
    hidden = [pt.Dropout(p)] * 2
    nu = deep.envelope_coefficient((3, 4, 4, 3), hidden=hidden)
    np.testing.assert_allclose(nu, (1 + p / (1 - p) / 4) ** 2 - 1, rtol=1e-14)
    A = rng.normal(size=(3, 3))
    r = deep.induced_penalty(A, [4, 4], hidden=hidden, starts=3)
    assert r.value >= r.envelope * (1 - 1e-9)
    assert r.spread < 1e-6 * r.value
    np.testing.assert_allclose(deep.mean_map(r.weights), A, atol=1e-9)
    # a rank-one map: the equalized factorization attains the envelope
    B = np.eye(3) + 0.5 * rng.normal(size=(3, 3))
    S = B @ B.T / 3
    A1 = np.outer(rng.normal(size=3), rng.normal(size=3))
    Ws = deep.equalized_factors(A1, [4, 4], S)
    np.testing.assert_allclose(deep.mean_map(Ws), A1, atol=1e-12)
    sigma = np.linalg.svd(A1 @ np.linalg.cholesky(S), compute_uv=False)[0]
    np.testing.assert_allclose(deep.expected_penalty(Ws, S, hidden=hidden), nu * sigma**2, rtol=1e-12)


def test_global_minimizer_closed_form_and_numeric_agree():
    U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=3, n_samples=64, seed=1)
    r = deep.global_minimizer(X, Y, [4, 4], hidden=[pt.Dropout(0.7)] * 2, starts=2, max_iter=2000)
    assert r.method == "closed_form"
    np.testing.assert_allclose(r.values[0], r.objective, rtol=1e-7)
    np.testing.assert_allclose(r.lower_bound, r.objective, rtol=1e-12)
    assert np.sum(r.singular_values > 1e-8) == 1
    # depth 2: the single-layer global minimizer
    r2 = deep.global_minimizer(X, Y, [4], hidden=[pt.Dropout(0.3)], starts=2, max_iter=2000)
    np.testing.assert_allclose(r2.objective, pt.global_minimizer(pt.Dropout(0.3), X, Y, 4).objective, rtol=1e-8)


# ----------------------------------------------------------------- training with sampled masks

def _training_check(device):
    U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=3, n_samples=64, seed=1)
    kw = dict(hidden=[pt.Dropout(0.3), pt.Dropout(0.3)], weight_noise=[None, pt.Bernoulli(0.2), None])
    opt = deep.global_minimizer(X, Y, [4, 4], starts=2, max_iter=500, **kw)
    assert opt.values[-1] - opt.values[0] < 1e-8 * opt.objective  # both starts end on one optimum
    for seed in (0, 1, 2):
        r = deep.train(X, Y, [4, 4], epochs=2000, lr=0.01, seed=seed, device=device, **kw)
        assert abs(r.objective / opt.objective - 1) < 0.01
        top = opt.singular_values[0]
        assert np.max(np.abs(r.average_singular_values - opt.singular_values)) < 0.02 * top


def test_training_lands_on_the_optimum_cpu():
    _training_check("cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_training_lands_on_the_optimum_cuda():
    _training_check("cuda")


# ----------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("call", [
    lambda W, X, Y: deep.expected_loss(W[:1] + [np.ones((2, 5))] + W[2:], X, Y),  # shapes do not chain
    lambda W, X, Y: deep.expected_loss(W, X, Y, hidden=[pt.Dropout(0.3)]),  # one hidden entry for two layers
    lambda W, X, Y: deep.expected_loss(W, X, Y, hidden=[pt.PerNodeDrop(0.3), None]),  # weight noise as hidden
    lambda W, X, Y: deep.expected_loss(W, X, Y, hidden=[0.3, None]),
    lambda W, X, Y: deep.expected_loss(W, X, Y, hidden=[pt.DropBlock(0.3, 3), None]),  # block does not divide 2
    lambda W, X, Y: deep.expected_loss(W, X, Y, weight_noise=[None, pt.Dropout(0.3), None]),
    lambda W, X, Y: deep.expected_loss(W, X, Y, weight_noise=[None, (pt.Bernoulli(0.3), "batch"), None]),
    lambda W, X, Y: deep.expected_loss(W, X, Y, weight_noise=[None, None]),
    lambda W, X, Y: deep.expected_loss([], X, Y),
    lambda W, X, Y: deep.expected_loss(W, X[:2], Y),
    lambda W, X, Y: deep.expected_loss(W, X, Y[:1]),
    lambda W, X, Y: deep.expected_loss(W, X, Y[:, :3]),
    lambda W, X, Y: deep.expected_penalty(W, np.ones((3, 3)) - 2 * np.eye(3)),
    lambda W, X, Y: deep.exact_expected_loss(W, X, Y, weight_noise=[pt.Bernoulli(0.3)] * 3, max_configurations=100),
    lambda W, X, Y: deep.monte_carlo_loss(W, X, Y, 1),
    lambda W, X, Y: deep.monte_carlo_loss(W, X, Y, 10, seed=-1),
    lambda W, X, Y: deep.derive((3, 3, 3, 3, 3, 3)),
    lambda W, X, Y: deep.derive((3, 0, 2)),
    lambda W, X, Y: deep.envelope_coefficient((3, 2, 2, 2), hidden=[pt.DropBlock(0.3, 2), None]),
    lambda W, X, Y: deep.envelope_coefficient((3, 2, 2, 2), weight_noise=[pt.Bernoulli(0.3), None, None]),
    lambda W, X, Y: deep.equalized_factors(np.eye(2), [2, 2]),
    lambda W, X, Y: deep.induced_penalty(np.eye(3), [2, 2]),
    lambda W, X, Y: deep.train(X, Y, [2, 2], lr=-1.0),
    lambda W, X, Y: deep.global_minimizer(X, Y, "4"),
], ids=lambda f: "")
def test_bad_inputs_raise(call, rng):
    Ws, X, Y = correlated(rng, (3, 2, 2, 2))
    with pytest.raises(pt.InvalidParameterError):
        call(Ws, X, Y)


def test_refusal_names_the_size_before_any_work(rng):
    Ws, X, Y = correlated(rng, (3, 2, 2, 2))
    with pytest.raises(pt.InvalidParameterError, match="max_configurations"):
        deep.exact_expected_loss(Ws, X, Y, weight_noise=[pt.Gaussian(0.3)] * 3, max_configurations=2**10)


# ----------------------------------------------------------------- the figure

def test_figure_quick(tmp_path):
    import paper_figures

    module = importlib.import_module(paper_figures.FIGURES["deep"])
    paths = module.make(tmp_path, quick=True)
    assert {p.suffix for p in map(type(tmp_path), paths)} == {".png", ".pdf", ".json"}
    data = json.loads((tmp_path / "deep.json").read_text())
    assert data["quick"] is True
    for depth, e in data["induced"].items():
        env, val = np.asarray(e["envelope"]), np.asarray(e["induced"])
        assert np.all(val >= env * (1 - 1e-8))  # never below the envelope
        if depth == "2":
            np.testing.assert_allclose(val, env, rtol=1e-7)
