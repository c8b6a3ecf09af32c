r"""Monte Carlo estimate of the expected loss with real sampled masks (torch, CPU or GPU).

.. math::

    \hat E = \frac1T \sum_{t=1}^T \frac1N \sum_k \|y_k - f_{M^{(t)}}(x_k)\|^2,
    \qquad \mathrm{se} = \frac{\mathrm{sd}_t}{\sqrt T},

where each draw :math:`M^{(t)}` is a full draw of the strategy's masks for the data set: one
mask per sample for per-sample laws, one mask shared by all samples otherwise.

Per-sample weight noise whose every weight component is one Bernoulli or Gaussian law with
independent entries (PerNodeDrop, per-sample DropConnect) never materializes its masks: each
layer of each draw is the fused per-sample masked product of :mod:`pnd_theory.kernels`, the
draws ``t`` and samples ``k`` being the rows of one call.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from .._validation import InvalidParameterError, as_problem, check_monte_carlo
from ..laws.masks import Bernoulli, Gaussian
from ..kernels import masked_linear
from ..laws._sampling import draw_seed_tensor
from ..laws.strategies import validate_strategy

#: masks entries (and intermediate products) held at once by default
MAX_ELEMENTS = 2**23


def monte_carlo_loss(strategy, U, V, X, Y, samples, seed=0, device=None, dtype=torch.float64,
                     max_elements=MAX_ELEMENTS, progress=False):
    r"""Monte Carlo estimate of :math:`E[\text{loss}]` and its standard error.

    .. math::

        \hat E = \frac1T \sum_{t} \frac1N \sum_k \|y_k - f_{M^{(t)}}(x_k)\|^2,
        \qquad \mathrm{se} = \mathrm{sd}_t / \sqrt{T}

    Draws are vectorized in batches of masks holding at most ``max_elements`` mask entries.

    Parameters
    ----------
    strategy : Strategy
    U, V, X, Y : arrays
        Shapes ``(n_out, d)``, ``(n_in, d)``, ``(n_in, N)``, ``(n_out, N)``.
    samples : int
        Number of independent draws :math:`T` (at least 2).
    seed : int
        Seed of the torch generator: the same seed gives the same result on one device.
    device : str or torch.device, optional
        ``"cuda"`` to sample on the GPU (it must be present); the CPU by default.
    dtype : torch.dtype
    max_elements : int
    progress : bool
        Show a progress bar over the batches of draws.

    Returns
    -------
    (float, float)
        The estimate and its standard error.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> mean, se = pt.monte_carlo_loss(pt.Dropout(0.5), U, V, X, Y, samples=2000, seed=0)
    >>> bool(abs(mean - pt.expected_loss(pt.Dropout(0.5), U, V, X, Y)) < 5 * se)
    True
    """
    validate_strategy(strategy)
    samples, max_elements, seed, dtype, progress, device = check_monte_carlo(
        samples, max_elements, seed, dtype, progress, device)
    _, *arrays = as_problem(U, V, X, Y)
    U, V, X, Y = (torch.as_tensor(a, dtype=dtype, device=device) for a in arrays)
    law = strategy.law(V.shape[0], V.shape[1], U.shape[0])
    n_samples = X.shape[1]
    generator = torch.Generator(device=device).manual_seed(seed)
    fused = fused_weight_noise(law)
    if fused is not None:
        return _fused_monte_carlo(fused, U, V, X, Y, samples, generator, max_elements, progress, strategy)
    per_draw = (n_samples if law.per_sample else 1) * max(
        [int(np.prod(c.shape)) for c in law.components.values()] + [1]
    ) + n_samples * (V.shape[1] + U.shape[0])
    chunk = max(1, min(samples, max_elements // per_draw))
    losses = []
    for start in _starts(samples, chunk, progress, strategy):
        t = min(chunk, samples - start)
        masks = law.sample(t, n_samples, generator, device, dtype)
        residual = Y.T - law.predict(U, V, X, masks)
        losses.append((residual * residual).sum(-1).mean(-1))
    return _estimate(torch.cat(losses), samples)


def _estimate(losses, samples, names="U, V, X and Y"):
    """The mean of the draws and its standard error, computed on the draws divided by their
    largest value (no overflow in the squares of the spread); an estimate or a standard error
    that is not finite is said (a warning), and NaN draws are refused (naming the arrays)."""
    if bool(torch.isnan(losses).any()):
        raise InvalidParameterError(
            f"{names} must have scales at which every draw of the loss is a number; some draws are NaN "
            "(an overflow inside a draw)")
    top = float(losses.max()) if losses.numel() else 0.0
    if math.isinf(top):
        warnings.warn("the Monte Carlo draws of the loss overflow float64: the estimate and its standard error "
                      "are inf", RuntimeWarning, stacklevel=3)
        return math.inf, math.inf
    mean, se = float(losses.mean()), float(losses.std(unbiased=True)) / samples**0.5
    if not (math.isfinite(mean) and math.isfinite(se)):  # the squares of the spread overflow
        scaled = losses / top
        mean, se = float(scaled.mean()) * top, float(scaled.std(unbiased=True)) / samples**0.5 * top
    if not math.isfinite(se):
        warnings.warn(f"the Monte Carlo standard error is not finite ({se}): the estimate {mean:.6g} has no error "
                      "bar", RuntimeWarning, stacklevel=3)
    return mean, se


def _starts(samples, chunk, progress, strategy):
    starts = range(0, samples, chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"Monte Carlo {strategy!r}", unit="batch")
    return starts


def fused_weight_noise(law):
    """``{"input": (p, gaussian), "output": ...}`` when the fused route applies to ``law``, else None.

    It applies to per-sample laws with no hidden component whose weight components each have
    independent entries following one :class:`~pnd_theory.laws.Bernoulli` or
    :class:`~pnd_theory.laws.Gaussian` law (the class itself, as for the torch layers: a subclass
    keeps its own sampler) with a numeric drop probability.
    """
    comps = law.components
    if not law.per_sample or "hidden" in comps or not comps:
        return None
    plan = {}
    for name, comp in comps.items():
        single = getattr(comp, "single_law", None)
        # the built-in laws themselves: a subclass may draw differently, and keeps its own sampler
        if type(single) not in (Bernoulli, Gaussian) or not getattr(comp, "independent_entries", False):
            return None
        if not isinstance(single.p, (float, int, np.floating, np.integer)):
            return None
        plan[name] = (float(single.p), type(single) is Gaussian)
    return plan


def _fused_monte_carlo(plan, U, V, X, Y, samples, generator, max_elements, progress, strategy):
    r"""Each draw: :math:`f = (U \circ M^U_{t,k}) (V \circ M^V_{t,k})^\top x_k` by fused products.

    Gaussian masks are drawn conditionally (``masked_linear(..., conditional=True)``): the loss
    depends on the outputs only, whose law is then exact at the cost of two matrix products."""
    n_in, d = V.shape
    n_out, n_samples = U.shape[0], X.shape[1]
    per_draw = n_samples * (n_in + d + n_out)
    chunk = max(1, min(samples, max_elements // per_draw))
    rows, targets = X.T.contiguous(), Y.T.contiguous()
    Vt = V.T.contiguous()
    losses = []
    for start in _starts(samples, chunk, progress, strategy):
        t = min(chunk, samples - start)
        x = rows.repeat(t, 1)  # row t * N + k: sample k of draw t, its own masks
        if "input" in plan:
            h = masked_linear(x, Vt, draw_seed_tensor(generator), *plan["input"], conditional=True)
        else:
            h = x @ V
        if "output" in plan:
            f = masked_linear(h, U, draw_seed_tensor(generator), *plan["output"], conditional=True)
        else:
            f = h @ U.T
        residual = f.reshape(t, n_samples, n_out) - targets
        losses.append((residual * residual).sum(-1).mean(-1))
    return _estimate(torch.cat(losses), samples)
