"""The gradient covariance of one mini-batch: closed form or enumeration, and the per-sample /
per-batch pairing of a weight-noise law."""

from __future__ import annotations

import warnings

import numpy as np

from .._backend import max_abs
from .._validation import InvalidParameterError, check_bool, check_positive_int
from ..laws.strategies import validate_strategy
from .closed_form import _gradient_noise_closed_form
from .common import (MAX_CONFIGURATIONS, _check_local_reparameterization, _check_method, _numpy_problem,
                     _reject_covariance_only, _single_independent_component)
from .enumeration import _gradient_noise_enumeration
from .results import GradientNoise

def gradient_noise(strategy, U, V, X_batch, Y_batch, *, method="auto", local_reparameterization=False,
                   full_covariance=None, max_configurations=MAX_CONFIGURATIONS) -> GradientNoise:
    r"""Mask-induced covariance of the mini-batch gradient, exactly, from the law's moments.

    .. math::

        g = \nabla_{(U, V)} \frac1B \sum_k \|y_k - f_{M_k}(x_k)\|^2, \qquad
        \mathrm{Cov}[g] = \frac1{B^2} \sum_k C_{kk} \ \text{(per-sample masks)}, \quad
        \frac1{B^2} \sum_{k,l} C_{kl} \ \text{(one mask per batch)},

    :math:`C_{kl} = \mathrm{Cov}_M[g_k(M), g_l(M)]`.  Whether masks are per sample comes from
    the law (``strategy.law(...).per_sample``).  The mean is :math:`E[g] = \nabla(L + R)` on the
    batch for either sharing.

    Parameters
    ----------
    strategy : Strategy
        Any strategy whose law is made of independent variables (every built-in one;
        :class:`~pnd_theory.HiddenNoise` fixes only two moments and is refused).
    U : array (n_out, d)
    V : array (n_in, d)
    X_batch : array (n_in, B)
        The batch, samples as columns (the package's conventions).
    Y_batch : array (n_out, B)
    method : {"auto", "closed_form", "enumeration"}
        ``"closed_form"``: the covariance from the masks' moments up to order 4 in closed form
        (theory page, :ref:`theory-batch`; one random component of independent variables:
        hidden-unit noise or weight noise on one layer; scales to large sizes).  ``"enumeration"``: every configuration of a discrete law with the same
        moments up to order 4, gradients by torch autograd (tiny sizes; any number of
        components, for instance ``layer="both"``).  ``"auto"``: the closed form when it
        applies, else enumeration.
    local_reparameterization : bool
        The gradient noise of the fast path of
        ``PerNodeDropLinear(stir="gaussian", local_reparameterization=True)`` instead of the
        exact layer (closed form; strategy ``PerNodeDrop(p, "input" or "output", "gaussian")``).
    full_covariance : bool, optional
        Form the ``P x P`` covariance.  Default: when ``P <= 1024`` and the dense
        coefficient arrays of one sample hold at most :data:`MAX_ELEMENTS` numbers (the
        traces and the mean never need them for weight noise).
    max_configurations : int
        Refuse enumeration above this many configurations.

    Returns
    -------
    GradientNoise
        ``.trace``, ``.covariance``, ``.mean``, ``.trace_U``, ``.trace_V``,
        ``.trace_per_sample``, ``.trace_per_batch`` and more.

    Raises
    ------
    TypeError
        For a non-strategy or non-boolean flags.
    ValueError
        For shapes that do not match, non-finite entries, an unsupported law or an
        enumeration that would be too large.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> noise = pt.gradient_noise(pt.Dropout(0.5), U, V, X, Y)
    >>> noise.method, noise.covariance.shape
    ('closed_form', (20, 20))

    It equals the enumeration over masks; a mask shared by the batch would leave more noise:

    >>> enumerated = pt.gradient_noise(pt.Dropout(0.5), U, V, X, Y, method="enumeration")
    >>> bool(np.isclose(noise.trace, enumerated.trace))
    True
    >>> bool(noise.trace_per_batch > noise.trace_per_sample)
    True
    """
    validate_strategy(strategy)
    method = _check_method(method)
    local_reparameterization = check_bool("local_reparameterization", local_reparameterization)
    if full_covariance is not None:
        full_covariance = check_bool("full_covariance", full_covariance)
    max_configurations = check_positive_int("max_configurations", max_configurations)
    U, V, X, Y = _numpy_problem(U, V, X_batch, Y_batch)
    n_out, d = U.shape
    n_in = V.shape[0]
    law = strategy.law(n_in, d, n_out)
    _reject_covariance_only(law)
    local_layer = _check_local_reparameterization(strategy, law, local_reparameterization)
    B = X.shape[1]
    if method == "auto":
        method = "closed_form" if (local_layer is not None or _single_independent_component(law) is not None) \
            else "enumeration"
    if local_layer is not None and method != "closed_form":
        raise InvalidParameterError("local_reparameterization=True is computed in closed form only; use method='closed_form' or 'auto'")
    # U -> U / c, V -> V c leaves every masked network unchanged and scales the gradients by c
    # and 1 / c: computed on balanced factors (c a power of two, exact) and scaled back
    c = _balancing_scale(U, V)
    Ub, Vb = (U / c, V * c) if c != 1.0 else (U, V)
    if method == "closed_form":
        res = _gradient_noise_closed_form(strategy, law, Ub, Vb, X, Y, local_layer, full_covariance)
    else:
        res = _gradient_noise_enumeration(law, Ub, Vb, X, Y, full_covariance, max_configurations)
    mean, cov_ps, cov_pb, tr_ps, tr_pb = _scaled_back(res, c, U.size) if c != 1.0 else res
    _check_finite_noise(mean, tr_ps, tr_pb, {"U": U, "V": V, "X_batch": X, "Y_batch": Y})
    per_sample = bool(law.per_sample) or local_layer is not None
    tr = tr_ps if per_sample else tr_pb
    cov = cov_ps if per_sample else cov_pb
    return GradientNoise(
        trace=tr[0] + tr[1], covariance=cov, mean=mean, trace_U=tr[0], trace_V=tr[1],
        trace_per_sample=tr_ps[0] + tr_ps[1],
        trace_per_batch=None if local_layer is not None else tr_pb[0] + tr_pb[1],
        per_sample=per_sample, batch_size=B, method=method,
        local_reparameterization=local_reparameterization, shapes=(U.shape, V.shape),
    )


