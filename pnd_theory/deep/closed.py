r"""The expected loss of a noisy deep linear network in closed form, at any depth.

For :math:`f(x) = (W_L \circ M_L)\,\xi_{L-1} \circ (\cdots \xi_1 \circ ((W_1 \circ M_1) x))`
with independent mean-one masks, :math:`E f(x) = \bar W x`, :math:`\bar W = W_L \cdots W_1`,
and the second moment of the activations :math:`H_l = \frac1N \sum_k E[h_l h_l^\top]`
propagates exactly from :math:`H_0 = S = X X^\top / N`:

.. math::

    \text{weights } W \text{ with entry variances } v:\quad
        H \to W H W^\top + \mathrm{diag}\big((v \circ W \circ W)\, \mathrm{diag}(H)\big),

    \text{hidden units with mask covariance } C:\quad H \to (\mathbf 1 \mathbf 1^\top + C) \circ H .

Why: conditionally on the input of a layer, :math:`E[(W \circ M) h\, h^\top (W \circ M)^\top]
= W h h^\top W^\top + \mathrm{diag}_i \sum_j v_{ij} W_{ij}^2 h_j^2` (the entries of :math:`M`
are independent of each other and of :math:`h`), and :math:`E[\xi\xi^\top] = \mathbf 1 \mathbf
1^\top + C` with :math:`\xi` independent of its input.  Then

.. math::

    E[\text{loss}] = \frac1N \|Y\|_F^2 - \frac2N \mathrm{tr}(Y X^\top \bar W^\top)
        + \mathrm{tr}(H_L) = L(\bar W) + R, \qquad R = \mathrm{tr}(H_L - \bar W S \bar W^\top).

The penalty :math:`R` is propagated by itself, :math:`E_l = H_l - P_l S P_l^\top` with
:math:`P_l = W_l \cdots W_1` (no cancellation between two large traces):
:math:`E \to W E W^\top + \mathrm{diag}((v \circ W \circ W)\,\mathrm{diag}(P S P^\top + E))`
at a noisy matrix and :math:`E \to E + C \circ (P S P^\top + E)` at a noisy hidden layer.
A mask drawn once per mini-batch gives the same expected loss as one drawn per sample (the
loss is a mean over samples, and each sample sees a mask of the same law).  A diagonal hidden
covariance touches only the diagonal of :math:`H`; the cost is
:math:`O(\sum_l n_l^2 (n_{l-1} + n_l))`, that of a few products of the weight matrices.
"""

from __future__ import annotations

import numpy as np

from .._backend import const, max_abs, power_of_two, product_of_scales, result
from .._validation import check_second_moment
from .network import check_problem, check_weights, deep_law, product


def _diag(xp, v):
    return xp.diag(v)


def _hidden_excess(xp, cov, H, ref):
    r""":math:`C \circ H` for a hidden covariance of the given structure."""
    if cov.kind == "diagonal":
        return _diag(xp, const(xp, cov.values, ref) * xp.diagonal(H))
    if cov.kind == "block":
        b = cov.block_size
        keep = np.kron(np.diag(np.asarray(cov.values, dtype=np.float64)), np.ones((b, b)))
        return const(xp, keep, ref) * H
    return const(xp, cov.values, ref) * H


