"""Laws written by users get the right answer on every route, or a clear refusal.

Each test here reproduces an answer that was once silently wrong, and checks it against a
route written apart from the package (enumeration by hand, Monte Carlo, exact arithmetic).
"""

import itertools

import numpy as np
import pytest
import sympy
import torch

import pnd_theory as pt
from pnd_theory.laws import independent_mask

from conftest import make_problem


def hand_enumeration_hidden(values, probs, U, V, X, Y):
    """E[loss] for hidden-unit noise with i.i.d. finite laws, by a loop over every configuration."""
    d = U.shape[1]
    total = 0.0
    for idx in itertools.product(range(len(values)), repeat=d):
        xi = np.array([values[i] for i in idx])
        w = np.prod([probs[i] for i in idx])
        residual = Y - U @ np.diag(xi) @ V.T @ X
        total += w * (residual ** 2).sum() / X.shape[1]
    return total


def test_derive_keeps_two_different_rates_apart(rng):
    """Gaussian weight noise with p = 0.3 on V and p = 0.1 on U: the symbolic penalty must be
    that of these two laws, not of p = 0.1 on both (a shared symbol name merged them)."""
    strategy = pt.WeightNoise((pt.Gaussian(0.3), pt.Gaussian(0.1)), "both", per_sample=True)
    U, V, X, Y = make_problem(rng, n_in=2, width=2, n_out=2, n_samples=5)
    S = X @ X.T / X.shape[1]
    d = pt.derive(strategy, 2, 2, 2)
    symbolic = d.penalty_function()(U, V, S)
    exact = pt.exact_expected_loss(strategy, U, V, X, Y) - pt.plain_loss(U, V, X, Y)
    assert symbolic == pytest.approx(exact, rel=1e-10)
    assert len(d.symbols["rates"]) == 2
    assert sorted(d.symbols["rates"].values()) == [0.1, 0.3]
    # the merged answer is far from it: the check above can fail
    merged = pt.expected_penalty(pt.PerNodeDrop(0.1, "both", "gaussian"), U, V, S)
    assert abs(merged - exact) > 0.05 * exact


def test_an_unknown_kind_of_law_cannot_be_constructed():
    with pytest.raises(pt.InvalidParameterError, match="scalar law"):
        independent_mask("student-t", (1,), "p")
    with pytest.raises(pt.InvalidParameterError, match="scalar law"):
        independent_mask(("student-t",), None, ("p",), groups=np.arange(1))
    with pytest.raises(pt.InvalidParameterError, match="scalar law"):
        pt.WeightNoise("laplace", "input")
    with pytest.raises(TypeError):
        pt.ScalarLaw()  # abstract: a law must say its moments and how to sample


def test_exact_enumeration_uses_the_whole_support_of_a_three_point_law(rng):
    law = pt.DiscreteLaw([0.0, 0.5, 2.0], [0.2, 0.4, 0.4])
    strategy = pt.UnitNoise(law)
    U, V, X, Y = make_problem(rng, n_in=3, width=3, n_out=2, n_samples=6)
    by_hand = hand_enumeration_hidden(law.values, law.probs, U, V, X, Y)
    assert pt.exact_expected_loss(strategy, U, V, X, Y) == pytest.approx(by_hand, rel=1e-12)
    assert pt.expected_loss(strategy, U, V, X, Y) == pytest.approx(by_hand, rel=1e-12)
    est, se = pt.monte_carlo_loss(strategy, U, V, X, Y, samples=20000, seed=1)
    assert abs(est - by_hand) < 5 * se


class HalfRate(pt.PerNodeDrop):
    """A subclass whose law uses rate p/2: every route must read the law, not ``self.p``."""

    def law(self, n_in, width, n_out):
        return pt.PerNodeDrop(self.p / 2, self.layer, self.stir).law(n_in, width, n_out)


def test_layers_route_reads_the_law_of_a_subclass():
    strategy = HalfRate(0.6, "input")
    U, V, X, Y = pt.random_problem(n_in=3, width=2, n_out=2, n_samples=4, seed=3)
    closed = pt.gradient_noise(strategy, U, V, X, Y)
    mc = pt.monte_carlo_gradient_noise(strategy, U, V, X, Y, draws=2000, seed=0, via="layers")
    assert abs(mc.trace - closed.trace) < 5 * mc.trace_se
    wrong = pt.gradient_noise(pt.PerNodeDrop(0.6, "input"), U, V, X, Y)
    assert abs(mc.trace - wrong.trace) > 10 * mc.trace_se  # the class's own p is far off


def test_local_reparameterization_reads_the_law_of_a_subclass():
    strategy = HalfRate(0.6, "output", "gaussian")
    U, V, X, Y = pt.random_problem(n_in=3, width=2, n_out=2, n_samples=4, seed=4)
    closed = pt.gradient_noise(strategy, U, V, X, Y, local_reparameterization=True)
    mc = pt.monte_carlo_gradient_noise(strategy, U, V, X, Y, draws=4000, seed=0, via="layers",
                                       local_reparameterization=True)
    assert abs(mc.trace - closed.trace) < 5 * mc.trace_se
    same_rate = pt.gradient_noise(pt.PerNodeDrop(0.3, "output", "gaussian"), U, V, X, Y,
                                  local_reparameterization=True)
    assert closed.trace == pytest.approx(same_rate.trace, rel=1e-12)


