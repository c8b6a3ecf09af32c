"""A law's moments are computed once per law object and order, and the routes say how many
moment evaluations they made (``law_calls``)."""

import collections
import math
import time
import warnings

import numpy as np
import pytest
import torch

import pnd_theory as pt
from pnd_theory.laws.scalar import moment_calls


class Triangular(pt.ScalarLaw):
    """Triangular on [0, 2]: E[m^k] = (2^(k+2) - 2) / ((k+1)(k+2)); counts its moment calls."""

    def __init__(self):
        object.__setattr__(self, "calls", collections.Counter())

    def _key(self):
        return ()

    def moment(self, k):
        self.calls[k] += 1
        return (2 ** (k + 2) - 2) / ((k + 1) * (k + 2))

    def sample(self, shape, generator=None, device=None, dtype=None):
        u = torch.rand((2,) + tuple(shape), generator=generator, device=device, dtype=dtype or torch.float64)
        return u[0] + u[1]


def test_every_order_is_evaluated_once_per_law_object_through_every_route():
    law = Triangular()
    U, V, X, Y = pt.random_problem(n_in=2, width=3, n_out=2, n_samples=5, seed=1)
    S = pt.second_moment(X)
    for strategy in (pt.UnitNoise(law), pt.WeightNoise(law), pt.WeightNoise(law, layer="output")):
        pt.expected_penalty(strategy, U, V, S)
        pt.expected_loss(strategy, U, V, X, Y)
        pt.exact_expected_loss(strategy, U, V, X, Y)
        pt.derive(strategy, 2, 2, 1)
        pt.gradient_noise(strategy, U, V, X, Y)
    assert law.calls and set(law.calls.values()) == {1}, law.calls
    assert moment_calls(law) == len(law.calls)
    # the value is the law's own, to the bit: the closed form R = Var sum_j a_j s_j, Var = 1/6
    R = pt.expected_penalty(pt.UnitNoise(law), U, V, S)
    assert R == pytest.approx((U * U).sum(0) @ (V * (S @ V)).sum(0) / 6, rel=1e-12)
    # another object of the same law computes its own moments once more
    other = Triangular()
    pt.expected_penalty(pt.UnitNoise(other), U, V, S)
    assert set(other.calls.values()) == {1}


def test_a_subclass_calling_super_gets_its_own_value_and_builtins_are_unchanged():
    class Shifted(Triangular):
        def moment(self, k):
            return super().moment(k) if k != 3 else 2 * super().moment(3) - super().moment(3)

    law = Shifted()
    assert law.moment(3) == Triangular().moment(3) == 1.5
    assert law.moment(3) == 1.5 and law.calls[3] == 1
    p = 0.3
    for k in range(6):
        assert pt.Bernoulli(p).moment(k) == (1.0 if k == 0 else (1 - p) ** (1 - k))
    assert pt.Gaussian(0.5).moment(4) == 10.0
    assert pt.DiscreteLaw([0.0, 2.0], [0.5, 0.5]).moment(3) == 4.0
    assert pt.Uniform(0.5, 1.5).moment(2) == pytest.approx(1 + 1 / 12, rel=1e-15)
    assert pt.Bernoulli(0.3) == pt.Bernoulli(0.3) and repr(pt.Bernoulli(0.3)) == "Bernoulli(p=0.3)"
    assert vars(pt.Bernoulli(0.3)) == {"p": 0.3}  # the cache is not part of the law's value


def test_routes_report_the_moment_evaluations_they_made():
    law = Triangular()
    strategy = pt.WeightNoise(law)  # the door asks moment(1) and moment(2)
    report = pt.check_strategy(strategy, routes=("numeric", "exact", "symbolic"))
    assert report.ok
    assert report.law_calls == sum(law.calls.values()) - 2 > 0
    assert set(law.calls.values()) == {1}
    again = pt.check_strategy(pt.WeightNoise(law), routes=("numeric", "exact", "symbolic"))
    assert again.law_calls == 0  # every moment it needs is cached on the law object
    fresh = Triangular()
    derivation = pt.derive(pt.UnitNoise(fresh), 2, 2, 1)
    assert derivation.law_calls == sum(fresh.calls.values()) - 2  # moment(1), moment(2) at the door
    built_in = pt.check_strategy(pt.Dropout(0.25), routes=("numeric",))
    assert isinstance(built_in.law_calls, int) and built_in.law_calls >= 0
    assert np.isfinite(pt.expected_penalty(pt.UnitNoise(fresh), *pt.random_problem(seed=0)[:2], np.eye(3)))


class Slow(Triangular):
    """Each moment takes 0.6 s: a route must say how many evaluations it will still make."""

    def moment(self, k):
        time.sleep(0.6)
        return super().moment(k)


def test_a_route_says_how_many_evaluations_of_a_slow_law_it_will_make():
    U, V, X, Y = pt.random_problem(n_in=2, width=3, n_out=2, n_samples=5, seed=1)
    law = Slow()
    pt.UnitNoise(law)  # the entry check evaluates orders 1 and 2
    with pytest.warns(RuntimeWarning, match=r"moment\(3\) took 0.6 s, and 1 more evaluation follows \(orders 4;") \
            as caught:
        pt.gradient_noise(pt.UnitNoise(law), U, V, X, Y)
    assert caught[0].filename == __file__  # the user's line that asked
    assert law.calls == {1: 1, 2: 1, 3: 1, 4: 1}
    with warnings.catch_warnings():  # cached: the second time nothing is evaluated and nothing said
        warnings.simplefilter("error")
        pt.gradient_noise(pt.UnitNoise(law), U, V, X, Y)


def test_a_law_whose_higher_moment_is_not_finite_is_refused_by_the_route_that_needs_it():
    class HeavyTail(Triangular):
        def moment(self, k):
            return math.inf if k == 4 else super().moment(k)

    U, V, X, Y = pt.random_problem(n_in=2, width=3, n_out=2, n_samples=5, seed=1)
    strategy = pt.WeightNoise(HeavyTail())
    assert np.isfinite(pt.expected_penalty(strategy, U, V, pt.second_moment(X)))  # order 2 is enough here
    with pytest.raises(pt.InvalidParameterError, match=r"finite moment\(4\) \(needed up to order 4 by the gradient "
                       r"covariance.*moment\(4\) = inf"):
        pt.gradient_noise(strategy, U, V, X, Y)
    with pytest.raises(pt.InvalidParameterError, match=r"finite moment\(4\).*moments of the SGD iterates"):
        pt.iterate_moments(pt.UnitNoise(HeavyTail()), X, Y, U, lr=0.01, steps=2, V=V)