def _balancing_scale(U, V) -> float:
    """A power of two ``c`` with ``U / c`` and ``V c`` of comparable largest entries (1 unless
    they differ by more than 2^60)."""
    su, sv = max_abs(np, U), max_abs(np, V)
    if su == 0.0 or sv == 0.0:
        return 1.0
    e = (int(np.frexp(su)[1]) - int(np.frexp(sv)[1])) // 2
    return float(np.ldexp(1.0, e)) if abs(e) > 30 else 1.0


def _scaled_back(res, c, n_u):
    """The gradient noise of (U, V) from that of (U / c, V c): gradients times 1/c (U) and c (V)."""
    mean, cov_ps, cov_pb, tr_ps, tr_pb = res
    with np.errstate(over="ignore", invalid="ignore"):
        w = np.concatenate([np.full(n_u, 1.0 / c), np.full(mean.size - n_u, c)])
        outer = np.outer(w, w)
        traces = [None if t is None else (t[0] / c / c, t[1] * c * c) for t in (tr_ps, tr_pb)]
        return (mean * w, None if cov_ps is None else cov_ps * outer, None if cov_pb is None else cov_pb * outer,
                traces[0], traces[1])


def _check_finite_noise(mean, tr_ps, tr_pb, arrays):
    """Where the gradient noise of finite inputs is not a finite float64: an infinite trace
    with a warning that says so, never NaN (refused: the scales of the inputs named)."""
    values = [float(v) for t in (tr_ps, tr_pb) if t is not None for v in t] + [float(np.abs(mean).max(initial=0.0))]
    if all(np.isfinite(values)):
        return
    scales = ", ".join(f"max |{k}| = {max_abs(np, a):.3g}" for k, a in arrays.items())
    if any(np.isnan(values)):
        raise InvalidParameterError(
            f"U, V, X_batch and Y_batch must have scales at which the gradient covariance is a float64 ({scales})")
    warnings.warn(f"the gradient covariance overflows float64 at these scales ({scales}): its trace is inf",
                  RuntimeWarning, stacklevel=3)


def mask_sharing_pair(strategy):
    r"""The per-sample and the per-batch version of a weight-noise strategy, ``(per_sample,
    per_batch)``: the same law, drawn for every sample or shared by the mini-batch
    (``strategy.with_per_sample``).  ``PerNodeDrop(p, layer)`` pairs with
    ``DropConnect(p, layer)``.  Refused for laws with hidden-unit noise (read from the law).

    Examples
    --------
    >>> import pnd_theory as pt
    >>> pt.mask_sharing_pair(pt.PerNodeDrop(0.5, "input"))
    (PerNodeDrop(p=0.5, layer='input', stir='drop'), DropConnect(p=0.5, layer='input', per_sample=False))
    """
    validate_strategy(strategy)
    law = strategy.law(1, strategy.min_width, 1)
    if "hidden" in law.components or not law.components:
        raise InvalidParameterError(
            "strategy must have noise on the weights only (masks of U or V) to have a per-sample and a per-batch "
            f"version; got {strategy!r}, whose law has components {sorted(law.components)}"
        )
    return strategy.with_per_sample(True), strategy.with_per_sample(False)
