"""The gradient covariance by Monte Carlo over real autograd gradients, through
:class:`~pnd_theory.nn.network.LinearNetwork` or the torch layers that realise the law."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from .._validation import (InvalidParameterError, check_bool, check_choice, check_count, check_memory,
                           check_positive_int, check_seed, resolve_device, user_stacklevel)
from ..nn.table import network_for
from ..nn.network import LinearNetwork
from ..laws.strategies import validate_strategy
from .common import VIAS, _check_local_reparameterization, _numpy_problem
from .results import MonteCarloGradientNoise

def _gradient_draws(strategy, U, V, X, Y, draws, seed, via, local_reparameterization, device=None, progress=False,
                    names="U, V, X, Y"):
    """``draws`` independent gradients (draws, P) of the mini-batch loss, by autograd; gradients
    past the float range are refused, naming the arrays (``names``) whose scale puts them there."""
    n_params = U.size + V.size
    check_memory(f"draws={draws} of {n_params} parameters, batch of {X.shape[1]}",
                 3 * draws * n_params + n_params ** 2 + 4 * X.shape[1] * (X.shape[0] + n_params),
                 "gradient draws, their covariance and the batch's masks")
    device = resolve_device(device)
    Xt = torch.as_tensor(X.T, device=device)
    Yt = torch.as_tensor(Y.T, device=device)
    generator = torch.Generator(device=device).manual_seed(seed)
    if via == "network":

        n_out, d = U.shape
        net = LinearNetwork(V.shape[0], d, n_out, strategy, device=device, generator=generator, U=U, V=V).train()
        params = (net.U, net.V)

        def grads():
            loss = ((net(Xt) - Yt) ** 2).sum(1).mean()
            gU, gV = torch.autograd.grad(loss, params)
            return gU, gV
    else:
        law = strategy.law(V.shape[0], V.shape[1], U.shape[0])
        net = network_for(law, U, V, generator=generator, device=device,
                          local_reparameterization=local_reparameterization)
        w1, w2 = net[0].weight, net[2].weight

        def grads():
            loss = ((net(Xt) - Yt) ** 2).sum(1).mean()
            g1, g2 = torch.autograd.grad(loss, (w1, w2))
            return g2, g1.T          # d/dU = grad of the second weight, d/dV = (grad of V^T)^T
    out = torch.empty((draws, U.size + V.size), dtype=torch.float64, device=device)
    for t in tqdm(range(draws), desc="gradient draws", unit="draw", disable=not progress, leave=False):
        gU, gV = grads()
        out[t, :U.size] = gU.detach().reshape(-1)
        out[t, U.size:] = gV.detach().reshape(-1)
    out = out.cpu().numpy()
    if not np.all(np.isfinite(out)):
        raise InvalidParameterError(
            f"{names} must have scales whose gradients are finite float numbers; the sampled gradients overflow "
            f"(largest entries: U {np.abs(U).max(initial=0):.3g}, V {np.abs(V).max(initial=0):.3g}, "
            f"X {np.abs(X).max(initial=0):.3g}, Y {np.abs(Y).max(initial=0):.3g})")
    return out


def _mean_se(estimates, what):
    """Mean and standard error of independent estimates of a trace (the spread computed in the
    units of the largest, so that squares of large estimates do not overflow).  Where the
    estimates themselves overflow, both are +inf (a trace of a covariance is not negative), with
    a warning: never NaN, never a finite estimate with an infinite error unsaid."""
    est = np.asarray(estimates, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        top = float(np.abs(est).max(initial=0.0))
        if np.isfinite(top) and top > 0:
            return top * float((est / top).mean()), top * float((est / top).std(ddof=1)) / math.sqrt(est.size)
    if top == 0:
        return 0.0, 0.0
    warnings.warn(f"{what}: the variances of the sampled gradients overflow the float range, so the trace and its "
                  "standard error are reported as inf", RuntimeWarning, stacklevel=user_stacklevel())
    return np.inf, np.inf


def _group_trace(g, groups):
    """Mean and standard error of the unbiased trace estimate over independent groups of draws."""
    parts = np.array_split(g, groups)
    with np.errstate(over="ignore", invalid="ignore"):
        est = [p.var(axis=0, ddof=1).sum() for p in parts]
    return _mean_se(est, "monte_carlo_gradient_noise")


def monte_carlo_gradient_noise(strategy, U, V, X_batch, Y_batch, draws=2000, *, seed=0, groups=20, via="network",
                               local_reparameterization=False, device=None, progress=True) -> MonteCarloGradientNoise:
    r"""Monte Carlo estimate of the mask-induced gradient covariance from real autograd gradients.

    .. math::

        \widehat{\mathrm{Cov}}[g] = \frac1{T-1} \sum_t (g^{(t)} - \bar g)(g^{(t)} - \bar g)^\top,
        \qquad g^{(t)} = \nabla_{(U, V)} \frac1B \sum_k \|y_k - f_{M^{(t)}}(x_k)\|^2,

    each :math:`g^{(t)}` computed by ``torch.autograd`` through a network in training mode that
    draws its own masks.

    Parameters
    ----------
    strategy : Strategy
    U, V : arrays (n_out, d), (n_in, d)
    X_batch, Y_batch : arrays (n_in, B), (n_out, B)
    draws : int
        Number of independent mask draws :math:`T` (at least ``2 * groups``).
    seed : int
        Seed of the torch generator of the masks.
    groups : int
        The draws are split into this many independent groups (at least 2); the standard
        error of the trace is the spread of the group estimates.
    via : {"network", "layers"}
        ``"network"``: :class:`~pnd_theory.nn.network.LinearNetwork` with factors ``U``, ``V``.
        ``"layers"``: ``Sequential(first, hidden, second)`` from :mod:`pnd_theory.nn`
        (``PerNodeDropLinear``, ``DropConnectLinear`` or a hidden-unit module), first weight
        :math:`V^\top`, second :math:`U`, no bias.
    local_reparameterization : bool
        With ``via="layers"``: ``PerNodeDropLinear(..., local_reparameterization=True)``.
    device : str or torch.device, optional
        Where the network runs (the CPU by default; ``"cuda"`` must be present).
    progress : bool
        Show a progress bar (tqdm) over the draws.

    Returns
    -------
    MonteCarloGradientNoise

    Examples
    --------
    The estimate agrees with the closed form of :func:`gradient_noise` within its standard errors:

    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> mc = pt.monte_carlo_gradient_noise(pt.Dropout(0.5), U, V, X, Y, draws=400, progress=False)
    >>> exact = pt.gradient_noise(pt.Dropout(0.5), U, V, X, Y).trace
    >>> bool(abs(mc.trace - exact) < 4 * mc.trace_se), mc.covariance.shape  # 2*4 + 3*4 parameters
    (True, (20, 20))
    """
    validate_strategy(strategy)
    draws = check_count("draws", draws)
    groups = check_count("groups", groups)
    if groups < 2:
        raise InvalidParameterError(f"groups must be at least 2 to give a standard error, got {groups}")
    if draws < 2 * groups:
        raise InvalidParameterError(f"draws must be at least 2 * groups = {2 * groups}, got draws={draws}")
    seed = check_seed(seed)
    via = check_choice("via", via, VIAS)
    local_reparameterization = check_bool("local_reparameterization", local_reparameterization)
    U, V, X, Y = _numpy_problem(U, V, X_batch, Y_batch)
    law = strategy.law(V.shape[0], V.shape[1], U.shape[0])
    _check_local_reparameterization(strategy, law, local_reparameterization)
    if local_reparameterization and via != "layers":
        raise InvalidParameterError("local_reparameterization=True exists only in the torch layer: use via='layers'")
    device = resolve_device(device)
    g = _gradient_draws(strategy, U, V, X, Y, draws, seed, via, local_reparameterization, device,
                        check_bool("progress", progress), names="U, V, X_batch, Y_batch")
    trace, se = _group_trace(g, groups)
    return MonteCarloGradientNoise(
        trace=trace, trace_se=se, mean=g.mean(0), mean_se=g.std(0, ddof=1) / math.sqrt(draws),
        covariance=np.cov(g, rowvar=False), draws=draws, via=via,
    )
