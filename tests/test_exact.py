"""Exact enumeration: against an independent joint enumeration and its own limits."""

import itertools

import numpy as np
import pytest

import pnd_theory as pt

from conftest import make_problem


def _joint_per_sample_enumeration(p, U, V, X, Y, layer):
    """Expected loss when every sample draws its own weight mask, by enumerating the
    joint law of all samples' masks (written independently of the library)."""
    n_out, d = U.shape
    n_in, N = X.shape
    shape = (n_out, d) if layer == "output" else (n_in, d)
    m = int(np.prod(shape))
    total = 0.0
    for bits in itertools.product([0, 1], repeat=m * N):
        bits = np.array(bits).reshape(N, *shape)
        prob = np.prod(np.where(bits == 1, 1 - p, p))
        masks = bits / (1 - p)
        loss = 0.0
        for k in range(N):
            Uk = U * masks[k] if layer == "output" else U
            Vk = V * masks[k] if layer == "input" else V
            loss += np.sum((Y[:, k] - Uk @ Vk.T @ X[:, k]) ** 2) / N
        total += prob * loss
    return total


@pytest.mark.parametrize("layer", ["input", "output"])
def test_per_sample_and_per_batch_dropconnect_share_the_expected_loss(layer, rng):
    """A mask per sample or one per mini-batch gives the same expected loss."""
    U, V, X, Y = make_problem(rng, n_in=2, width=2, n_out=2, n_samples=2)
    p = 0.35
    joint = _joint_per_sample_enumeration(p, U, V, X, Y, layer)
    batch = pt.exact_expected_loss(pt.DropConnect(p, layer, per_sample=False), U, V, X, Y)
    sample = pt.exact_expected_loss(pt.DropConnect(p, layer, per_sample=True), U, V, X, Y)
    np.testing.assert_allclose(batch, joint, rtol=1e-12)
    np.testing.assert_allclose(sample, joint, rtol=1e-12)


def test_gaussian_enumeration_is_exact_against_quadrature(rng):
    """The two-point replacement of N(1, lam) against Gauss-Hermite quadrature."""
    U, V, X, Y = make_problem(rng, n_in=2, width=2, n_out=1, n_samples=3)
    p = 0.4
    lam = p / (1 - p)
    nodes, weights = np.polynomial.hermite_e.hermegauss(4)  # exact to degree 7 per variable
    weights = weights / weights.sum()
    total = 0.0
    for idx in itertools.product(range(4), repeat=2):
        xi = 1 + np.sqrt(lam) * nodes[list(idx)]
        w = np.prod(weights[list(idx)])
        total += w * np.mean(np.sum((Y - U @ np.diag(xi) @ V.T @ X) ** 2, axis=0))
    np.testing.assert_allclose(pt.exact_expected_loss(pt.GaussianDropout(p), U, V, X, Y), total, rtol=1e-12)


def test_exact_refuses_large_laws(rng):
    U, V, X, Y = make_problem(rng, n_in=5, width=5, n_out=5)
    with pytest.raises(ValueError, match=r"2\^25 .*max_configurations"):
        pt.exact_expected_loss(pt.DropConnect(0.5, "input"), U, np.ones((5, 5)), X[:5], Y[:5])
    with pytest.raises(ValueError, match="max_configurations"):
        pt.exact_expected_loss(pt.Dropout(0.5), U, V, X, Y, max_configurations=8)


def test_p_zero_gives_the_plain_loss(rng):
    U, V, X, Y = make_problem(rng)
    np.testing.assert_allclose(pt.exact_expected_loss(pt.PerNodeDrop(0.0, "both"), U, V, X, Y),
                               pt.plain_loss(U, V, X, Y), rtol=1e-12)
