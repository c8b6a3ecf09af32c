"""Y-Drop: the rule, the layer, the self-consistent optimum and training that lands on it.

The rule is checked against a hand computation with scipy's logistic function and numpy's
standard deviation; the importance against the conductance summed by einsum; the layer's drop
frequencies against its rates within 5 standard errors.  The self-consistent optimum found by
damped iteration with continuation is checked against an independent route (scipy's
least_squares on the residual T(p) - p, from other starts), against the exchange lemma it rests
on, against Dropout at the same mean rate, and against Y-Drop training from three seeds
(objective within 1%, rates within 2%).
"""

import numpy as np
import pytest
import torch
from scipy.optimize import least_squares
from scipy.special import expit

import pnd_theory as pt
from pnd_theory.nn import YDrop
from pnd_theory.nn.ydrop import conductance, unit_importance, ydrop_rates
from pnd_theory.studies.ydrop_fixed_point import train_ydrop, ydrop_fixed_point, ydrop_map

torch.set_num_threads(1)

P = 0.5
WIDTH = 4


@pytest.fixture(scope="module")
def problem():
    _, _, X, Y = pt.random_problem(n_in=3, width=WIDTH, n_out=3, n_samples=64, seed=0)
    return X, Y


@pytest.fixture(scope="module")
def fixed_point(problem):
    X, Y = problem
    return ydrop_fixed_point(X, Y, WIDTH, P)


def test_rule_matches_hand_computation():
    imp = np.array([0.3, 1.2, 0.7, 0.1, 0.9])
    z = (imp - imp.mean()) / (imp.std(ddof=1) + 1e-6)
    kappa = 1.0 - expit(z)
    expected = 1.0 - np.clip(0.5 * kappa / kappa.mean(), 0.05, 1.0)
    got = ydrop_rates(imp, 0.5)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    assert abs(got.mean() - 0.5) < 1e-12          # the clip does not bind here: mean rate is p
    assert np.all(np.diff(got[np.argsort(imp)]) > 0)  # more important, dropped more often
    t = ydrop_rates(torch.tensor(imp), 0.5)
    assert torch.is_tensor(t)
    np.testing.assert_allclose(t.numpy(), expected, rtol=1e-13, atol=1e-15)
    clipped = ydrop_rates(imp, 0.3)  # keep probabilities above 1 are clipped: no negative rate
    np.testing.assert_allclose(clipped, 1.0 - np.clip(0.7 * kappa / kappa.mean(), 0.05, 1.0), rtol=1e-13, atol=1e-15)
    assert clipped.min() == 0.0


def test_rule_equal_importances_give_the_mean_rate():
    np.testing.assert_allclose(ydrop_rates(np.full(6, 2.5), 0.4), np.full(6, 0.4), rtol=0, atol=1e-15)


def test_importance_is_rms_conductance(problem):
    X, _ = problem
    rng = np.random.default_rng(3)
    U, V = rng.normal(size=(3, WIDTH)), rng.normal(size=(3, WIDTH))
    C = conductance(U, V, X)
    by_einsum = np.sqrt(np.einsum("kci,kci->i", C, C) / X.shape[1])
    S = X @ X.T / X.shape[1]
    closed = np.linalg.norm(U, axis=0) * np.sqrt(np.einsum("ji,jk,ki->i", V, S, V))
    np.testing.assert_allclose(unit_importance(U, V, X), by_einsum, rtol=1e-13)
    np.testing.assert_allclose(by_einsum, closed, rtol=1e-12)
    np.testing.assert_allclose(C[5, 1, 2], U[1, 2] * V[:, 2] @ X[:, 5], rtol=1e-13)


def test_layer_drops_at_its_rates_with_mean_one_masks():
    layer = YDrop(4, 0.5, beta=0.0, generator=torch.Generator().manual_seed(0))
    imp = torch.tensor([0.1, 0.5, 1.0, 2.0], dtype=torch.float64)
    layer.update(imp)
    rates = layer.rates.clone()
    np.testing.assert_allclose(rates.numpy(), ydrop_rates(imp.numpy(), 0.5), rtol=1e-14)
    h = torch.ones(40_000, 4, dtype=torch.float64)
    out = layer.train()(h)
    dropped = (out == 0).double().mean(dim=0)
    se = torch.sqrt(rates * (1 - rates) / h.shape[0])
    assert torch.all((dropped - rates).abs() < 5 * se)
    kept = out[out != 0].reshape(-1)
    assert torch.allclose(out.max(dim=0).values, 1 / (1 - rates))
    assert kept.numel() > 0
    assert torch.equal(layer.eval()(h), h)


def test_layer_running_average():
    layer = YDrop(3, 0.3, beta=0.9)
    imp = np.array([1.0, 2.0, 4.0])
    layer.update(imp)
    np.testing.assert_allclose(layer.rates.numpy(), 0.9 * 0.3 + 0.1 * ydrop_rates(imp, 0.3), rtol=1e-14)


