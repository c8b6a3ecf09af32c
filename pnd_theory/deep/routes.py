r"""The expected loss of a noisy deep linear network by enumeration and by Monte Carlo.

Both routes run the masked network itself (:meth:`DeepLaw.predict`) and never the closed form.

* Enumeration: every mask variable takes the values of its law's support of order 2 (a finite
  law's own support; the Gauss quadrature of a continuous law; signs for a covariance-only
  hidden law), and the configurations are enumerated in mixed radix
  (:func:`pnd_theory.routes.exact.enumerate_masks`).  Exact for every law: the loss is a polynomial of
  degree at most 2 in each mask variable (each enters every path once), so its expectation
  depends on each variable only through its first two moments.  One configuration masks all
  samples at once: by linearity the expectation of the mean over samples is the mean of the
  per-sample expectations, whether the laws are drawn per sample or per batch.
* Monte Carlo: real masks drawn by the laws themselves (torch, CPU or GPU), one per sample or
  one per batch as the law says.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import check_monte_carlo, check_positive_int, warn_if_beyond_floats
from ..routes.exact import LOSS_ORDER, MAX_CONFIGURATIONS, enumerate_masks
from ..routes.montecarlo import _estimate
from .network import as_float64_cpu, check_problem, deep_law

#: mask entries (and activations) held at once by default in Monte Carlo
MAX_ELEMENTS = 2**23


def exact_expected_loss(weights, X, Y, hidden=None, weight_noise=None, max_configurations=MAX_CONFIGURATIONS):
    r"""Expected loss of a noisy deep linear network by summing over all mask configurations.

    .. math::

        E[\text{loss}] = \sum_c P(c)\, \frac1N \sum_k \|y_k - f_c(x_k)\|^2

    over the configurations :math:`c` of every mask variable, each taking the values of a
    finite law with its law's first two moments (a finite law's own support, the Gauss
    quadrature of a continuous law).  The loss is of degree at most 2 in each mask variable, so
    this is exact for every law, finite or continuous (:ref:`theory-laws` of the theory page).

    Parameters
    ----------
    weights : list of arrays
        ``[W_1, ..., W_L]``, :math:`W_l` of shape ``(n_l, n_{l-1})``.
    X, Y : arrays ``(n_0, N)``, ``(n_L, N)``
    hidden, weight_noise : list, optional
        As in :func:`pnd_theory.deep.expected_loss`.
    max_configurations : int
        Refuse (:class:`~pnd_theory.InvalidParameterError`), before any work, when the masks
        have more configurations than this (default :math:`2^{20}`).

    Returns
    -------
    float

    Examples
    --------
    Gaussian masks on the units and on the last matrix: enumeration over two-point
    quadratures gives the closed form:

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> noise = dict(hidden=[pt.GaussianDropout(0.3)], weight_noise=[None, pt.Gaussian(0.2)])
    >>> exact = pt.deep.exact_expected_loss([V.T, U], X, Y, **noise)
    >>> bool(np.isclose(exact, pt.deep.expected_loss([V.T, U], X, Y, **noise)))
    True
    """
    max_configurations = check_positive_int("max_configurations", max_configurations)
    _, Ws, X, Y, sizes = check_problem(weights, X, Y)
    law = deep_law(sizes, hidden, weight_noise)
    Ws = as_float64_cpu(Ws)
    X, Y = as_float64_cpu([X, Y])
    total = torch.zeros((), dtype=torch.float64)
    for weight, masks in enumerate_masks(law, max_configurations, order=LOSS_ORDER):
        residual = Y.T - law.predict(Ws, X, masks)
        total += (weight * (residual * residual).sum(-1).mean(-1)).sum()
    warn_if_beyond_floats(total, "deep.exact_expected_loss", "the expected loss of these weights, X, Y")
    return float(total)


def monte_carlo_loss(weights, X, Y, samples, hidden=None, weight_noise=None, seed=0, device=None,
                     dtype=torch.float64, max_elements=MAX_ELEMENTS, progress=False):
    r"""Monte Carlo estimate of the expected loss of a noisy deep linear network.

    .. math::

        \hat E = \frac1T \sum_{t} \frac1N \sum_k \|y_k - f_{M^{(t)}}(x_k)\|^2,
        \qquad \mathrm{se} = \mathrm{sd}_t / \sqrt{T}

    Each draw :math:`M^{(t)}` is a full draw of every mask for the data set (one per sample
    for per-sample laws, one for all samples otherwise), sampled by the laws themselves.

    Parameters
    ----------
    weights : list of arrays
    X, Y : arrays ``(n_0, N)``, ``(n_L, N)``
    samples : int
        Number of independent draws :math:`T` (at least 2).
    hidden, weight_noise : list, optional
        As in :func:`pnd_theory.deep.expected_loss`.
    seed : int
        Seed of the torch generator on ``device``.
    device : str or torch.device, optional
        ``"cuda"`` to sample on the GPU (it must be present); the CPU by default.
    dtype : torch.dtype
    max_elements : int
        Mask entries and activations held at once (draws are batched to fit).
    progress : bool
        Show a progress bar over the batches of draws.

    Returns
    -------
    (float, float)
        The estimate and its standard error.

    Examples
    --------
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> noise = dict(hidden=[pt.Dropout(0.5)], weight_noise=[None, (pt.Bernoulli(0.2), "shared")])
    >>> estimate, se = pt.deep.monte_carlo_loss([V.T, U], X, Y, samples=4000, seed=0, **noise)
    >>> abs(estimate - pt.deep.expected_loss([V.T, U], X, Y, **noise)) < 4 * se  # the closed form
    True
    """
    samples, max_elements, seed, dtype, progress, device = check_monte_carlo(
        samples, max_elements, seed, dtype, progress, device)
    _, Ws, X, Y, sizes = check_problem(weights, X, Y)
    law = deep_law(sizes, hidden, weight_noise)
    Ws = [W.to(device=device, dtype=dtype) for W in as_float64_cpu(Ws)]
    X, Y = (a.to(device=device, dtype=dtype) for a in as_float64_cpu([X, Y]))
    N = X.shape[1]
    per_draw = sum((N if law.per_sample(name) else 1) * int(np.prod(c.shape))
                   for name, c in law.components.items()) + N * sum(sizes)
    chunk = max(1, min(samples, max_elements // per_draw))
    generator = torch.Generator(device=device).manual_seed(seed)
    starts = range(0, samples, chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="Monte Carlo (deep)", unit="batch")
    losses = []
    for start in starts:
        t = min(chunk, samples - start)
        masks = law.sample(t, N, generator, device, dtype)
        residual = Y.T - law.predict(Ws, X, masks)
        losses.append((residual * residual).sum(-1).mean(-1))
    losses = torch.cat(losses)
    if losses.numel() != samples:  # a law with nothing random: every draw is this one loss
        losses = losses[:1].expand(samples)
    return _estimate(losses, samples, "weights, X and Y")
