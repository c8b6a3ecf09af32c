"""Scalar laws: moments against independent computations, supports, sampling, validation."""

import numpy as np
import pytest
import sympy
import torch
from sympy.stats import E, Normal
from sympy.stats import Uniform as SympyUniform

import pnd_theory as pt
from pnd_theory.laws import moment_matched_support

from conftest import Triangle


def _reference_moments(law, kmax):
    """Raw moments E[m^k] computed apart from the package (sympy.stats or the definition)."""
    if isinstance(law, pt.Bernoulli):
        q = sympy.nsimplify(law.p)
        return [float((1 - q) * (1 / (1 - q)) ** k) if k else 1.0 for k in range(kmax + 1)]
    if isinstance(law, pt.Gaussian):
        q = sympy.nsimplify(law.p)
        z = Normal("z", 1, sympy.sqrt(q / (1 - q)))
        return [float(E(z**k)) for k in range(kmax + 1)]
    if isinstance(law, pt.Uniform):
        z = SympyUniform("z", sympy.nsimplify(law.low), sympy.nsimplify(law.high))
        return [float(E(z**k)) for k in range(kmax + 1)]
    v, q = np.array(law.values), np.array(law.probs)
    return [float(q @ v**k) for k in range(kmax + 1)]


LAWS = [pt.Bernoulli(0.0), pt.Bernoulli(0.3), pt.Bernoulli(0.9), pt.Gaussian(0.2), pt.Gaussian(0.7),
        pt.Uniform(0.25, 1.75), pt.DiscreteLaw([0.0, 0.5, 2.0], [0.2, 0.4, 0.4])]


