"""The explicit penalty of a torch model, each value held against a route computed apart: the
closed forms of the single-layer and deep linear networks, the two-layer ReLU form by hand, its
isotropic limit, a Hessian of the per-sample loss by autograd, enumeration over the masks, and
Monte Carlo with the layers' own masks."""

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import pnd_theory as pt
from pnd_theory.nn import GaussianDropout, PerNodeDropLinear
from pnd_theory.nn.table import network_for

ROUNDING = 1e-12
#: Monte Carlo estimates are held within this many standard errors
Z = 4.5


def _linear_problem(seed=0, n_in=4, d=4, n_out=3, N=30):
    rng = np.random.default_rng(seed)
    U, V = rng.normal(size=(n_out, d)), rng.normal(size=(n_in, d))
    X = rng.normal(size=(n_in, N)) * np.array([[1.0], [2.0], [0.5], [1.0]])
    X[1] += X[0]  # correlated inputs: input-layer weight noise differs from Dropout
    Y = rng.normal(size=(n_out, N))
    return U, V, X, Y


SINGLE_SITE = [pt.Dropout(0.3), pt.GaussianDropout(0.3), pt.DropBlock(0.3, 2), pt.NodeDropout([0.1, 0.2, 0.3, 0.4]),
               pt.PerNodeDrop(0.3, "input"), pt.PerNodeDrop(0.3, "output", stir="gaussian"),
               pt.DropConnect(0.3, "output"), pt.DropConnect(0.3, "input", per_sample=True)]


@pytest.mark.parametrize("strategy", SINGLE_SITE, ids=repr)
def test_single_layer_strategies_match_the_closed_form(strategy):
    U, V, X, Y = _linear_problem()
    net = network_for(strategy.law(4, 4, 3), U, V)
    r = pt.explicit_penalty(net, torch.tensor(X.T), torch.tensor(Y.T), samples=400, seed=1)
    closed = pt.expected_penalty(strategy, U, V, pt.second_moment(X))
    assert r.exact and r.method.startswith("exact")
    assert r.value == pytest.approx(closed, rel=ROUNDING)
    assert r.plain_loss == pytest.approx(pt.plain_loss(U, V, X, Y), rel=ROUNDING)
    assert abs(r.monte_carlo.estimate - closed) < Z * r.monte_carlo.standard_error
    assert net.training  # modes restored


def test_sites_in_sequence_are_second_order_and_the_monte_carlo_shows_the_product_term():
    """PerNodeDrop on both layers: the second order leaves out lam_U lam_V sum_j ||u_j||^2 v_j^T D v_j."""
    U, V, X, Y = _linear_problem()
    strategy = pt.PerNodeDrop(0.3, "both")
    net = network_for(strategy.law(4, 4, 3), U, V)
    r = pt.explicit_penalty(net, torch.tensor(X.T), torch.tensor(Y.T), samples=600, seed=2)
    lam = 0.3 / 0.7
    S = pt.second_moment(X)
    product = lam * lam * np.sum((U**2).sum(0) * np.einsum("ij,i,ij->j", V, np.diag(S), V))
    closed = pt.expected_penalty(strategy, U, V, S)
    assert not r.exact and [s.affine for s in r.sites] == [True, True]
    assert r.value == pytest.approx(closed - product, rel=ROUNDING)
    assert abs(r.monte_carlo.estimate - closed) < Z * r.monte_carlo.standard_error
    assert abs(r.error) > Z * r.monte_carlo.standard_error  # the approximation's error is in view


@pytest.mark.parametrize("noise", ["hidden", "weights"])
def test_deep_linear_network_matches_the_deep_closed_form(noise):
    rng = np.random.default_rng(3)
    sizes = [3, 5, 4, 2]
    Ws = [rng.normal(size=(sizes[k + 1], sizes[k])) for k in range(3)]
    X, Y = rng.normal(size=(3, 25)), rng.normal(size=(2, 25))
    layers = [nn.Linear(3, 5, bias=False), nn.Linear(5, 4, bias=False), nn.Linear(4, 2, bias=False)]
    if noise == "weights":
        layers[1] = PerNodeDropLinear(5, 4, p=0.25, stir="gaussian", bias=False)
        kw = dict(weight_noise=[None, pt.Gaussian(0.25), None])
        model = nn.Sequential(layers[0], layers[1], layers[2]).double()
    else:
        kw = dict(hidden=[None, pt.Dropout(0.4)])
        model = nn.Sequential(layers[0], layers[1], nn.Dropout(0.4), layers[2]).double()
    with torch.no_grad():
        for layer, W in zip(layers, Ws):
            layer.weight.copy_(torch.tensor(W))
    r = pt.explicit_penalty(model, torch.tensor(X.T), torch.tensor(Y.T), samples=0)
    closed = pt.deep.expected_loss(Ws, X, Y, **kw) - pt.deep.plain_loss(Ws, X, Y)
    assert r.exact and r.monte_carlo is None
    assert r.value == pytest.approx(closed, rel=ROUNDING)


