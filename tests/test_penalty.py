"""Closed-form penalty: against exact enumeration, structure and property checks."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import pnd_theory as pt

from conftest import STRATEGIES, make_problem


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_numeric_equals_exact_enumeration(strategy, rng):
    U, V, X, Y = make_problem(rng)
    numeric = pt.expected_loss(strategy, U, V, X, Y)
    exact = pt.exact_expected_loss(strategy, U, V, X, Y)
    np.testing.assert_allclose(numeric, exact, rtol=1e-11)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_penalty_is_expected_minus_plain_loss(strategy, rng):
    U, V, X, Y = make_problem(rng)
    S = pt.second_moment(X)
    penalty = pt.expected_penalty(strategy, U, V, S)
    np.testing.assert_allclose(penalty, pt.expected_loss(strategy, U, V, X, Y) - pt.plain_loss(U, V, X, Y), rtol=1e-10)


def test_input_layer_differs_from_dropout_only_with_correlated_inputs(rng):
    U, V, X, Y = make_problem(rng)
    S = pt.second_moment(X)
    drop, pnd = pt.Dropout(0.4), pt.PerNodeDrop(0.4, "input")
    assert abs(pt.expected_penalty(drop, U, V, S) - pt.expected_penalty(pnd, U, V, S)) > 1e-3
    D = np.diag(np.diag(S))
    np.testing.assert_allclose(pt.expected_penalty(drop, U, V, D), pt.expected_penalty(pnd, U, V, D), rtol=1e-12)
    # output-layer weight noise equals Dropout for every S (output-layer weight noise)
    np.testing.assert_allclose(pt.expected_penalty(pt.PerNodeDrop(0.4, "output"), U, V, S),
                               pt.expected_penalty(drop, U, V, S), rtol=1e-12)


def test_dropblock_with_unit_blocks_is_dropout_and_hidden_noise_reproduces_it(rng):
    U, V, X, _ = make_problem(rng, width=6)
    S = pt.second_moment(X)
    lam = 0.3 / 0.7
    expected = pt.expected_penalty(pt.Dropout(0.3), U, V, S)
    np.testing.assert_allclose(pt.expected_penalty(pt.DropBlock(0.3, 1), U, V, S), expected, rtol=1e-12)
    np.testing.assert_allclose(pt.expected_penalty(pt.HiddenNoise(lam * np.eye(6)), U, V, S), expected, rtol=1e-12)
    blocks = np.kron(np.eye(3), np.ones((2, 2))) * lam
    np.testing.assert_allclose(pt.expected_penalty(pt.HiddenNoise(blocks), U, V, S),
                               pt.expected_penalty(pt.DropBlock(0.3, 2), U, V, S), rtol=1e-12)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_torch_tensors_give_the_numpy_value(strategy, rng):
    U, V, X, Y = make_problem(rng)
    value = pt.expected_loss(strategy, U, V, X, Y)
    tensors = [torch.as_tensor(a) for a in (U, V, X, Y)]
    np.testing.assert_allclose(pt.expected_loss(strategy, *tensors), value, rtol=1e-12)
    S = pt.second_moment(torch.as_tensor(X))
    assert torch.is_tensor(S)
    np.testing.assert_allclose(pt.expected_penalty(strategy, tensors[0], V, S),
                               pt.expected_penalty(strategy, U, V, pt.second_moment(X)), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    n_in=st.integers(1, 4), n_out=st.integers(1, 4), blocks=st.integers(1, 3), b=st.integers(1, 3),
    p=st.floats(0.0, 0.9), scale=st.floats(0.1, 10.0), seed=st.integers(0, 2**16),
)
def test_penalty_properties(n_in, n_out, blocks, b, p, scale, seed):
    """Non-negative, quadratic in U, zero at p = 0, invariant to permuting blocks jointly."""
    rng = np.random.default_rng(seed)
    d = blocks * b
    U, V = rng.normal(size=(n_out, d)), rng.normal(size=(n_in, d))
    G = rng.normal(size=(n_in, n_in + 1))
    S = G @ G.T
    for strategy in (pt.DropBlock(p, b), pt.PerNodeDrop(p, "both"), pt.DropConnect(p, "input")):
        R = pt.expected_penalty(strategy, U, V, S)
        assert R >= -1e-12 * (1 + abs(R))
        np.testing.assert_allclose(pt.expected_penalty(strategy, scale * U, V, S), scale**2 * R, rtol=1e-9, atol=1e-12)
        perm = np.concatenate([np.arange(g * b, (g + 1) * b) for g in rng.permutation(blocks)])
        np.testing.assert_allclose(pt.expected_penalty(strategy, U[:, perm], V[:, perm], S), R, rtol=1e-9, atol=1e-12)
    assert pt.expected_penalty(pt.DropBlock(0.0, b), U, V, S) == 0.0


def test_bad_inputs_name_the_problem(rng):
    U, V, X, Y = make_problem(rng)
    s = pt.Dropout(0.5)
    with pytest.raises(ValueError, match=r"same number of columns.*\(2, 4\).*\(3, 5\)"):
        pt.expected_penalty(s, U, np.ones((3, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        pt.expected_penalty(s, U * np.nan, V)
    with pytest.raises(ValueError, match="symmetric"):
        pt.expected_penalty(s, U, V, np.triu(np.ones((3, 3))))
    with pytest.raises(ValueError, match="3 x 3"):
        pt.expected_penalty(s, U, V, np.eye(2))
    with pytest.raises(ValueError, match="2-D"):
        pt.expected_penalty(s, U[0], V)
    with pytest.raises(TypeError, match="strategy"):
        pt.expected_penalty("dropout", U, V)
    with pytest.raises(TypeError, match="numeric"):
        pt.expected_penalty(s, [["a"]], V)
    with pytest.raises(ValueError, match="same number of samples"):
        pt.expected_loss(s, U, V, X, Y[:, :-1])
    with pytest.raises(ValueError, match="n_in"):
        pt.expected_loss(s, U, V, X[:-1], Y)
    with pytest.raises(ValueError, match="block_size must divide"):
        pt.expected_penalty(pt.DropBlock(0.5, 3), U, V)


@pytest.mark.parametrize("strategy", STRATEGIES + [
    pt.WeightNoise((pt.Gaussian(0.3), pt.Uniform(0.5, 1.5)), "both"),
    pt.UnitNoise([pt.Bernoulli(0.1), pt.DiscreteLaw([0.0, 2.0], [0.5, 0.5]), pt.Gaussian(0.2), pt.Bernoulli(0.5)]),
], ids=repr)
def test_numpy_gradient_equals_autograd_of_the_torch_backend(strategy):
    """The value and gradient used by the numeric minimizations against torch autograd through
    the backend-preserving closed form (both from the one law-driven penalty)."""
    from pnd_theory.routes.penalty import penalty_and_gradient, penalty_of_law

    rng = np.random.default_rng(3)
    X = rng.normal(size=(3, 7)) + 0.7 * rng.normal(size=(3, 1))
    S = X @ X.T / 7
    U, V = rng.normal(size=(2, 4)), rng.normal(size=(3, 4))
    law = strategy.law(3, 4, 2)
    value, gU, gV = penalty_and_gradient(law, U, V, S)
    Ut, Vt = torch.tensor(U, requires_grad=True), torch.tensor(V, requires_grad=True)
    penalty_of_law(law, Ut, Vt, torch.tensor(S)).backward()
    np.testing.assert_allclose(value, pt.expected_penalty(strategy, U, V, S), rtol=1e-13)
    np.testing.assert_allclose(gU, Ut.grad.numpy(), rtol=1e-12, atol=1e-13 * np.abs(gU).max())
    np.testing.assert_allclose(gV, Vt.grad.numpy(), rtol=1e-12, atol=1e-13 * np.abs(gV).max())
