r"""Expected loss by exact enumeration over every mask configuration.

.. math::

    E[\text{loss}] = \sum_{\text{configurations } c} P(c)\;
        \frac1N \sum_k \|y_k - f_c(x_k)\|^2 .

Why this is exact for every built-in law, the Gaussian ones included: the loss is a
polynomial of degree at most 2 in every mask variable (each variable enters the prediction
linearly).  Its expectation therefore depends on each independent variable only through its
moments up to order 2 (order 3 would be enough to spare), and a two-point law with the same
mean and variance gives the same expectation to rounding.  Bernoulli variables are two-point
already; a Gaussian :math:`N(1, \lambda)` is replaced by :math:`1 \pm \sqrt\lambda` with
probability 1/2 each, and a :class:`~pnd_theory.strategies.HiddenNoise` mask
:math:`\xi = 1 + L z` by independent signs :math:`z`.  Per-sample laws are enumerated for one
sample at a time: by linearity the expectation of the mean over samples is the mean of the
per-sample expectations, so one enumeration over a single mask serves all samples.
"""

from __future__ import annotations

import numpy as np
import torch

from ._validation import as_problem
from .penalty import _check_strategy

MAX_CONFIGURATIONS = 2**20


def enumerate_masks(law, max_configurations=MAX_CONFIGURATIONS, chunk=4096):
    """Yield ``(probabilities, masks)`` over all configurations of ``law``, in chunks.

    ``masks`` maps each random component to a float64 tensor of shape
    ``(chunk, 1, *component_shape)`` (one mask for all samples); probabilities sum to 1.
    """
    comps = law.components
    supports = [c.support() for c in comps.values()]
    values = np.concatenate([s[0] for s in supports]) if supports else np.zeros((0, 2))
    probs = np.concatenate([s[1] for s in supports]) if supports else np.zeros((0, 2))
    n = values.shape[0]
    total = 2**n
    if total > max_configurations:
        raise ValueError(
            f"exact enumeration needs 2^{n} = {total} mask configurations, above max_configurations="
            f"{max_configurations}; use smaller sizes or monte_carlo_loss"
        )
    values_t, probs_t = torch.as_tensor(values), torch.as_tensor(probs)
    rows = torch.arange(n)
    splits = np.cumsum([0] + [c.n_variables for c in comps.values()])
    for start in range(0, total, chunk):
        idx = torch.arange(start, min(start + chunk, total))
        bits = (idx[:, None] >> rows) & 1
        z = values_t[rows, bits]
        weight = probs_t[rows, bits].prod(dim=1)
        masks = {
            name: c.entries(z[:, splits[i]:splits[i + 1]]).unsqueeze(1)
            for i, (name, c) in enumerate(comps.items())
        }
        yield weight, masks


def exact_expected_loss(strategy, U, V, X, Y, max_configurations=MAX_CONFIGURATIONS) -> float:
    r"""Expected loss by summing over all mask configurations (small sizes only).

    .. math::

        E[\text{loss}] = \sum_c P(c)\, \frac1N \sum_k \|y_k - f_c(x_k)\|^2

    Exact for Bernoulli, Gaussian and :class:`HiddenNoise` laws alike (module docstring).

    Parameters
    ----------
    strategy : Strategy
    U, V, X, Y : arrays
        Shapes ``(n_out, d)``, ``(n_in, d)``, ``(n_in, N)``, ``(n_out, N)``.
    max_configurations : int
        Refuse (``ValueError``) when the law has more configurations than this (default
        :math:`2^{20}`).

    Returns
    -------
    float
    """
    _check_strategy(strategy)
    _, *arrays = as_problem(U, V, X, Y)
    U, V, X, Y = (torch.as_tensor(a, dtype=torch.float64, device="cpu") for a in arrays)
    law = strategy.law(V.shape[0], V.shape[1], U.shape[0])
    total = torch.zeros((), dtype=torch.float64)
    for weight, masks in enumerate_masks(law, max_configurations):
        residual = Y.T - law.predict(U, V, X, masks)
        total += (weight * (residual * residual).sum(-1).mean(-1)).sum()
    return float(total)
