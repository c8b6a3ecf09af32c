"""The gradient covariance of one mini-batch: closed form or enumeration, and the per-sample /
per-batch pairing of a weight-noise law."""

from __future__ import annotations

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
        :class:`~pnd_theory.laws.strategies.HiddenNoise` fixes only two moments and is refused).
    U : array (n_out, d)
    V : array (n_in, d)
    X_batch : array (n_in, B)
        The batch, samples as columns (the package's conventions).
    Y_batch : array (n_out, B)
    method : {"auto", "closed_form", "enumeration"}
        ``"closed_form"``: the moment formula of the module docstring (one random component
        of independent variables: hidden-unit noise or weight noise on one layer; scales to
        large sizes).  ``"enumeration"``: every configuration of a discrete law with the same
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
    if method == "closed_form":
        res = _gradient_noise_closed_form(strategy, law, U, V, X, Y, local_layer, full_covariance)
    else:
        res = _gradient_noise_enumeration(law, U, V, X, Y, full_covariance, max_configurations)
    mean, cov_ps, cov_pb, tr_ps, tr_pb = res
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


def mask_sharing_pair(strategy):
    r"""The per-sample and the per-batch version of a weight-noise strategy, ``(per_sample,
    per_batch)``: the same law, drawn for every sample or shared by the mini-batch
    (``strategy.with_per_sample``).  ``PerNodeDrop(p, layer)`` pairs with
    ``DropConnect(p, layer)``.  Refused for laws with hidden-unit noise (read from the law)."""
    validate_strategy(strategy)
    law = strategy.law(1, strategy.min_width, 1)
    if "hidden" in law.components or not law.components:
        raise InvalidParameterError(
            "strategy must have noise on the weights only (masks of U or V) to have a per-sample and a per-batch "
            f"version; got {strategy!r}, whose law has components {sorted(law.components)}"
        )
    return strategy.with_per_sample(True), strategy.with_per_sample(False)