@pytest.mark.parametrize("law", LAWS, ids=repr)
def test_moments_match_an_independent_computation(law):
    ref = _reference_moments(law, 6)
    for k in range(7):
        assert law.moment(k) == pytest.approx(ref[k], rel=1e-12, abs=1e-14)
        assert float(law.symbolic_moment(k)) == pytest.approx(ref[k], rel=1e-12, abs=1e-14)
    assert law.variance == pytest.approx(ref[2] - 1, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("law", LAWS, ids=repr)
@pytest.mark.parametrize("order", [2, 3, 4, 5])
def test_support_matches_the_moments_up_to_its_order(law, order):
    values, probs = law.support(order)
    assert np.all(probs >= 0) and probs.sum() == pytest.approx(1.0, rel=1e-14)
    ref = _reference_moments(law, order)
    for k in range(order + 1):
        assert probs @ values**k == pytest.approx(ref[k], rel=1e-10, abs=1e-12)


def test_a_user_law_gets_a_moment_matched_support():
    law = Triangle()
    for order in (2, 4, 6):
        values, probs = law.support(order)
        for k in range(order + 1):
            # the triangle is the law of u1 + u2: E[(u1+u2)^k] by the binomial theorem, apart
            ref = sum(sympy.binomial(k, i) * sympy.Rational(1, i + 1) * sympy.Rational(1, k - i + 1)
                      for i in range(k + 1))
            assert probs @ values**k == pytest.approx(float(ref), rel=1e-10)
    assert law.variance == pytest.approx(1 / 6, rel=1e-14)


def test_gauss_quadrature_from_moments_is_gauss_hermite():
    lam = 0.4
    law = pt.Gaussian(lam / (1 + lam))
    m = [law.moment(k) for k in range(8)]
    values, probs = moment_matched_support(m, 3)
    t, w = np.polynomial.hermite_e.hermegauss(3)
    np.testing.assert_allclose(np.sort(values), np.sort(1 + np.sqrt(lam) * t), rtol=1e-10)
    np.testing.assert_allclose(np.sort(probs), np.sort(w / w.sum()), rtol=1e-10)


def test_a_degenerate_law_has_a_one_point_support():
    values, probs = pt.Gaussian(0.0).support(4)
    np.testing.assert_allclose(values, [1.0])
    np.testing.assert_allclose(probs, [1.0])


@pytest.mark.parametrize("law", LAWS[1:] + [Triangle()], ids=repr)
def test_sampling_has_the_law_mean_and_variance(law):
    T = 200_000
    m = law.sample((T,), torch.Generator().manual_seed(3)).numpy()
    se_mean = np.sqrt(law.variance / T)
    assert abs(m.mean() - 1.0) < 5 * se_mean
    fourth = law.moment(4) - 4 * law.moment(3) + 6 * law.moment(2) - 3  # E[(m-1)^4]
    se_var = np.sqrt((fourth - law.variance**2) / T)
    assert abs(m.var() - law.variance) < 5 * se_var


def test_discrete_law_samples_each_value_at_its_probability():
    law = pt.DiscreteLaw([0.0, 0.5, 2.0], [0.2, 0.4, 0.4])
    T = 100_000
    m = law.sample((T,), torch.Generator().manual_seed(0)).numpy()
    for v, q in zip(law.values, law.probs):
        freq = np.mean(m == v)
        assert abs(freq - q) < 5 * np.sqrt(q * (1 - q) / T)


@pytest.mark.parametrize("values, probs, match", [
    ([0.0, 2.0], [0.6, 0.6], "summing to 1"),
    ([0.0, 2.0], [1.2, -0.2], "positive"),
    ([0.0, 3.0], [0.5, 0.5], "mean 1"),
    ([1.0, 1.0], [0.5, 0.5], "distinct"),
    ([0.0, 2.0], [0.5], "same length"),
    ("abc", [1.0], "values"),
    ([0.0, float("nan")], [0.5, 0.5], "finite"),
    ({0.0: 1}, [1.0], "values"),
])
def test_discrete_law_validation(values, probs, match):
    with pytest.raises(pt.InvalidParameterError, match=match):
        pt.DiscreteLaw(values, probs)


def test_uniform_validation_and_bad_law_kinds():
    with pytest.raises(pt.InvalidParameterError, match="mean 1"):
        pt.Uniform(0.0, 1.0)
    with pytest.raises(pt.InvalidParameterError, match="greater than low"):
        pt.Uniform(1.5, 0.5)
    with pytest.raises(pt.InvalidParameterError, match="p must be"):
        pt.Bernoulli("0.5")
    with pytest.raises(TypeError):  # abstract: a law without moments cannot be constructed
        pt.ScalarLaw()
    with pytest.raises(pt.InvalidParameterError, match="scalar law"):
        pt.UnitNoise("bernoulli")


def test_laws_are_values():
    assert pt.Bernoulli(0.3) == pt.Bernoulli(0.3) and pt.Bernoulli(0.3) != pt.Gaussian(0.3)
    assert hash(pt.DiscreteLaw([0, 2], [0.5, 0.5])) == hash(pt.DiscreteLaw([0.0, 2.0], [0.5, 0.5]))
    with pytest.raises(AttributeError):
        pt.Bernoulli(0.3).p = 0.1


class TwoPointByMoments(pt.ScalarLaw):
    """The moments of Bernoulli(0.5) given as a user law: a two-point law that the quadrature
    must recover exactly at every order, although its Hankel matrices are singular."""

    def moment(self, k):
        return 1.0 if k == 0 else 2.0 ** (k - 1)

    def sample(self, shape, generator=None, device=None, dtype=None):
        return pt.Bernoulli(0.5).sample(shape, generator, device, dtype)


@pytest.mark.parametrize("order", [2, 3, 4, 7])
def test_a_law_with_few_points_is_recovered_exactly(order):
    values, probs = TwoPointByMoments().support(order)
    keep = probs > 1e-12
    np.testing.assert_allclose(np.sort(values[keep]), [0.0, 2.0], atol=1e-9)
    for k in range(order + 1):
        assert probs @ values**k == pytest.approx(TwoPointByMoments().moment(k), rel=1e-9, abs=1e-12)
