"""Monte Carlo with real sampled masks lands within a few standard errors of the exact value."""

import pytest
import torch

import pnd_theory as pt

from conftest import STRATEGIES, make_problem


@pytest.mark.parametrize("strategy", STRATEGIES, ids=repr)
def test_monte_carlo_within_five_standard_errors_of_exact(strategy, rng):
    U, V, X, Y = make_problem(rng)
    exact = pt.exact_expected_loss(strategy, U, V, X, Y)
    estimate, se = pt.monte_carlo_loss(strategy, U, V, X, Y, samples=20000, seed=3)
    assert se > 0
    assert abs(estimate - exact) < 5 * se


def test_same_seed_same_result_and_seed_matters(rng):
    U, V, X, Y = make_problem(rng)
    s = pt.PerNodeDrop(0.5, "both")
    a = pt.monte_carlo_loss(s, U, V, X, Y, samples=300, seed=11)
    assert a == pt.monte_carlo_loss(s, U, V, X, Y, samples=300, seed=11)
    assert a != pt.monte_carlo_loss(s, U, V, X, Y, samples=300, seed=12)


def test_chunked_draws_are_valid_estimates(rng):
    U, V, X, Y = make_problem(rng)
    s = pt.Dropout(0.5)
    big = pt.monte_carlo_loss(s, U, V, X, Y, samples=64, seed=5)
    small = pt.monte_carlo_loss(s, U, V, X, Y, samples=64, seed=5, max_elements=40)
    # the draws differ in order only when chunks change shape; both must be valid estimates
    exact = pt.expected_loss(s, U, V, X, Y)
    for est, se in (big, small):
        assert abs(est - exact) < 5 * se


def test_bad_arguments(rng):
    U, V, X, Y = make_problem(rng)
    with pytest.raises(ValueError, match="samples must be at least 2"):
        pt.monte_carlo_loss(pt.Dropout(0.5), U, V, X, Y, samples=1)
    with pytest.raises(TypeError, match="samples"):
        pt.monte_carlo_loss(pt.Dropout(0.5), U, V, X, Y, samples=10.5)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            pt.monte_carlo_loss(pt.Dropout(0.5), U, V, X, Y, samples=10, device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_monte_carlo_on_gpu(rng):
    U, V, X, Y = make_problem(rng, n_in=16, width=32, n_out=8, n_samples=256)
    for s in (pt.PerNodeDrop(0.3, "input"), pt.DropBlock(0.3, 4)):
        exact = pt.expected_loss(s, U, V, X, Y)
        est, se = pt.monte_carlo_loss(s, U, V, X, Y, samples=4000, seed=0, device="cuda")
        assert abs(est - exact) < 5 * se
