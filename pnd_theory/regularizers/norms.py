r"""The (spectral) :math:`k`-support norm, its dual norm and the prox of its square.

The :math:`k`-support norm of :math:`w \in \mathbb{R}^d` (Argyriou, Foygel and Srebro,
2012) is the norm whose unit ball is the convex hull of the :math:`k`-sparse vectors of
unit :math:`\ell_2` norm.  Equivalently, it is the smallest total :math:`\ell_2` norm of a
decomposition of :math:`w` into pieces supported on at most :math:`k` coordinates, and

.. math::

    \|w\|_{(k)}^2 = \inf\Big\{\sum_i \frac{w_i^2}{\theta_i} :
        0 < \theta_i \le 1,\ \sum_i \theta_i = k\Big\}.

With :math:`s_1 \ge s_2 \ge \dots` the entries of :math:`|w|` sorted decreasingly and
:math:`s_0 = +\infty` it has the closed form

.. math::

    \|w\|_{(k)}^2 = \sum_{i=1}^{k-r-1} s_i^2 + \frac{1}{r+1}\Big(\sum_{i \ge k-r} s_i\Big)^2,

where :math:`r \in \{0, \dots, k-1\}` is the unique integer with
:math:`s_{k-r-1} > \frac{1}{r+1}\sum_{i \ge k-r} s_i \ge s_{k-r}`.  It interpolates between
the :math:`\ell_1` norm (:math:`k = 1`) and the :math:`\ell_2` norm (:math:`k \ge d`); its
dual norm is the :math:`\ell_2` norm of the :math:`k` largest entries of :math:`|w|`.

The spectral :math:`k`-support norm (McDonald, Pontil and Stamos, 2016) of a matrix is the
vector norm of its singular values.  It is unitarily invariant and interpolates between the
nuclear norm (:math:`k = 1`) and the Frobenius norm (:math:`k \ge \operatorname{rank}`).

The prox of :math:`\frac{c}{2}\|\cdot\|_{(k)}^2` follows from the variational form: the
optimal :math:`\theta` is a clipped affine function of :math:`|w|`, fixed by one scalar.

Every routine here is exact: a sort (or an SVD) followed by a finite search.

References
----------
.. [1] A. Argyriou, R. Foygel and N. Srebro, "Sparse prediction with the k-support norm",
   NeurIPS 2012.
.. [2] A. M. McDonald, M. Pontil and D. Stamos, "New perspectives on k-support and cluster
   norms", JMLR 17(155), 2016.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import InvalidParameterError, check_real

__all__ = [
    "k_support_norm",
    "dual_k_support_norm",
    "prox_squared_k_support_vector",
    "spectral_k_support_norm",
    "dual_spectral_k_support_norm",
    "prox_squared_k_support",
]


def _check_k(k) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or k < 1:
        raise InvalidParameterError(
            f"k must be a positive integer (1, 2, ...; values above the dimension act as the "
            f"dimension), got {k!r} of type {type(k).__name__}"
        )
    return int(k)


def _check_c(c) -> float:
    return check_real("c", c, "a finite real number >= 0", low=0.0)


def _validated(x, name: str, core_ndim: int) -> np.ndarray:
    """``x`` as a finite float64 array with ``core_ndim`` non-empty trailing axes."""
    what = f"{name} must be a real numeric array of shape {'(..., n)' if core_ndim == 1 else '(..., m, n)'}"
    if hasattr(x, "detach"):  # torch tensors, without importing torch
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x)
    except ValueError as err:  # ragged nested lists
        raise InvalidParameterError(f"{what}, got a ragged {type(x).__name__}: {err}") from None
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise InvalidParameterError(f"{what} (int or float dtype), got dtype {a.dtype}")
    if a.ndim < core_ndim or 0 in a.shape[a.ndim - core_ndim :]:
        raise InvalidParameterError(f"{what} with non-empty trailing axes, got shape {a.shape}")
    a = a.astype(np.float64, copy=False)
    if not np.isfinite(a).all():
        raise InvalidParameterError(f"{name} must have finite entries, got NaN or inf in an array of shape {a.shape}")
    return a


def _sorted_magnitudes(a: np.ndarray, spectral: bool) -> np.ndarray:
    """|entries| (or singular values) sorted decreasingly along the last axis."""
    if spectral:
        return np.linalg.svd(a, compute_uv=False)
    return -np.sort(-np.abs(a), axis=-1)


def _scalar_or_array(value: np.ndarray):
    return float(value) if value.ndim == 0 else value


def _normalized(s: np.ndarray):
    # Dividing by the largest magnitude keeps the squares below from overflowing or underflowing.
    scale = s[..., 0]
    return s / np.where(scale > 0, scale, 1.0)[..., None], scale


def _norm_of_sorted(s: np.ndarray, k: int) -> np.ndarray:
    k = min(k, s.shape[-1])
    u, scale = _normalized(s)
    # Index j = k - r - 1 is where the averaged tail starts; m = r + 1 is its share of k.
    j = np.arange(k)
    m = k - j
    head = np.concatenate([np.zeros(u.shape[:-1] + (1,)), np.cumsum(u[..., : k - 1] ** 2, axis=-1)], axis=-1)
    tail = np.flip(np.cumsum(np.flip(u, -1), axis=-1), -1)[..., :k]
    # Each candidate r with tail/(r+1) >= s_{k-r} is the variational objective at a feasible
    # theta, hence an upper bound attained by the true r; taking the least feasible one is
    # immune to the rounding that can break the strict inequality at ties.  r = 0 is always
    # feasible, even in floating point.
    candidates = np.where(tail >= m * u[..., :k], head + tail**2 / m, np.inf)
    return scale * np.sqrt(candidates.min(axis=-1))


def _dual_of_sorted(s: np.ndarray, k: int) -> np.ndarray:
    u, scale = _normalized(s[..., :k])
    return scale * np.sqrt(np.sum(u**2, axis=-1))


def _prox_level(s: np.ndarray, k: int, c: float):
    r"""Where the prox of one row ``s`` (sorted decreasingly) saturates, and its partial entries.

    With :math:`\beta = 1/\alpha` and :math:`t_i(\beta) = \min(1, \max(0, s_i/\beta - c))`,
    :math:`\beta` solves :math:`\sum_i t_i(\beta) = k`.  The sum is non-increasing, and linear
    in :math:`1/\beta` between consecutive knots :math:`s_i/(1+c)` and :math:`s_i/c`; it is
    bracketed between two knots and solved there in closed form.  Returns ``(scale, upper,
    lower, ref, delta)``: entries with ``s_i / scale <= lower`` have :math:`t_i = 0`, others with
    ``s_i / scale >= upper`` have :math:`t_i = 1`, and the rest
    :math:`x_i = s_i - c\beta = (s_i - \mathrm{ref}) + \delta`.
    """
    # Below the smallest normal float the shrinkage, at most c * sum(s), is invisible next to
    # s_1, and the knots s_i / c would overflow.
    if c < np.finfo(np.float64).tiny or np.count_nonzero(s) <= k:
        return 1.0, 0.0, -1.0, 0.0, 0.0  # every entry saturates
    # beta scales with s; normalizing to s_1 = 1 keeps every knot finite.
    scale, original, s = s[0], s, s / s[0]
    n, ascending, prefix = s.size, s[::-1], np.concatenate([[0.0], np.cumsum(s)])

    def active(beta):  # entries with t_i = 1 are s[:p], with t_i > 0 are s[:q]
        q = n - np.searchsorted(ascending, c * beta, side="right")
        return np.minimum(n - np.searchsorted(ascending, (1 + c) * beta, side="left"), q), q

    nonzero = s[s > 0]
    knots = np.sort(np.concatenate([nonzero / (1 + c), nonzero / c]))
    knots = knots[knots > 0]  # s_i / (1 + c) may underflow for a huge c
    p, q = active(knots)
    above = np.flatnonzero(p + (prefix[q] - prefix[p]) / knots - c * (q - p) >= k)
    i = min(above[-1] if above.size else -1, knots.size - 2)
    # The classes are read off strictly inside the bracket, so no rounding at a knot decides them.
    inside = 0.5 * ((knots[i] if i >= 0 else 0.0) + knots[i + 1])
    p, q = active(inside)
    if q == p:  # no partial entry
        return scale, (1 + c) * inside, c * inside, 0.0, 0.0
    # c * beta = c * sum(s[p:q]) / (k - p + c (q - p)) nearly equals the partial entries when c
    # is large, so s_i - c * beta would cancel.  Measured from ref = s[p] the partial entries
    # differ exactly (Sterbenz), and delta = ref - c * beta is a sum of nonnegative terms.
    ref = original[p]
    delta = (ref * (k - p) - c * np.sum(original[p:q] - ref)) / (k - p + c * (q - p))
    return scale, (1 + c) * inside, c * inside, ref, delta


def _prox_of_magnitudes(mag: np.ndarray, s: np.ndarray, k: int, c: float) -> np.ndarray:
    r"""Prox of ``mag >= 0`` whose decreasing sort along the last axis is ``s``.

    The prox is positively homogeneous of degree 1, so each row is computed on its magnitudes
    divided by a power of two near their largest (an exact scaling): no intermediate overflows
    near the float64 maximum, and subnormal inputs keep their relative accuracy.
    """
    top = s[..., :1]
    safe = np.where(top > 0, np.ldexp(1.0, np.frexp(np.where(top > 0, top, 1.0))[1] - 1), 1.0)
    return _prox_of_normalized(mag / safe, s / safe, k, c) * safe


def _prox_of_normalized(mag: np.ndarray, s: np.ndarray, k: int, c: float) -> np.ndarray:
    r"""Prox of ``mag >= 0`` (largest entry at most 1) whose decreasing sort is ``s``.

    Substituting :math:`\beta` into :math:`x_i = s_i t_i / (t_i + c)` gives :math:`s_i/(1+c)`
    where :math:`t_i = 1`, :math:`0` where :math:`t_i = 0` and :math:`s_i - c\beta` in between.
    """
    rows = s.reshape(-1, s.shape[-1])
    levels = np.array([_prox_level(row, k, c) for row in rows], dtype=np.float64).reshape(-1, 5)
    scale, upper, lower, ref, delta = (v.reshape(s.shape[:-1] + (1,)) for v in levels.T)
    # The same normalized comparisons as in _prox_level, so the classes agree bit for bit.
    u = mag / scale
    saturated = mag / (1 + c)
    partial = np.clip((mag - ref) + delta, 0.0, saturated)
    return np.where(u > lower, np.where(u >= upper, saturated, partial), 0.0)


def k_support_norm(w, k):
    r"""The :math:`k`-support norm of a vector (or of each row of a batch).

    .. math::

        \|w\|_{(k)} = \Big(\sum_{i=1}^{k-r-1} s_i^2
            + \frac{1}{r+1}\Big(\sum_{i \ge k-r} s_i\Big)^2\Big)^{1/2},
        \qquad s_{k-r-1} > \tfrac{1}{r+1}\textstyle\sum_{i \ge k-r} s_i \ge s_{k-r},

    with :math:`s` the entries of :math:`|w|` sorted decreasingly and :math:`s_0 = +\infty`.
    :math:`k = 1` gives :math:`\|w\|_1`, :math:`k \ge d` gives :math:`\|w\|_2`.

    Parameters
    ----------
    w : array_like or torch.Tensor, shape (..., n)
        Finite real vector, or a batch of vectors along the last axis.
    k : int
        Positive integer; values above ``n`` act as ``n``.

    Returns
    -------
    float or numpy.ndarray of shape (...)
        A float for a 1-D ``w``, else one norm per vector.

    References
    ----------
    A. Argyriou, R. Foygel and N. Srebro, "Sparse prediction with the k-support norm",
    NeurIPS 2012, Proposition 2.1.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> w = np.array([3.0, -4.0, 1.0])
    >>> pt.k_support_norm(w, 1), bool(np.isclose(pt.k_support_norm(w, 3), np.linalg.norm(w)))
    (8.0, True)
    >>> bool(np.isclose(pt.k_support_norm(w, 2), np.sqrt((4 + 3 + 1) ** 2 / 2)))  # r = 1 above
    True
    """
    k = _check_k(k)
    return _scalar_or_array(_norm_of_sorted(_sorted_magnitudes(_validated(w, "w", 1), False), k))


def dual_k_support_norm(w, k):
    r"""The dual of the :math:`k`-support norm: the :math:`\ell_2` norm of the top-:math:`k` entries.

    .. math::

        \|w\|_{(k)}^* = \max_{\|z\|_{(k)} \le 1} \langle w, z \rangle
            = \Big(\sum_{i=1}^{k} s_i^2\Big)^{1/2},

    with :math:`s` the entries of :math:`|w|` sorted decreasingly.

    Parameters
    ----------
    w : array_like or torch.Tensor, shape (..., n)
        Finite real vector, or a batch of vectors along the last axis.
    k : int
        Positive integer; values above ``n`` act as ``n``.

    Returns
    -------
    float or numpy.ndarray of shape (...)
        A float for a 1-D ``w``, else one norm per vector.

    References
    ----------
    A. Argyriou, R. Foygel and N. Srebro, "Sparse prediction with the k-support norm",
    NeurIPS 2012, Section 2.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> pt.dual_k_support_norm(np.array([3.0, -4.0, 1.0]), 2)  # sqrt(4^2 + 3^2)
    5.0
    """
    k = _check_k(k)
    return _scalar_or_array(_dual_of_sorted(_sorted_magnitudes(_validated(w, "w", 1), False), k))


def prox_squared_k_support_vector(w, k, c):
    r"""Proximity operator of :math:`\frac{c}{2}\|\cdot\|_{(k)}^2` for a vector (or each row).

    .. math::

        \operatorname{prox}(w) = \operatorname*{argmin}_x \tfrac12\|w - x\|_2^2
            + \tfrac{c}{2}\|x\|_{(k)}^2, \qquad
        x_i = \operatorname{sign}(w_i)\frac{|w_i|\, t_i}{t_i + c}, \quad
        t_i = \min(1, \max(0, \alpha |w_i| - c)),

    with :math:`\alpha \ge 0` chosen so that :math:`\sum_i t_i = k` (found exactly by a
    search over the breakpoints).  When ``w`` has at most ``k`` nonzero entries the result is
    :math:`w / (1 + c)`; ``c = 0`` gives the identity.

    Parameters
    ----------
    w : array_like or torch.Tensor, shape (..., n)
        Finite real vector, or a batch of vectors along the last axis.
    k : int
        Positive integer; values above ``n`` act as ``n``.
    c : float
        Finite weight ``>= 0`` of the squared norm.

    Returns
    -------
    numpy.ndarray of shape (..., n)
        The prox, float64, with the signs of ``w``.

    Notes
    -----
    Each entry is accurate to a few units of rounding relative to itself for moderate ``c``.
    Once ``c`` nears :math:`1/\epsilon \approx 10^{16}` the knots :math:`s_i/(1+c)` and
    :math:`s_i/c` coincide in float64, and only the absolute accuracy
    :math:`\epsilon \max_i |w_i|` remains (the prox is then at most :math:`\max_i |w_i| / c`).

    References
    ----------
    A. M. McDonald, M. Pontil and D. Stamos, "New perspectives on k-support and cluster
    norms", JMLR 17(155), 2016 (the prox of the squared box-norm).

    Examples
    --------
    At most ``k`` nonzero entries: the result is :math:`w / (1 + c)`.

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> w = np.array([3.0, -4.0, 1.0])
    >>> pt.prox_squared_k_support_vector(w, 3, 1.0)
    array([ 1.5, -2. ,  0.5])
    >>> x = pt.prox_squared_k_support_vector(w, 1, 1.0)  # k = 1: the prox of (c/2) ||x||_1^2
    >>> x
    array([ 0.66666667, -1.66666667,  0.        ])
    """
    k, c = _check_k(k), _check_c(c)
    w = _validated(w, "w", 1)
    mag = np.abs(w)
    return np.sign(w) * _prox_of_magnitudes(mag, -np.sort(-mag, axis=-1), k, c)


def spectral_k_support_norm(A, k):
    r"""The spectral :math:`k`-support norm: the :math:`k`-support norm of the singular values.

    .. math::

        \|A\|_{(k)} = \|\sigma(A)\|_{(k)},

    which is the nuclear norm for :math:`k = 1` and the Frobenius norm for
    :math:`k \ge \operatorname{rank}(A)`.

    Parameters
    ----------
    A : array_like or torch.Tensor, shape (..., m, n)
        Finite real matrix, or a stack of matrices.
    k : int
        Positive integer; values above ``min(m, n)`` act as ``min(m, n)``.

    Returns
    -------
    float or numpy.ndarray of shape (...)
        A float for a 2-D ``A``, else one norm per matrix.

    References
    ----------
    A. M. McDonald, M. Pontil and D. Stamos, "New perspectives on k-support and cluster
    norms", JMLR 17(155), 2016 (the spectral k-support norm).

    Examples
    --------
    :math:`k = 1` gives the nuclear norm, :math:`k \ge` rank the Frobenius norm:

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> A = np.random.default_rng(0).normal(size=(3, 4))
    >>> bool(np.isclose(pt.spectral_k_support_norm(A, 1), np.linalg.norm(A, "nuc")))
    True
    >>> bool(np.isclose(pt.spectral_k_support_norm(A, 3), np.linalg.norm(A)))
    True
    """
    k = _check_k(k)
    return _scalar_or_array(_norm_of_sorted(_sorted_magnitudes(_validated(A, "A", 2), True), k))


def dual_spectral_k_support_norm(A, k):
    r"""Dual spectral :math:`k`-support norm: the :math:`\ell_2` norm of the top-:math:`k` singular values.

    .. math::

        \|A\|_{(k)}^* = \max_{\|B\|_{(k)} \le 1} \operatorname{tr}(A^\top B)
            = \Big(\sum_{i=1}^{k} \sigma_i(A)^2\Big)^{1/2}.

    Parameters
    ----------
    A : array_like or torch.Tensor, shape (..., m, n)
        Finite real matrix, or a stack of matrices.
    k : int
        Positive integer; values above ``min(m, n)`` act as ``min(m, n)``.

    Returns
    -------
    float or numpy.ndarray of shape (...)
        A float for a 2-D ``A``, else one norm per matrix.

    References
    ----------
    A. M. McDonald, M. Pontil and D. Stamos, "New perspectives on k-support and cluster
    norms", JMLR 17(155), 2016 (the spectral k-support norm).

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> A = np.random.default_rng(0).normal(size=(3, 4))
    >>> s = np.linalg.svd(A, compute_uv=False)
    >>> bool(np.isclose(pt.dual_spectral_k_support_norm(A, 2), np.hypot(s[0], s[1])))
    True
    >>> bool(np.isclose(pt.dual_spectral_k_support_norm(A, 1), np.linalg.norm(A, 2)))  # spectral norm
    True
    """
    k = _check_k(k)
    return _scalar_or_array(_dual_of_sorted(_sorted_magnitudes(_validated(A, "A", 2), True), k))


def prox_squared_k_support(A, k, c):
    r"""Proximity operator of :math:`\frac{c}{2}\|\cdot\|_{(k)}^2` for the spectral norm.

    .. math::

        \operatorname*{argmin}_X \tfrac12\|A - X\|_F^2 + \tfrac{c}{2}\|X\|_{(k)}^2
            = P \operatorname{diag}\big(\operatorname{prox}(\sigma(A))\big) Q^\top,

    where :math:`A = P \operatorname{diag}(\sigma(A)) Q^\top` is a (thin) SVD and the inner
    prox is :func:`prox_squared_k_support_vector` applied to the singular values.

    Parameters
    ----------
    A : array_like or torch.Tensor, shape (..., m, n)
        Finite real matrix, or a stack of matrices.
    k : int
        Positive integer; values above ``min(m, n)`` act as ``min(m, n)``.
    c : float
        Finite weight ``>= 0`` of the squared norm.

    Returns
    -------
    numpy.ndarray of shape (..., m, n)
        The prox, float64, with the singular vectors of ``A``.

    References
    ----------
    A. M. McDonald, M. Pontil and D. Stamos, "New perspectives on k-support and cluster
    norms", JMLR 17(155), 2016 (the spectral k-support norm).

    Examples
    --------
    The prox acts on the singular values and keeps the singular vectors:

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> A = np.random.default_rng(0).normal(size=(3, 4))
    >>> P = pt.prox_squared_k_support(A, 1, 0.5)
    >>> u, s, vt = np.linalg.svd(A, full_matrices=False)
    >>> bool(np.allclose(P, (u * pt.prox_squared_k_support_vector(s, 1, 0.5)) @ vt))
    True
    >>> bool(np.allclose(pt.prox_squared_k_support(A, 3, 0.5), A / 1.5))  # k >= rank: A / (1 + c)
    True
    """
    k, c = _check_k(k), _check_c(c)
    P, sigma, Qt = np.linalg.svd(_validated(A, "A", 2), full_matrices=False)
    return (P * _prox_of_magnitudes(sigma, sigma, k, c)[..., None, :]) @ Qt
