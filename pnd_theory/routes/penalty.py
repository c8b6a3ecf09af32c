r"""Closed-form expected penalties, evaluated numerically.

For every strategy the expected training loss splits as 

.. math::

    E_{\text{mask}}\Big[\tfrac1N \sum_k \|y_k - f(x_k)\|^2\Big] = L(U, V) + R(U, V),

and :math:`R` follows from the mask law's first two moments alone.  With independent
components :math:`\xi` (covariance :math:`C`), :math:`M_U` and :math:`M_V` (independent entries
of variances :math:`\sigma^U_{oj}`, :math:`\sigma^V_{ij}`), all of mean 1,

.. math::

    R = \sum_{jk} C_{jk} (u_j^\top u_k)(v_j^\top S v_k)
        + \sum_j (1 + C_{jj}) \big(g^U_j s_j + a_j g^V_j + g^U_j g^V_j\big),

where :math:`a_j = \|u_j\|^2`, :math:`s_j = v_j^\top S v_j`,
:math:`g^U_j = \sum_o \sigma^U_{oj} U_{oj}^2` and :math:`g^V_j = \sum_i \sigma^V_{ij} S_{ii} V_{ij}^2`.
This one expression covers every built-in strategy (the closed forms of the theory page are its special cases); the
code reads the law and never branches on the strategy.
"""

from __future__ import annotations

import numpy as np

from .._backend import const, max_abs, namespace, ones, power_of_two, product_of_scales, result
from .._validation import InvalidParameterError, as_arrays, as_problem, check_factors, check_second_moment
from ..laws.strategies import validate_strategy


def _hidden_term(xp, cov, U, V, SV, a, s, gradient=False):
    r""":math:`H = \sum_{jk} C_{jk} (u_j^\top u_k)(v_j^\top S v_k)`, using the structure of ``C``;
    with ``gradient`` (numpy), also :math:`(\partial H/\partial U, \partial H/\partial V)`:
    :math:`2 U (C \circ V^\top S V)` and :math:`2 S V (C \circ U^\top U)`, blockwise."""
    values = const(xp, cov.values, U)
    if cov.kind == "diagonal":
        value = (values * a * s).sum()
        return (value, 2 * U * (values * s), 2 * SV * (values * a)) if gradient else value
    if cov.kind == "block":
        b = cov.block_size
        G = values.shape[0]
        Ub, Vb, SVb = U.reshape(U.shape[0], G, b), V.reshape(V.shape[0], G, b), SV.reshape(SV.shape[0], G, b)
        gram_u = xp.einsum("ogj,ogk->gjk", Ub, Ub)
        gram_v = xp.einsum("igj,igk->gjk", Vb, SVb)
        value = xp.einsum("gjk,gjk,g->", gram_u, gram_v, values)
        if not gradient:
            return value
        dU = 2 * xp.einsum("ogj,gjk,g->ogk", Ub, gram_v, values).reshape(U.shape)
        dV = 2 * xp.einsum("igj,gjk,g->igk", SVb, gram_u, values).reshape(V.shape)
        return value, dU, dV
    UU, VSV = U.T @ U, V.T @ SV
    value = (UU * values * VSV).sum()
    return (value, 2 * U @ (values * VSV), 2 * SV @ (values * UU)) if gradient else value


def penalty_of_law(law, U, V, S=None, x_scale=1.0):
    r"""The one closed form :math:`R(U, V)` of a :class:`~pnd_theory.laws.MaskLaw` (module
    docstring), in the backend of ``U``: a float for numpy, a 0-d tensor for torch (on the
    inputs' device, differentiable when they require grad).

    ``U`` (n_out, d), ``V`` (n_in, d), ``S`` (n_in, n_in) or ``None`` for the identity, already
    checked and of one backend; with ``x_scale``, ``S`` is the second moment of the inputs
    divided by ``x_scale`` (a power of two).  :math:`R` is homogeneous of degree 2 in ``U``, 2 in ``V`` and 1
    in ``S``, so it is computed on the factors divided by their largest entries and scaled back:
    no overflow or underflow where the value itself is representable.
    """
    xp = namespace(U)
    su, sv = max_abs(xp, U), max_abs(xp, V)
    ss = 1.0 if S is None else max_abs(xp, S)
    if su == 0.0 or sv == 0.0 or ss == 0.0:
        value = (U * 0).sum() * (V * 0).sum()
        return result(xp, value)
    if x_scale == 1.0 and all(1e-30 <= x <= 1e30 for x in (su, sv, ss)):
        # no intermediate of R can over- or underflow at these scales: no copies
        value = _penalty_normalized(xp, law, U, V, S)
        return result(xp, value)
    # the scale factors are plain floats: gradients flow through the normalized factors
    Un, Vn = U / su, V / sv
    Sn = None if S is None else S / ss
    value = _penalty_normalized(xp, law, Un, Vn, Sn)
    # S is the second moment of X / x_scale, and R(U, V, x^2 S) = R(U x, V, S): R scales as
    # (su x sv)^2 ss, and f over- or underflows only where R itself does
    f = product_of_scales(su, x_scale, sv)
    value = value * f * f * ss
    return result(xp, value)