def penalty_of_deep_law(law, Ws, S=None, x_scale=1.0):
    r""":math:`R = \mathrm{tr}(H_L) - \mathrm{tr}(\bar W S \bar W^\top)` for a :class:`DeepLaw`
    and checked weights of one backend (module docstring); ``S`` None is the identity; with
    ``x_scale``, ``S`` is the second moment of the inputs divided by ``x_scale``.

    A float for numpy, a 0-d tensor for torch (differentiable).  :math:`R` is homogeneous of
    degree 2 in every :math:`W_l` and 1 in :math:`S`: it is computed on the matrices divided by
    their largest entries and scaled back (no overflow where the value is representable).
    """
    xp = np if isinstance(Ws[0], np.ndarray) else _torch()
    scales = [max_abs(xp, W) for W in Ws]
    ss = 1.0 if S is None else max_abs(xp, S)
    ref = Ws[0]
    if min(scales) == 0.0 or ss == 0.0:
        value = (ref * 0).sum()
        return result(xp, value)
    Wn = [W / s for W, s in zip(Ws, scales)]
    n0 = Ws[0].shape[1]
    if S is None:
        Mn = const(xp, np.eye(n0), ref)
    else:
        Mn = S / ss
    E = None  # the excess second moment; None while no noise has entered
    for l, W in enumerate(Wn, start=1):
        scalar = law.weight_laws[l - 1]
        E_next = None if E is None else W @ E @ W.T
        if scalar is not None:
            diag_h = xp.diagonal(Mn) if E is None else xp.diagonal(Mn) + xp.diagonal(E)
            extra = _diag(xp, scalar.variance * ((W * W) @ diag_h))
            E_next = extra if E_next is None else E_next + extra
        E = E_next
        Mn = W @ Mn @ W.T
        if l < len(Wn) and law.hidden[l - 1] is not None:
            cov = law.hidden[l - 1].hidden_covariance()
            extra = _hidden_excess(xp, cov, Mn if E is None else Mn + E, ref)
            E = extra if E is None else E + extra
    value = (ref * 0).sum() if E is None else xp.trace(E)
    # R scales as (x prod(s_l))^2 s_S, S being the second moment of X / x; factor over- or
    # underflows only where R itself does
    factor = product_of_scales(*scales, x_scale)
    value = value * factor * factor * ss
    return result(xp, value)


def _torch():
    import torch

    return torch


def expected_penalty(weights, second_moment=None, hidden=None, weight_noise=None):
    r"""Expected penalty :math:`R` of a noisy deep linear network, in closed form.

    .. math::

        R = \mathrm{tr}(H_L) - \mathrm{tr}(\bar W S \bar W^\top), \qquad
        H_0 = S,\quad H \to W H W^\top + \mathrm{diag}((v \circ W \circ W)\,\mathrm{diag} H),
        \quad H \to (\mathbf 1 \mathbf 1^\top + C) \circ H

    with :math:`\bar W = W_L \cdots W_1`, :math:`H_l` the second moment of the activations of
    layer :math:`l`, :math:`v` the variances of the entries of a noisy matrix's mask and
    :math:`C` the covariance of a noisy hidden layer's mask (:ref:`theory-depth` of the theory
    page).  At depth 2, ``weights = [V.T, U]``, it is :func:`pnd_theory.expected_penalty` of the
    matching single-layer strategy.

    Parameters
    ----------
    weights : list of arrays
        ``[W_1, ..., W_L]``, :math:`W_l` of shape ``(n_l, n_{l-1})`` (numpy or torch).
    second_moment : array (n_0, n_0), optional
        :math:`S = X X^\top / N` (symmetric positive semi-definite); the identity by default.
    hidden : list, optional
        One entry per hidden layer (``L - 1``): a hidden-unit strategy (``pt.Dropout(p)``,
        ``pt.GaussianDropout(p)``, ``pt.DropBlock(p, b)``, ``pt.NodeDropout(p)``,
        ``pt.UnitNoise(law)``, ``pt.HiddenNoise(C)``) or None.  No hidden noise by default.
    weight_noise : list, optional
        One entry per matrix (``L``): None, a scalar law (a fresh value per sample and
        connection: PerNodeDrop at that layer) or ``(law, "shared")`` (one draw per batch:
        DropConnect).  No weight noise by default.

    Returns
    -------
    float, or a 0-d torch tensor (on the inputs' device, differentiable) for torch inputs

    Examples
    --------
    At depth 3, with dropout on the first hidden layer and PerNodeDrop on the last matrix, the
    penalty is the expected loss by enumeration over the masks less the plain loss:

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> rng = np.random.default_rng(0)
    >>> weights = [rng.normal(size=(3, 2)), rng.normal(size=(3, 3)), rng.normal(size=(1, 3))]
    >>> X, Y = rng.normal(size=(2, 6)), rng.normal(size=(1, 6))
    >>> noise = dict(hidden=[pt.Dropout(0.5), None], weight_noise=[None, None, pt.Bernoulli(0.2)])
    >>> R = pt.deep.expected_penalty(weights, pt.second_moment(X), **noise)
    >>> exact = pt.deep.exact_expected_loss(weights, X, Y, **noise)
    >>> bool(np.isclose(R, exact - pt.deep.plain_loss(weights, X, Y)))
    True
    """
    xp, Ws, a, sizes = check_weights(weights, second_moment=second_moment)
    S = a["second_moment"]
    if S is not None:
        check_second_moment(xp, S, sizes[0])
    law = deep_law(sizes, hidden, weight_noise)
    return penalty_of_deep_law(law, Ws, S)


