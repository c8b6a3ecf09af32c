r"""Monte Carlo estimate of the expected loss with real sampled masks (torch, CPU or GPU).

.. math::

    \hat E = \frac1T \sum_{t=1}^T \frac1N \sum_k \|y_k - f_{M^{(t)}}(x_k)\|^2,
    \qquad \mathrm{se} = \frac{\mathrm{sd}_t}{\sqrt T},

where each draw :math:`M^{(t)}` is a full draw of the strategy's masks for the data set: one
mask per sample for per-sample laws, one mask shared by all samples otherwise.
"""

from __future__ import annotations

import numpy as np
import torch

from ._validation import (InvalidParameterError, as_problem, check_bool, check_dtype, check_positive_int, check_seed,
                          resolve_device)
from .strategies import check_strategy

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
    """
    check_strategy(strategy)
    samples = check_positive_int("samples", samples)
    if samples < 2:
        raise InvalidParameterError(f"samples must be at least 2 to give a standard error; got {samples}")
    max_elements = check_positive_int("max_elements", max_elements)
    seed = check_seed(seed)
    dtype = check_dtype(dtype)
    progress = check_bool("progress", progress)
    device = resolve_device(device)
    _, *arrays = as_problem(U, V, X, Y)
    U, V, X, Y = (torch.as_tensor(a, dtype=dtype, device=device) for a in arrays)
    law = strategy.law(V.shape[0], V.shape[1], U.shape[0])
    n_samples = X.shape[1]
    per_draw = (n_samples if law.per_sample else 1) * max(
        [int(np.prod(c.shape)) for c in law.components.values()] + [1]
    ) + n_samples * (V.shape[1] + U.shape[0])
    chunk = max(1, min(samples, max_elements // per_draw))
    generator = torch.Generator(device=device).manual_seed(seed)
    losses = []
    starts = range(0, samples, chunk)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"Monte Carlo {strategy!r}", unit="batch")
    for start in starts:
        t = min(chunk, samples - start)
        masks = law.sample(t, n_samples, generator, device, dtype)
        residual = Y.T - law.predict(U, V, X, masks)
        losses.append((residual * residual).sum(-1).mean(-1))
    losses = torch.cat(losses)
    return float(losses.mean()), float(losses.std(unbiased=True) / samples**0.5)