def _relu_net(n_in, d, n_out, p, seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n_in, d, bias=False), nn.ReLU(), nn.Dropout(p),
                         nn.Linear(d, n_out, bias=False)).double()


def test_two_layer_relu_form_by_hand():
    """f = U diag(xi) relu(W x): R = lam sum_j ||u_j||^2 mean_i relu(w_j . x_i)^2, exactly."""
    net = _relu_net(5, 7, 3, 0.3, seed=4)
    X, Y = torch.randn(40, 5, dtype=torch.float64), torch.randn(40, 3, dtype=torch.float64)
    r = pt.explicit_penalty(net, X, Y, samples=1000, seed=5)
    W, U = net[0].weight.detach(), net[3].weight.detach()
    by_hand = 0.3 / 0.7 * float(((U**2).sum(0) * torch.relu(X @ W.T).pow(2).mean(0)).sum())
    assert r.exact and r.sites[0].affine and r.sites[0].curvature == 0
    assert r.value == pytest.approx(by_hand, rel=ROUNDING)
    assert abs(r.z) < Z


def test_isotropic_limit_of_arora_et_al():
    """Gaussian inputs: E relu(w . x)^2 = ||w||^2 / 2, so R -> (lam/2) sum_j ||u_j||^2 ||w_j||^2."""
    net = _relu_net(4, 6, 2, 0.5, seed=6)
    gen = torch.Generator().manual_seed(7)
    X = torch.randn(20000, 4, dtype=torch.float64, generator=gen)
    r = pt.explicit_penalty(net, X, torch.zeros(20000, 2, dtype=torch.float64), samples=0)
    W, U = net[0].weight.detach(), net[3].weight.detach()
    lam = 1.0
    limit = lam / 2 * float(((U**2).sum(0) * (W**2).sum(1)).sum())
    per_sample = lam * (torch.relu(X @ W.T).pow(2) * (U**2).sum(0)).sum(1)  # the sample mean's own spread
    se = float(per_sample.std()) / math.sqrt(len(X))
    assert abs(r.value - limit) < Z * se
    assert r.value != pytest.approx(limit, rel=1e-6)  # a sample mean, not the formula


def _exact_by_enumeration(net, X, Y, p, d):
    """E[loss] - loss(no noise) over all 2^d dropout masks of the one hidden site, written apart."""
    W1, b1, W2, b2, W3 = net[0].weight, net[0].bias, net[2].weight, net[2].bias, net[4].weight
    plain = ((torch.relu(X @ W1.T + b1) @ W2.T + b2).relu() @ W3.T - Y).pow(2).sum(1).mean()
    total = 0.0
    for keep in itertools.product([0, 1], repeat=d):
        k = torch.tensor(keep, dtype=torch.float64)
        prob = float(torch.prod(torch.where(k > 0, 1 - p, p)))
        h = torch.relu(X @ W1.T + b1) * k / (1 - p)
        total += prob * float(((h @ W2.T + b2).relu() @ W3.T - Y).pow(2).sum(1).mean())
    return total - float(plain)


def test_second_order_before_a_relu_against_enumeration_and_monte_carlo():
    """Dropout, then a linear map, then a ReLU: not affine in the masks.  The Monte Carlo holds the
    enumerated truth; the second-order value's error is reported at every p and grows with p."""
    torch.manual_seed(8)
    d = 5
    net = nn.Sequential(nn.Linear(3, d), nn.ReLU(), nn.Linear(d, 4), nn.ReLU(), nn.Linear(4, 2, bias=False)).double()
    X, Y = torch.randn(30, 3, dtype=torch.float64), torch.randn(30, 2, dtype=torch.float64)
    errors = []
    for p in (0.1, 0.3, 0.5):
        noisy = nn.Sequential(net[0], net[1], nn.Dropout(p), net[2], net[3], net[4])
        r = pt.explicit_penalty(noisy, X, Y, samples=1500, seed=9)
        with torch.no_grad():
            truth = _exact_by_enumeration(net, X, Y, p, d)
        assert not r.exact and not r.sites[0].affine and r.method.startswith("second order")
        assert abs(r.monte_carlo.estimate - truth) < Z * r.monte_carlo.standard_error
        errors.append(abs(r.value - truth))
    assert errors[0] < errors[1] < errors[2]