@pytest.mark.parametrize("kwargs", [dict(width=1), dict(width=3, p=1.0), dict(width=3, beta=1.0),
                                    dict(width=3, p=0.5, rate_range=(0.6, 0.9)), dict(width=3, eps=0.0)])
def test_layer_refuses_bad_arguments(kwargs):
    with pytest.raises(pt.InvalidParameterError):
        YDrop(**kwargs)


def test_exchange_lemma_orders_contributions_against_rates(problem):
    """At an optimum of NodeDropout a unit with a higher rate never carries more."""
    X, Y = problem
    rates = np.array([0.2, 0.7, 0.45, 0.6])
    _, _, (U, V) = ydrop_map(rates, X, Y, WIDTH, P)
    c = unit_importance(U, V, X)
    order = np.argsort(rates)
    assert np.all(np.diff(c[order]) <= 1e-12 * c.max())


def test_fixed_point_converges_to_uniform_rates(fixed_point):
    assert fixed_point.converged and fixed_point.residual <= 1e-9
    np.testing.assert_allclose(fixed_point.rates, np.full(WIDTH, P), rtol=0, atol=1e-9)


def test_fixed_point_agrees_with_least_squares_on_the_residual(problem, fixed_point):
    """Independent route: Gauss-Newton on T(p) - p, with its own continuation in eps."""
    X, Y = problem

    def residual(r, eps):
        return ydrop_map(r, X, Y, WIDTH, P, eps=eps)[0] - r

    for start in ([0.1, 0.9, 0.3, 0.3], [0.7, 0.6, 0.2, 0.5]):
        x = np.array(start)
        for eps in (1e-2, 1e-6):
            x = least_squares(residual, x, args=(eps,), bounds=(0.0, 0.95), xtol=1e-15, ftol=1e-15,
                              gtol=1e-15, max_nfev=200).x
        assert np.max(np.abs(residual(x, 1e-6))) < 1e-8
        np.testing.assert_allclose(x, fixed_point.rates, rtol=0, atol=1e-8)


def test_fixed_point_is_dropout_at_the_mean_rate(problem, fixed_point):
    X, Y = problem
    dropout = pt.global_minimizer(pt.Dropout(P), X, Y, WIDTH)
    m = fixed_point.minimizer
    np.testing.assert_allclose(m.objective, dropout.objective, rtol=1e-12)
    np.testing.assert_allclose(m.penalty, dropout.penalty, rtol=1e-9)
    np.testing.assert_allclose(m.singular_values, dropout.singular_values, rtol=1e-9, atol=1e-12)
    assert m.rank == dropout.rank
    S = pt.second_moment(X)
    theta = pt.induced_penalty(pt.Dropout(P), m.product, WIDTH, S)
    np.testing.assert_allclose(theta, m.penalty, rtol=1e-9)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_training_lands_on_the_fixed_point(problem, fixed_point, seed):
    X, Y = problem
    run = train_ydrop(X, Y, WIDTH, P, seed=seed)
    assert abs(run.objective / fixed_point.objective - 1) < 0.01
    np.testing.assert_allclose(run.rates, fixed_point.rates, rtol=0.02)


def test_fixed_point_checks_every_stage_and_other_mean_rates(problem):
    X, Y = problem
    start = ydrop_fixed_point(X, Y, WIDTH, P, rates0=[P] * WIDTH)
    assert [h["eps"] for h in start.history][-1] == 1e-6 and len(start.history) == 8
    assert start.iterations == len(start.history)  # one evaluation of T per stage, none skipped
    other = ydrop_fixed_point(X, Y, WIDTH, 0.3, rates0=[0.1, 0.2, 0.4, 0.5])
    assert other.converged
    np.testing.assert_allclose(other.rates, np.full(WIDTH, 0.3), rtol=0, atol=1e-9)


@pytest.mark.parametrize("call", [
    lambda X, Y: ydrop_rates("x"),
    lambda X, Y: ydrop_rates([1.0, np.nan]),
    lambda X, Y: ydrop_rates([1.0, 2.0], p=1.5),
    lambda X, Y: conductance(np.ones((2, 3)), np.ones((3, 4)), X),
    lambda X, Y: unit_importance(np.ones((2, 3)), None, hidden=np.ones((5, 4))),
    lambda X, Y: ydrop_map([0.5] * 3, X, Y, WIDTH),
    lambda X, Y: ydrop_fixed_point(X, Y, 1),
    lambda X, Y: ydrop_fixed_point(X, Y, WIDTH, tol=-1.0),
    lambda X, Y: train_ydrop(X, Y, WIDTH, lr=0.0),
], ids=["rates-text", "rates-nan", "rates-p", "conductance-shape", "importance-shape", "map-rates", "width",
        "tol", "lr"])