def _penalty_normalized(xp, law, U, V, S, gradient=False):
    """The penalty of the module docstring (``S`` None for the identity); with ``gradient``
    (numpy only), the value and its gradients with respect to ``U`` and ``V``, from the same
    terms."""
    SV = V if S is None else S @ V
    a = (U * U).sum(0)
    s = (V * SV).sum(0)  # v_j^T S v_j for every unit
    total = (a * 0).sum()
    dU = np.zeros_like(U) if gradient else None
    dV = np.zeros_like(V) if gradient else None
    diag_c = 0.0
    if law.hidden is not None:
        cov = law.hidden.hidden_covariance()
        term = _hidden_term(xp, cov, U, V, SV, a, s, gradient)
        if gradient:
            term, hU, hV = term
            dU, dV = dU + hU, dV + hV
        total = total + term
        diag_c = const(xp, cov.diagonal(), U)
    gU = 0.0
    gV = 0.0
    sig_u = sig_v = diag_s = None
    if law.output is not None:
        sig_u = const(xp, law.output.entry_variances(), U)
        gU = (sig_u * U * U).sum(0)
    if law.input is not None:
        diag_s = ones(xp, V.shape[0], V)
        if S is not None:
            diag_s = xp.diagonal(S)
        sig_v = const(xp, law.input.entry_variances(), V)
        gV = (sig_v * diag_s[:, None] * V * V).sum(0)
    weights = gU * s + a * gV + gU * gV
    if not (isinstance(weights, float) and weights == 0.0):
        e = 1 + diag_c
        total = total + (e * weights).sum()
        if gradient:
            # d/dU: g^U through sigma_U, a through ||u_j||^2; d/dV: s through S V, g^V through sigma_V
            if sig_u is not None:
                dU = dU + 2 * sig_u * U * (e * (s + gV))
                dV = dV + 2 * SV * (e * gU)
            if sig_v is not None:
                dU = dU + 2 * U * (e * gV)
                dV = dV + 2 * sig_v * diag_s[:, None] * V * (e * (a + gU))
    return (total, dU, dV) if gradient else total


def penalty_and_gradient(law, U, V, S=None):
    r""":math:`R(U, V)` of a law with its gradients :math:`(\partial R / \partial U,
    \partial R / \partial V)` (float64 numpy in and out), from the same terms as the value: the
    value and gradient that the numerical minimizations use.  For torch inputs use
    :func:`penalty_of_law` and autograd; the tests hold the two gradients equal."""
    value, dU, dV = _penalty_normalized(np, law, U, V, S, gradient=True)
    return float(value), dU, dV


def expected_penalty(strategy, U, V, second_moment=None):
    r"""Expected penalty :math:`R(U, V)` of a noise strategy, in closed form.

    .. math::

        R = \sum_{jk} C_{jk} (u_j^\top u_k)(v_j^\top S v_k)
            + \sum_j (1 + C_{jj}) \big(g^U_j s_j + a_j g^V_j + g^U_j g^V_j\big)

    with :math:`C` the covariance of the hidden mask, :math:`\sigma^U`, :math:`\sigma^V` the
    variances of the weight masks' entries, :math:`a_j = \|u_j\|^2`, :math:`s_j = v_j^\top S v_j`,
    :math:`g^U_j = \sum_o \sigma^U_{oj} U_{oj}^2` and :math:`g^V_j = \sum_i \sigma^V_{ij} S_{ii}
    V_{ij}^2` (theory page, equation :eq:`penalty`).  Examples: Dropout
    :math:`R = \lambda \sum_j \|u_j\|^2 v_j^\top S v_j`;
    input-layer PerNodeDrop :math:`R = \lambda \sum_j \|u_j\|^2 v_j^\top D v_j`.  Diagonal and
    block-diagonal hidden covariances are never formed densely: the cost is that of
    :math:`S V` plus :math:`O((n_{in} + n_{out})\, d\, b)`.

    Parameters
    ----------
    strategy : Strategy
        A noise strategy (``pt.Dropout(0.5)``, ``pt.UnitNoise(pt.Uniform(0.5, 1.5))``, ...).
    U : array (n_out, d)
    V : array (n_in, d)
    second_moment : array (n_in, n_in), optional
        :math:`S = X X^\top / N`, symmetric positive semi-definite; the identity when omitted
        (whitened inputs).

    Returns
    -------
    float, or a 0-d torch tensor
        A float for numpy inputs; for torch inputs a tensor on their device, differentiable
        (inputs that require grad get gradients by autograd).

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> S = pt.second_moment(X)
    >>> R = pt.expected_penalty(pt.Dropout(0.5), U, V, S)
    >>> round(R, 4)
    7.0838

    Dropout's row of the table, :math:`\lambda \sum_j \|u_j\|^2 v_j^\top S v_j` with
    :math:`\lambda = p / (1 - p) = 1`:

    >>> lam = pt.noise_strength(0.5)
    >>> bool(np.isclose(R, lam * sum((U[:, j] @ U[:, j]) * (V[:, j] @ S @ V[:, j]) for j in range(4))))
    True

    Torch inputs give a differentiable tensor:

    >>> import torch
    >>> Ut = torch.tensor(U, requires_grad=True)
    >>> pt.expected_penalty(pt.Dropout(0.5), Ut, torch.tensor(V), torch.tensor(S)).backward()
    >>> Ut.grad.shape
    torch.Size([2, 4])
    """
    validate_strategy(strategy)
    xp, a = as_arrays(U=U, V=V, second_moment=second_moment)
    U, V, S = a["U"], a["V"], a["second_moment"]
    check_factors(U, V)
    if S is not None:
        check_second_moment(xp, S, V.shape[0])
    law = strategy.law(V.shape[0], V.shape[1], U.shape[0])
    return penalty_of_law(law, U, V, S)


