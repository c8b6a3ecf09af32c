"""Explicit against implicit: training with the penalty alone, and with matched Gaussian noise.

One claim each.  The penalty route (no mask; closed-form L + R through autograd) ends on the
closed-form optimum (``pt.global_minimizer``) to 1e-6 relative in the objective.  Real masks
and the penalty plus Gaussian noise of the closed-form mask-induced covariance give the same
stationary spread of the product under constant-step SGD, within 3 combined standard errors;
the same comparison tells per-batch masks (DropConnect, six times the spread) from per-sample
ones, so it has the power to fail.
"""

import math

import numpy as np
import pytest
import torch

import pnd_theory as pt
from pnd_theory.studies.implicit import noise_mode_spread

torch.set_num_threads(1)

WIDTH = 4


@pytest.fixture(scope="module")
def problem():
    _, _, X, Y = pt.random_problem(n_in=3, width=WIDTH, n_out=3, n_samples=32, seed=0)
    return X, Y


@pytest.mark.parametrize("strategy", [pt.PerNodeDrop(0.3, "output"), pt.PerNodeDrop(0.3, "input")])
def test_penalty_route_ends_on_the_closed_form_optimum(problem, strategy):
    X, Y = problem
    optimum = pt.global_minimizer(strategy, X, Y, WIDTH)
    run = pt.train(strategy, X, Y, WIDTH, noise="penalty", epochs=2000, lr=0.1, optimizer="sgd", momentum=0.9,
                   schedule="constant", average=0, progress=False)
    assert abs(run.objective / optimum.objective - 1) < 1e-6


def test_penalty_route_draws_no_mask(problem):
    X, Y = problem
    a = pt.train(pt.Dropout(0.3), X, Y, WIDTH, noise="penalty", epochs=20, seed=0, progress=False)
    b = pt.train(pt.Dropout(0.3), X, Y, WIDTH, noise="penalty", epochs=20, seed=0, progress=False)
    np.testing.assert_array_equal(a.U, b.U)
    expected = [pt.expected_loss(pt.Dropout(0.3), a.U, a.V, X, Y)]
    np.testing.assert_allclose(a.objective, expected[0], rtol=1e-12)


def test_noise_mode_is_validated(problem):
    X, Y = problem
    with pytest.raises(pt.InvalidParameterError):
        pt.train(pt.Dropout(0.3), X, Y, WIDTH, noise="gradient", epochs=2, progress=False)
    with pytest.raises(pt.InvalidParameterError):
        pt.train(pt.Dropout(0.3), X, Y, WIDTH, noise="penalty+matched", matched_every=0, epochs=2, progress=False)


def _apart(a, b):
    return abs(a.spread - b.spread) / math.hypot(a.spread_se, b.spread_se)


def test_masks_and_matched_noise_have_the_same_stationary_spread(problem):
    X, Y = problem
    strategy = pt.PerNodeDrop(0.3, "output")
    settings = dict(lr=0.05, steps=40, snapshots=20, seeds=2)
    masks = noise_mode_spread(strategy, X, Y, WIDTH, "masks", **settings)
    matched = noise_mode_spread(strategy, X, Y, WIDTH, "penalty+matched", matched_every=5, **settings)
    assert masks.spread > 5 * masks.spread_se  # a spread well resolved
    assert _apart(masks, matched) < 3.0
    shared = noise_mode_spread(pt.DropConnect(0.3, "output"), X, Y, WIDTH, "masks", **settings)
    assert _apart(shared, matched) > 3.0  # per-batch masks spread more: the comparison can fail