def test_refuses_bad_arguments(problem, call):
    with pytest.raises(pt.InvalidParameterError):
        call(*problem)


# ----------------------------------------------------------------------------
# importance measures
# ----------------------------------------------------------------------------
def test_every_importance_measure_is_its_aggregation_of_the_conductance(problem):
    X, _ = problem
    rng = np.random.default_rng(4)
    U, V = rng.normal(size=(3, WIDTH)), rng.normal(size=(3, WIDTH))
    C = conductance(U, V, X)  # (N, n_out, d)
    by_hand = {"rms": np.sqrt((C**2).sum(1).mean(0)), "mean_abs": np.abs(C).sum(1).mean(0),
               "abs_mean": np.abs(C.sum(1).mean(0))}
    for measure, expected in by_hand.items():
        np.testing.assert_allclose(unit_importance(U, V, X, measure=measure), expected, rtol=1e-12)
        on_torch = unit_importance(torch.tensor(U), None, hidden=torch.tensor(X.T @ V), measure=measure)
        np.testing.assert_allclose(on_torch.numpy(), expected, rtol=1e-12)


def test_flipping_a_unit_changes_no_conductance_and_no_importance(problem):
    """(u_i, v_i) -> (-u_i, -v_i): Y_ci = U_ci v_i^T x keeps its sign, so even the signed sum does."""
    X, _ = problem
    rng = np.random.default_rng(5)
    U, V = rng.normal(size=(3, WIDTH)), rng.normal(size=(3, WIDTH))
    flip = np.array([1.0, -1.0, 1.0, -1.0])
    np.testing.assert_array_equal(conductance(U * flip, V * flip, X), conductance(U, V, X))
    signed = conductance(U, V, X).sum(axis=(0, 1))
    np.testing.assert_array_equal(conductance(U * flip, V * flip, X).sum(axis=(0, 1)), signed)
    for measure in ("rms", "mean_abs", "abs_mean"):
        np.testing.assert_allclose(unit_importance(U * flip, V * flip, X, measure=measure),
                                   unit_importance(U, V, X, measure=measure), rtol=1e-15)


@pytest.mark.parametrize("measure", ["mean_abs", "abs_mean"])
def test_uniform_rates_are_a_fixed_point_for_rms_only(problem, fixed_point, measure):
    """At the Dropout optimum the contributions c_i are equal (rms: T(uniform) = uniform); the other
    measures see the factors' directions: one step spreads the rates (0.52 and 0.45 measured) and the
    iteration finds no fixed point (residual 0.28 and 0.25 measured)."""
    X, Y = problem
    rms, _, _ = ydrop_map([P] * WIDTH, X, Y, WIDTH, P)
    np.testing.assert_allclose(rms, P, rtol=0, atol=1e-8)
    step, _, _ = ydrop_map([P] * WIDTH, X, Y, WIDTH, P, measure=measure)
    assert step.max() - step.min() > 0.3
    other = ydrop_fixed_point(X, Y, WIDTH, P, measure=measure)
    assert not other.converged and other.residual > 1e3 * (other.resolution + 1e-9)
    assert fixed_point.converged and fixed_point.measure == "rms"


def test_an_exactly_uniform_answer_at_p_0_1_is_reported_converged():
    """The residual there (1.04e-9 measured) is the rounding of equal importances amplified by 1/eps,
    just above tol = 1e-9 and far below the map's resolution (1.8e-7)."""
    _, _, X, Y = pt.random_problem(n_in=4, width=3, n_out=3, n_samples=64, seed=0)
    r = ydrop_fixed_point(X, Y, 3, 0.1)
    assert r.rates.max() - r.rates.min() < 1e-15  # uniform to rounding
    np.testing.assert_allclose(r.rates, 0.1, rtol=0, atol=1e-8)
    assert r.residual > 1e-9  # the case: the plain test would have said not converged
    assert r.converged and r.residual <= r.resolution + 1e-9 and r.resolution < 1e-6


def test_layer_uses_its_measure_and_refuses_others():
    layer = YDrop(3, 0.5, beta=0.0, measure="abs_mean").train()
    h = torch.tensor([[1.0, 2.0, -1.0], [3.0, 0.5, 1.0]], dtype=torch.float64)
    U = torch.tensor([[1.0, -1.0, 2.0], [0.5, 1.0, -1.0]], dtype=torch.float64)
    layer(h, output_weight=U)
    expected = ydrop_rates(unit_importance(U, None, hidden=h, measure="abs_mean"), 0.5)
    torch.testing.assert_close(layer.rates, expected, rtol=1e-12, atol=0)
    assert "abs_mean" in repr(layer)
    with pytest.raises(pt.InvalidParameterError, match="measure"):
        YDrop(3, measure="mean")
    with pytest.raises(pt.InvalidParameterError, match="measure"):
        unit_importance(U, None, hidden=h, measure="signed")
