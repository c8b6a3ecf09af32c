"""Shared fixtures: random problems with correlated (non-whitened) inputs."""

from contextlib import nullcontext

import numpy as np
import pytest
import torch

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

import pnd_theory as pt


def make_problem(rng, n_in=3, width=4, n_out=2, n_samples=6, correlation=0.6):
    """Factors and data with correlated inputs: ``S = X X^T / N`` far from diagonal."""
    mix = np.eye(n_in) + correlation * rng.normal(size=(n_in, n_in))
    X = mix @ rng.normal(size=(n_in, n_samples))
    Y = rng.normal(size=(n_out, n_samples))
    U = rng.normal(size=(n_out, width))
    V = rng.normal(size=(n_in, width))
    return U, V, X, Y


def all_strategies(width=4, rng=None):
    """One instance of every strategy (and every layer/stir option) for a given width."""
    rng = rng or np.random.default_rng(1234)
    B = rng.normal(size=(width, width))
    return [
        pt.Dropout(0.3),
        pt.GaussianDropout(0.4),
        pt.DropBlock(0.35, 2),
        pt.NodeDropout(list(np.linspace(0.1, 0.6, width))),
        pt.DropConnect(0.3, "output"),
        pt.DropConnect(0.25, "input"),
        pt.DropConnect(0.2, "both", per_sample=True),
        pt.PerNodeDrop(0.3, "input"),
        pt.PerNodeDrop(0.3, "output", stir="gaussian"),
        pt.PerNodeDrop(0.2, "both"),
        pt.PerNodeDrop(0.2, "both", stir="gaussian"),
        pt.HiddenNoise(B @ B.T / width),
    ]


STRATEGIES = all_strategies()


class Triangle(pt.ScalarLaw):
    """A user's law written with its moments and a sampler only: triangular on [0, 2], the law of
    u1 + u2 for independent uniforms, E[m^k] = (2^(k+2) - 2) / ((k+1)(k+2))."""

    def moment(self, k):
        return (2 ** (k + 2) - 2) / ((k + 1) * (k + 2))

    def sample(self, shape, generator=None, device=None, dtype=None):
        u = torch.rand((2,) + tuple(shape), generator=generator, device=device, dtype=dtype or torch.float64)
        return u[0] + u[1]


@pytest.fixture
def rng():
    return np.random.default_rng(20251)


@pytest.fixture(autouse=True)
def single_thread():
    """The matrices in the tests are tiny: BLAS, OpenMP and torch threads only add overhead,
    and on a shared 2-core machine their spinning slows the suite several times over."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1) if threadpool_limits else nullcontext():
        yield
    torch.set_num_threads(previous)
