"""Monte Carlo of per-sample weight noise through the fused kernels, against exact enumeration.

Each estimate must lie within K = 5 of its own standard errors of the exact expected loss,
for two seeds; the route is checked to be the fused one (no mask tensor is drawn).
"""
from __future__ import annotations

import numpy as np
import pytest

import pnd_theory as pt
import pnd_theory.routes.montecarlo as mc
from pnd_theory.routes.montecarlo import fused_weight_noise

K = 5.0
FUSED = [pt.PerNodeDrop(0.3, "input"), pt.PerNodeDrop(0.25, "both"), pt.PerNodeDrop(0.3, "output", stir="gaussian"),
         pt.PerNodeDrop(0.2, "both", stir="gaussian"), pt.DropConnect(0.2, "both", per_sample=True)]


class _GaussianSubclass(pt.Gaussian):
    """A user's subclass of a built-in law: it may draw differently, so it keeps its own sampler."""


NOT_FUSED = [pt.Dropout(0.3), pt.DropConnect(0.3, "output"), pt.DropBlock(0.3, 2),
             pt.WeightNoise(_GaussianSubclass(0.3), layer="input", per_sample=True)]


@pytest.fixture
def problem():
    rng = np.random.default_rng(7)
    U, V = rng.normal(size=(2, 4)), rng.normal(size=(3, 4))
    X, Y = rng.normal(size=(3, 5)), rng.normal(size=(2, 5))
    return U, V, X, Y


@pytest.mark.parametrize("strategy", FUSED, ids=repr)
def test_fused_monte_carlo_matches_exact_enumeration(strategy, problem, monkeypatch):
    calls = []
    real = mc.masked_linear
    monkeypatch.setattr(mc, "masked_linear", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    exact = pt.exact_expected_loss(strategy, *problem)
    for seed in (0, 1):
        est, se = pt.monte_carlo_loss(strategy, *problem, samples=4000, seed=seed)
        assert abs(est - exact) <= K * se, f"{strategy!r}: {est} vs exact {exact} (se {se})"
        assert se < 0.05 * exact
    assert calls  # the fused route ran
    again = pt.monte_carlo_loss(strategy, *problem, samples=4000, seed=1)
    assert again == (est, se)  # seeded


@pytest.mark.parametrize("strategy", NOT_FUSED, ids=repr)
def test_other_laws_keep_the_sampled_masks(strategy, problem):
    n_in, d, n_out = 3, 4, 2
    assert fused_weight_noise(strategy.law(n_in, d, n_out)) is None


def test_chunks_do_not_change_the_law(problem):
    s = pt.PerNodeDrop(0.3, "both")
    exact = pt.exact_expected_loss(s, *problem)
    est, se = pt.monte_carlo_loss(s, *problem, samples=3000, seed=3, max_elements=200)
    assert abs(est - exact) <= K * se