def test_mask_sharing_partner_has_the_subclass_law():
    strategy = HalfRate(0.6, "input")
    per_sample, per_batch = pt.mask_sharing_pair(strategy)
    assert per_sample.law(2, 3, 2).per_sample and not per_batch.law(2, 3, 2).per_sample
    U, V, X, Y = pt.random_problem(n_in=2, width=3, n_out=2, n_samples=4, seed=0)
    S = pt.second_moment(X)
    for s in (per_sample, per_batch):
        assert pt.expected_penalty(s, U, V, S) == pytest.approx(
            pt.expected_penalty(pt.PerNodeDrop(0.3, "input"), U, V, S), rel=1e-12)
    assert pt.mask_sharing_pair(pt.PerNodeDrop(0.3, "input"))[1] == pt.DropConnect(0.3, "input")


# ----------------------------------------------------------------- one validation layer

def test_second_moment_must_be_positive_semidefinite(rng):
    U, V = rng.normal(size=(2, 3)), rng.normal(size=(3, 3))
    S = -np.diag([6.1, 5.7, 3.1])
    with pytest.raises(pt.InvalidParameterError, match="positive semi-definite"):
        pt.expected_penalty(pt.Dropout(0.3), U, V, S)
    with pytest.raises(pt.InvalidParameterError, match="positive semi-definite"):
        pt.derive(pt.Dropout(0.3), 3, 3, 2).penalty_function()(U, V, S)


def test_penalty_is_computed_in_a_scale_normalized_form():
    U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    S = pt.second_moment(X)
    ref = pt.expected_penalty(pt.Dropout(0.3), U, V, S)
    for c in (1e155, 1e-155, 2.0**600):
        assert pt.expected_penalty(pt.Dropout(0.3), U * c, V / c, S) == pytest.approx(ref, rel=1e-13)
    assert pt.expected_penalty(pt.Dropout(0.3), U * 1e-200, V * 1e100, S * 1e200) == pytest.approx(ref, rel=1e-13)


def test_global_minimizer_is_scale_equivariant():
    U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    for s in (pt.Dropout(0.3), pt.PerNodeDrop(0.3, "input")):
        ref = pt.global_minimizer(s, X, Y, 4)
        big = pt.global_minimizer(s, X * 1e80, Y * 1e80, 4)
        np.testing.assert_allclose(big.product, ref.product, rtol=1e-7, atol=1e-9)
        assert big.objective == pytest.approx(ref.objective * 1e160, rel=1e-9)


def test_prox_near_the_float64_maximum():
    """The prox is positively homogeneous: prox(t w) = t prox(w), up to rounding."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        w = rng.random(int(rng.integers(2, 7)))
        w /= w.max()
        k = int(rng.integers(1, w.size + 1))
        c = float(10 ** rng.uniform(-3, 3))
        ref = pt.prox_squared_k_support_vector(w, k, c)
        for t in (1.79e308, 1e-310):
            np.testing.assert_allclose(pt.prox_squared_k_support_vector(w * t, k, c), ref * t, rtol=1e-10)


def test_induced_penalty_zero_attained_with_singular_second_moment(rng):
    X = rng.normal(size=(3, 8))
    X[2] = 0.0  # an input that is always zero: S and diag(S) are singular
    S = X @ X.T / 8
    A = np.outer([1.0, 2.0], [0.0, 0.0, 1.0])
    U = np.zeros((2, 4))
    V = np.zeros((3, 4))
    U[:, 0], V[2, 0] = [1.0, 2.0], 1.0  # explicit factors of A with R = 0
    for s in (pt.Dropout(0.3), pt.DropBlock(0.3, 2), pt.PerNodeDrop(0.3, "input")):
        assert pt.expected_penalty(s, U, V, S) == 0.0
        assert pt.induced_penalty(s, A, 4, S) == 0.0
        Ub, Vb = pt.balanced_factors(s, A, 4, S)
        np.testing.assert_allclose(Ub @ Vb.T, A, atol=1e-12)


@pytest.mark.parametrize("kwargs, name", [
    (dict(seed=1.5), "seed"), (dict(seed=True), "seed"), (dict(seed=-1), "seed"),
    (dict(device="tpu"), "device"), (dict(device="cpu:x"), "device"),
    (dict(dtype=torch.complex128), "dtype"), (dict(samples=1), "samples"),
])
def test_monte_carlo_refuses_bad_arguments(kwargs, name):
    U, V, X, Y = pt.random_problem(n_in=2, width=2, n_out=2, n_samples=3, seed=0)
    args = dict(samples=10) | kwargs
    with pytest.raises(pt.InvalidParameterError, match=name):
        pt.monte_carlo_loss(pt.Dropout(0.3), U, V, X, Y, **args)


def test_complex_arrays_and_dict_rates_are_refused():
    U, V, X, Y = pt.random_problem(n_in=2, width=2, n_out=2, n_samples=3, seed=0)
    with pytest.raises(pt.InvalidParameterError, match="real"):
        pt.expected_penalty(pt.Dropout(0.3), U + 1j, V)
    with pytest.raises(pt.InvalidParameterError, match="real"):
        pt.expected_loss(pt.Dropout(0.3), U, V, torch.as_tensor(X) * 1j, Y)
    with pytest.raises(pt.InvalidParameterError, match="p must be"):
        pt.NodeDropout(p={0.3: 1})
    with pytest.raises(pt.InvalidParameterError, match="p must be"):
        pt.Dropout("0.5")


def test_oversized_derivation_is_refused_at_once():
    import time

    start = time.perf_counter()
    with pytest.raises(pt.InvalidParameterError, match="pairs of terms"):
        pt.derive(pt.Dropout(0.3), 60, 60, 60)
    assert time.perf_counter() - start < 5.0  # refused before any expansion (generous bound)


def test_symbolic_moments_of_a_user_law_are_exact():
    law = pt.DiscreteLaw([0.0, 0.5, 2.0], [0.2, 0.4, 0.4])
    assert law.symbolic_moment(2) == sympy.Rational(1, 10) + sympy.Rational(16, 10)