def second_moment(X):
    r"""Uncentred second moment of the inputs, :math:`S = X X^\top / N` (``X``: n_in x N).

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> X = np.array([[1.0, -1.0, 2.0], [0.0, 3.0, 0.0]])
    >>> pt.second_moment(X)
    array([[ 2., -1.],
           [-1.,  3.]])
    """
    xp, a = as_arrays(X=X)
    X = a["X"]
    if X.shape[1] == 0:
        raise InvalidParameterError("X must hold at least one sample (column)")
    return X @ X.T / X.shape[1]


def plain_loss(U, V, X, Y) -> float:
    r"""The loss without noise, :math:`L(U, V) = \frac1N \sum_k \|y_k - U V^\top x_k\|^2`.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> L = pt.plain_loss(U, V, X, Y)
    >>> bool(np.isclose(L, np.sum((Y - U @ V.T @ X) ** 2) / 8))
    True
    """
    xp, U, V, X, Y = as_problem(U, V, X, Y)
    residual = Y - U @ (V.T @ X)
    value = (residual * residual).sum() / X.shape[1]
    return result(xp, value)


def expected_loss(strategy, U, V, X, Y) -> float:
    r"""Expected training loss :math:`L(U, V) + R(U, V)` with :math:`S = X X^\top / N`.

    Parameters
    ----------
    strategy : Strategy
    U : array (n_out, d)
    V : array (n_in, d)
    X : array (n_in, N)
        Inputs, samples as columns.
    Y : array (n_out, N)
        Targets, samples as columns.

    Returns
    -------
    float, or a 0-d torch tensor (differentiable) for torch inputs

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> L = pt.expected_loss(pt.Dropout(0.5), U, V, X, Y)
    >>> round(L, 4)
    17.9224

    The plain loss plus the penalty:

    >>> R = pt.expected_penalty(pt.Dropout(0.5), U, V, pt.second_moment(X))
    >>> bool(np.isclose(L, pt.plain_loss(U, V, X, Y) + R))
    True
    """
    validate_strategy(strategy)
    xp, U, V, X, Y = as_problem(U, V, X, Y)
    value = loss_of_law(strategy.law(V.shape[0], V.shape[1], U.shape[0]), U, V, X, Y)
    return result(xp, value)


def loss_of_law(law, U, V, X, Y):
    r""":math:`L(U, V) + R(U, V)` of a law on checked arrays of one backend (the entry of the
    package's own loops, which check their arguments once): a numpy float, or a 0-d tensor that
    autograd differentiates."""
    # the inputs divided by a power of two near their largest entry (exact): S = X X^T / N does
    # not overflow where the loss is representable
    cx = power_of_two(max_abs(namespace(X), X))
    if 2.0 ** -100 <= cx <= 2.0 ** 100:  # nothing can overflow: no copies
        cx = 1.0
    Xn = X / cx if cx != 1.0 else X
    prediction = (U * cx) @ (V.T @ Xn) if cx <= 1.0 else U @ ((V.T @ Xn) * cx)
    residual = Y - prediction
    S = Xn @ Xn.T / X.shape[1]
    return (residual * residual).sum() / X.shape[1] + penalty_of_law(law, U, V, S, x_scale=cx)
