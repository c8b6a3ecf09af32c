"""The two-layer network's stationary spread from SGD linearized at the global minimizer
(pt.linearized_spread), against the spread of simulated runs.

At a small step the prediction lies within 3 standard errors of both simulated estimators
(pt.stationary_spread and pt.noise_mode_spread, full batches, started at the optimum), for
per-sample masks (Dropout) and per-batch masks (DropConnect), whose predictions are four times
apart: the comparison can fail.
"""

import numpy as np
import pytest
import torch

import pnd_theory as pt
from pnd_theory import InvalidParameterError

torch.set_num_threads(1)

WIDTH, LR = 2, 0.01


@pytest.fixture(scope="module")
def problem():
    _, _, X, Y = pt.random_problem(n_in=3, width=WIDTH, n_out=2, n_samples=32, seed=1)
    return X, Y


def test_prediction_is_the_stationary_law_of_the_linearized_step(problem):
    """P = (I - lr H) P (I - lr H) + lr^2 Sigma, the noise has no part in the null space of H (unit
    rescalings), and the spread is lr times a constant to first order."""
    X, Y = problem
    res = pt.linearized_spread(pt.Dropout(0.3), X, Y, WIDTH, LR)
    A = np.eye(len(res.curvatures)) - LR * res.hessian
    P = res.covariance
    assert np.abs(A @ P @ A + LR ** 2 * res.noise - P).max() < 1e-12 * np.abs(P).max()
    assert np.sum(res.curvatures < 1e-8 * res.curvatures[-1]) == WIDTH  # one rescaling per unit
    small = pt.linearized_spread(pt.Dropout(0.3), X, Y, WIDTH, LR / 100)
    assert abs(small.spread / (small.spread_per_lr * small.lr) - 1) < 0.01
    assert small.spread_per_lr == pytest.approx(res.spread_per_lr, rel=1e-10)
    assert "spread" in repr(res)
    with pytest.raises(InvalidParameterError, match=rf"lr must be below {res.max_stable_lr:.6g}"):
        pt.linearized_spread(pt.Dropout(0.3), X, Y, WIDTH, 1.01 * res.max_stable_lr)


@pytest.mark.parametrize("strategy,estimator", [(pt.Dropout(0.3), "stationary_spread"),
                                                (pt.DropConnect(0.3, "output"), "stationary_spread"),
                                                (pt.Dropout(0.3), "noise_mode_spread")], ids=str)
def test_prediction_agrees_with_simulated_runs(problem, strategy, estimator):
    X, Y = problem
    pred = pt.linearized_spread(strategy, X, Y, WIDTH, LR)
    runs = dict(seeds=4, snapshots=20, burn_in=200)
    if estimator == "stationary_spread":
        sim = pt.stationary_spread(strategy, X, Y, WIDTH, LR, 100, progress=False, **runs)
    else:
        sim = pt.noise_mode_spread(strategy, X, Y, WIDTH, "masks", LR, 100, **runs)
    assert sim.spread_se < 0.2 * sim.spread  # resolved
    assert abs(sim.spread - pred.spread) < 3 * sim.spread_se, (pred.spread, sim.spread, sim.spread_se)


def test_per_batch_masks_are_predicted_to_spread_more(problem):
    X, Y = problem
    ps = pt.linearized_spread(pt.Dropout(0.3), X, Y, WIDTH, LR)
    pb = pt.linearized_spread(pt.DropConnect(0.3, "output"), X, Y, WIDTH, LR)
    assert ps.per_sample and not pb.per_sample
    assert pb.spread > 3 * ps.spread