def _hessian_route(W1, b1, W2, b2, X, T, v, loss):
    """1/2 mean_i sum_j v ∂²l(f_i(m))/∂m_j² at m = 1, by autograd's full Hessian (written apart)."""
    total = 0.0
    for i in range(X.shape[0]):
        def per_sample(m):
            f = W2 @ torch.tanh((W1 @ X[i] + b1) * m) + b2
            if loss == "mse":
                return (f - T[i]).pow(2).sum()
            return torch.logsumexp(f, 0) - f[T[i]]
        H = torch.autograd.functional.hessian(per_sample, torch.ones(W1.shape[0], dtype=torch.float64))
        total += 0.5 * v * float(H.diagonal().sum())
    return total / X.shape[0]


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_second_order_of_a_smooth_network_against_its_hessian_and_monte_carlo(loss):
    """Gaussian noise before a tanh: the curvature term is nonzero; the value is the Hessian's,
    and at small noise the Monte Carlo agrees within its error (the next term is O(v^2))."""
    torch.manual_seed(10)
    p = 0.02
    net = nn.Sequential(nn.Linear(4, 6), GaussianDropout(p), nn.Tanh(), nn.Linear(6, 3)).double()
    X = torch.randn(40, 4, dtype=torch.float64)
    T = torch.randn(40, 3, dtype=torch.float64) if loss == "mse" else torch.randint(0, 3, (40,))
    r = pt.explicit_penalty(net, X, T, loss=loss, samples=3000, seed=11)
    with torch.no_grad():
        W1, b1, W2, b2 = net[0].weight, net[0].bias, net[3].weight, net[3].bias
    hessian = _hessian_route(W1, b1, W2, b2, X, T, p / (1 - p), loss)
    assert not r.exact and r.sites[0].curvature != 0
    assert r.value == pytest.approx(hessian, rel=1e-10)
    assert abs(r.z) < Z


def test_results_display_and_export():
    net = _relu_net(3, 4, 2, 0.2, seed=12)
    r = pt.explicit_penalty(net, torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 2, dtype=torch.float64),
                            samples=50, seed=0)
    assert repr(r).startswith("ExplicitPenalty(value=") and len(repr(r)) < 400
    assert "Bernoulli(p=0.2)" in r._repr_html_() and "<table>" in r._repr_html_()
    frame = r.to_dataframe()
    assert list(frame["site"]) == ["2"] and frame["value"][0] == r.value


def test_float32_model_on_its_own_dtype():
    net = _relu_net(3, 4, 2, 0.2, seed=13).float()
    X, Y = torch.randn(20, 3, dtype=torch.float64), torch.randn(20, 2, dtype=torch.float64)
    r32 = pt.explicit_penalty(net, X, Y, samples=0)
    r64 = pt.explicit_penalty(net.double(), X.float().double(), Y.float().double(), samples=0)
    assert r32.exact and r32.value == pytest.approx(r64.value, rel=1e-5)


@pytest.mark.parametrize("call, message", [
    (lambda net, X, Y: pt.explicit_penalty("net", X, Y), "model must be a torch.nn.Module"),
    (lambda net, X, Y: pt.explicit_penalty(nn.Linear(3, 2), X, Y), "model must be a model with a noise site"),
    (lambda net, X, Y: pt.explicit_penalty(nn.Sequential(nn.Dropout2d(0.1), nn.Linear(3, 2)), X, Y),
     "channel-wise"),
    (lambda net, X, Y: pt.explicit_penalty(net, X, Y, loss="l1"), "loss must be one of 'mse', 'cross_entropy'"),
    (lambda net, X, Y: pt.explicit_penalty(net, X, Y[:, :1]), "Y must be real targets"),
    (lambda net, X, Y: pt.explicit_penalty(net, X, Y[:5]), "Y must be as many samples as X"),
    (lambda net, X, Y: pt.explicit_penalty(net, X, Y, samples=1), "samples must be 0 (no Monte Carlo)"),
    (lambda net, X, Y: pt.explicit_penalty(net, X * float("nan"), Y), "X must be finite"),
    (lambda net, X, Y: pt.explicit_penalty(net, X, torch.tensor([0, 5] * 5), loss="cross_entropy"),
     "Y must be class labels in [0, 2)"),
    (lambda net, X, Y: pt.explicit_penalty(nn.Sequential(net[0], net[2], net[2], net[3]), X, Y),
     "run once per forward"),
])
def test_bad_input_is_refused_clearly(call, message):
    net = _relu_net(3, 4, 2, 0.2, seed=14)
    X, Y = torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 2, dtype=torch.float64)
    with pytest.raises(pt.InvalidParameterError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        call(net, X, Y)


def test_readme_quotes_the_benchmark_file():
    """The usage page's cost of one call (moved there from the README) is the range written by
    benchmarks/bench_explicit.py."""
    root = Path(__file__).resolve().parents[1]
    data = json.loads((root / "benchmarks/results/explicit.json").read_text())
    ratios = [row["penalty_over_forward"] for row in data["rows"]]
    text = f"costs {min(ratios):.1f}x to {max(ratios):.1f}x\none forward pass of the model"
    assert text in (root / "docs" / "usage.md").read_text()
    assert data["torch_threads"] == 1
