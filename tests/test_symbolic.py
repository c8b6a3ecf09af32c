"""Symbolic derivation: against the numeric penalty, exact enumeration, and itself."""

import numpy as np
import pytest
import sympy

import pnd_theory as pt
from pnd_theory.routes.symbolic import derive

from conftest import STRATEGIES, make_problem


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_symbolic_penalty_equals_numeric(strategy, rng):
    U, V, X, _ = make_problem(rng, n_in=3, width=4, n_out=2)
    S = pt.second_moment(X)
    derivation = derive(strategy, 3, 4, 2)
    f = derivation.penalty_function()
    np.testing.assert_allclose(f(U, V, S), pt.expected_penalty(strategy, U, V, S), rtol=1e-10)


@pytest.mark.parametrize("strategy", STRATEGIES[:4], ids=repr)
def test_symbolic_expected_loss_of_one_sample_equals_enumeration(strategy, rng):
    U, V, X, Y = make_problem(rng, n_in=2, width=4, n_out=2, n_samples=1)
    d = derive(strategy, 2, 4, 2)
    sy = d.symbols
    subs = {**d.symbols["rates"]}
    subs.update(dict(zip(sy["U"], U.ravel())))
    subs.update(dict(zip(sy["V"], V.ravel())))
    subs.update(dict(zip(sy["x"], X[:, 0])))
    subs.update(dict(zip(sy["y"], Y[:, 0])))
    value = float(d.expected_loss.subs(subs))
    np.testing.assert_allclose(value, pt.exact_expected_loss(strategy, U, V, X, Y), rtol=1e-10)


def test_custom_law_no_builtin_has():
    """A correlated hidden noise with negative coupling: derived from its moments alone."""
    C = np.array([[0.5, -0.2, 0.1], [-0.2, 0.4, 0.0], [0.1, 0.0, 0.3]])
    strategy = pt.HiddenNoise(C)
    rng = np.random.default_rng(9)
    U, V, X, Y = make_problem(rng, n_in=2, width=3, n_out=2)
    d = derive(strategy, 2, 3, 2)
    S = pt.second_moment(X)
    symbolic = d.penalty_function()(U, V, S)
    exact = pt.exact_expected_loss(strategy, U, V, X, Y) - pt.plain_loss(U, V, X, Y)
    np.testing.assert_allclose(symbolic, exact, rtol=1e-10)
    compact = d.compact()
    np.testing.assert_allclose(np.array(compact.a, dtype=float), np.diag(C), rtol=1e-12)
    np.testing.assert_allclose(np.array(compact.c.tolist(), dtype=float), C - np.diag(np.diag(C)), atol=1e-12)


def test_symbolic_covariance_entries():
    a, b, c = sympy.symbols("a b c")
    d = derive(pt.HiddenNoise(sympy.Matrix([[a, c], [c, b]])), 2, 2, 1)
    assert {"a", "b", "c"} <= {str(s) for s in d.penalty.free_symbols}
    f = d.penalty_function(a=0.3, b=0.2, c=-0.1)
    rng = np.random.default_rng(2)
    U, V = rng.normal(size=(1, 2)), rng.normal(size=(2, 2))
    numeric = pt.expected_penalty(pt.HiddenNoise([[0.3, -0.1], [-0.1, 0.2]]), U, V)
    np.testing.assert_allclose(f(U, V), numeric, rtol=1e-12)
    with pytest.raises(ValueError, match="needs values"):
        d.penalty_function()


def test_compact_forms_come_out_of_the_moments():
    lam = sympy.Symbol("lambda", nonnegative=True)
    p = sympy.Symbol("p", real=True)
    cases = {
        pt.Dropout(0.3): "sum_j ||u_j||^2 v_j^T S v_j",
        pt.DropBlock(0.3, 2): "sum_g ||U_g V_g^T S^(1/2)||_F^2",
        pt.PerNodeDrop(0.3, "input"): "sum_j ||u_j||^2 v_j^T D v_j",
    }
    for strategy, shape in cases.items():
        compact = derive(strategy, 3, 4, 2).compact()
        assert shape in compact.text
        assert "lambda" in compact.text
    both = derive(pt.PerNodeDrop(0.3, "both"), 3, 2, 2).compact()
    # lam S-term and lam (1 + lam) D-term (weight noise on both layers), read back in terms of p
    assert sympy.simplify(both.a[0] - p / (1 - p)) == 0
    assert sympy.simplify(both.b[0] - p / (1 - p) * (1 + p / (1 - p))) == 0
    assert str(lam) in both.text


def test_latex_and_errors():
    d = derive(pt.Dropout(0.5), 2, 2, 2)
    assert d.latex().startswith("R(U, V) = ")
    assert r"\lambda" in d.latex()
    with pytest.raises(ValueError, match="n_in"):
        derive(pt.Dropout(0.5), 0, 2, 2)
    f = d.penalty_function()
    with pytest.raises(ValueError, match="this derivation is for"):
        f(np.ones((3, 2)), np.ones((2, 2)))