def plain_loss(weights, X, Y):
    r"""The loss without noise, :math:`\frac1N \|Y - W_L \cdots W_1 X\|_F^2`.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> loss = pt.deep.plain_loss([V.T, U], X, Y)
    >>> bool(np.isclose(loss, ((Y - U @ V.T @ X) ** 2).sum() / X.shape[1]))
    True
    >>> bool(np.isclose(loss, pt.plain_loss(U, V, X, Y)))
    True
    """
    xp, Ws, X, Y, _ = check_problem(weights, X, Y)
    value = _plain(Ws, X, Y)
    return result(xp, value)


def _plain(Ws, X, Y, x_scale=1.0):
    """The plain loss, ``X`` given divided by ``x_scale``: the product computed on the matrices
    divided by their largest entries and scaled back (no overflow in a partial product)."""
    xp = np if isinstance(X, np.ndarray) else _torch()
    scales = [max_abs(xp, W) or 1.0 for W in Ws]
    H = X
    for W, s in zip(Ws, scales):
        H = (W / s) @ H
    residual = Y - H * product_of_scales(*scales, x_scale)
    return (residual * residual).sum() / X.shape[1]


def expected_loss(weights, X, Y, hidden=None, weight_noise=None):
    r"""Expected training loss of a noisy deep linear network, in closed form.

    .. math::

        E[\text{loss}] = \frac1N \|Y - \bar W X\|_F^2 + R, \qquad
        \bar W = W_L \cdots W_1,

    with :math:`R` from :func:`expected_penalty` at :math:`S = X X^\top / N`; equivalently
    :math:`\frac1N\|Y\|_F^2 - \frac2N \mathrm{tr}(Y X^\top \bar W^\top) + \mathrm{tr}(H_L)`.

    Parameters
    ----------
    weights : list of arrays
        ``[W_1, ..., W_L]``, :math:`W_l` of shape ``(n_l, n_{l-1})``.
    X : array (n_0, N)
        Inputs, samples as columns.
    Y : array (n_L, N)
        Targets, samples as columns.
    hidden, weight_noise : list, optional
        As in :func:`expected_penalty`.

    Returns
    -------
    float, or a 0-d torch tensor (differentiable) for torch inputs

    Examples
    --------
    At depth 2 it is the single-layer expected loss; with torch inputs it is differentiable:

    >>> import numpy as np
    >>> import torch
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> loss = pt.deep.expected_loss([V.T, U], X, Y, hidden=[pt.Dropout(0.5)])
    >>> bool(np.isclose(loss, pt.expected_loss(pt.Dropout(0.5), U, V, X, Y)))
    True
    >>> weights = [torch.tensor(V.T, requires_grad=True), torch.tensor(U, requires_grad=True)]
    >>> value = pt.deep.expected_loss(weights, torch.tensor(X), torch.tensor(Y), hidden=[pt.Dropout(0.5)])
    >>> value.backward()
    >>> bool(np.isclose(value.item(), loss)), weights[0].grad.shape
    (True, torch.Size([4, 3]))
    """
    xp, Ws, X, Y, sizes = check_problem(weights, X, Y)
    law = deep_law(sizes, hidden, weight_noise)
    cx = power_of_two(max_abs(xp, X))  # exact: S = X X^T / N of the scaled inputs does not overflow
    X = X / cx
    S = X @ X.T / X.shape[1]
    value = _plain(Ws, X, Y, cx) + penalty_of_deep_law(law, Ws, S, x_scale=cx)
    return result(xp, value)


def mean_map(weights):
    r"""The mean network :math:`\bar W = W_L \cdots W_1` (every mask has mean 1).

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> rng = np.random.default_rng(0)
    >>> weights = [rng.normal(size=(3, 2)), rng.normal(size=(4, 3)), rng.normal(size=(1, 4))]
    >>> bool(np.allclose(pt.deep.mean_map(weights), weights[2] @ weights[1] @ weights[0]))
    True
    """
    xp, Ws, _, _ = check_weights(weights)
    return product(Ws)
