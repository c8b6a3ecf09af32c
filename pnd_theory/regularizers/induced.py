r"""The regularizer that a noise strategy induces on the product :math:`A = U V^\top`.

.. math::

    \Theta(A) = \min\big\{ R(U, V) : U V^\top = A,\ U \in \mathbb{R}^{n_{out}\times d},
        V \in \mathbb{R}^{n_{in}\times d} \big\}

(the theory page), with :math:`R` the expected penalty of :mod:`pnd_theory.routes.penalty`.  The
closed forms are read off the mask law, never off the strategy class:

*Unit form.*  When the hidden covariance is diagonal (:math:`c_j`) and the weight masks have
entries of equal variance within each column (:math:`\lambda^U_j`, :math:`\lambda^V_j`), the
penalty is :math:`R = \sum_j \|u_j\|^2 v_j^\top Q_j v_j` with

.. math::

    Q_j = \big(c_j + (1 + c_j)\lambda^U_j\big) S
        + (1 + c_j)\lambda^V_j (1 + \lambda^U_j)\, D, \qquad D = \operatorname{diag}(S).

If every :math:`Q_j = w_j Q` for one matrix :math:`Q` (always so for the built-in strategies),
put :math:`B = A Q^{1/2}` with singular values :math:`s` (padded with zeros to length
:math:`d`) and :math:`\beta_j = \|u_j\|\,\|Q^{1/2} v_j\|`.  Then :math:`R = \sum_j w_j \beta_j^2`,
every factorization has :math:`\beta` in the up-closure of the permutahedron of :math:`s`
(a set of :math:`k` units carries a matrix of rank :math:`\le k`, so by Mirsky's inequality the
other units carry at least the :math:`d - k` smallest singular values), and every
:math:`\beta` of the permutahedron is attained by rotating the SVD factors (Schur-Horn).  Hence

.. math::

    \Theta(A) = \min\Big\{ \sum_j w_j \beta_j^2 : \beta \prec s \Big\}.

With all :math:`w_j = \lambda` (Dropout, Gaussian dropout, DropConnect, PerNodeDrop) the
minimizer is :math:`\beta_j = \|B\|_*/d` and :math:`\Theta(A) = \frac{\lambda}{d}\|A Q^{1/2}\|_*^2`
(Mianjy, Arora and Vidal 2018; Cavazza et al. 2018).  With per-unit strengths (NodeDropout)
the Cauchy-Schwarz bound :math:`\|B\|_*^2 / \sum_j w_j^{-1}` holds with equality iff
:math:`\beta_j \propto 1/w_j` is majorized by :math:`s`; otherwise the minimizer splits into
consecutive groups of units (sorted by :math:`w`) that carry consecutive groups of singular
values, :math:`\beta_j = w_j^{-1} \sum_{i \in g} s_i / \sum_{k \in g} w_k^{-1}`, found exactly
by the decomposition algorithm for separable convex functions over a base polytope
(Fujishige 1980).  Units with :math:`w_j = 0` carry the largest singular values for free.

*Block form* (DropBlock, :math:`C = \lambda\,\mathrm{blockdiag}(\mathbf 1 \mathbf 1^\top)`,
blocks of size :math:`b`, :math:`G = d/b` blocks, no weight noise):

.. math::

    \Theta(A) = \frac{\lambda b}{d} \|A S^{1/2}\|_{(b)}^2

with :math:`\|\cdot\|_{(b)}` the spectral :math:`b`-support norm (Pal, Lane, Vidal and
Haeffele 2020), once :math:`G \ge \operatorname{rank}(A)` or :math:`b \ge \operatorname{rank}(A)`.
It is always a lower bound (Cauchy-Schwarz over the blocks); it is attained exactly when the
optimal :math:`b`-support decomposition can be dealt out to the :math:`G` blocks in equal
shares: every block takes :math:`1/G` of each leading singular direction that the norm keeps
whole, and a rank-:math:`m` projection :math:`\Pi_g` of the averaged tail with
:math:`\sum_g \Pi_g = G\,\mathrm{diag}(\theta_{tail})` (a fusion frame).  With
:math:`G \ge \operatorname{rank}` such a split was found in every trial; with fewer blocks it
exists for some spectra (rank 3 with :math:`G = b = 2` when the norm keeps the top direction
whole) and not for others (rank 3 with :math:`G = b = 2` when it averages all three: two
rank-2 projections of :math:`\mathbb{R}^3` would need complements, two lines, spanning
:math:`\mathbb{R}^3`; :math:`d = 4`, :math:`b = 2` on most rank-4 targets).  Below :math:`G \ge \operatorname{rank}` the closed form is
returned only with a certificate, factors that attain it (:func:`certified_block_factors`);
otherwise it is refused.

References
----------
.. [1] P. Mianjy, R. Arora and R. Vidal, "On the implicit bias of dropout", ICML 2018.
.. [2] J. Cavazza, P. Morerio, B. Haeffele, C. Lane, V. Murino and R. Vidal, "Dropout as a
   low-rank regularizer for matrix factorization", AISTATS 2018.
.. [3] A. Pal, C. Lane, R. Vidal and B. D. Haeffele, "On the regularization properties of
   structured dropout", CVPR 2020.
.. [4] A. Argyriou, R. Foygel and N. Srebro, "Sparse prediction with the k-support norm",
   NeurIPS 2012.
.. [5] A. M. McDonald, M. Pontil and D. Stamos, "New perspectives on k-support and cluster
   norms", JMLR 17(155), 2016.
.. [6] S. Fujishige, "Lexicographically optimal base of a polymatroid with respect to a
   weight vector", Mathematics of Operations Research 5(2), 1980.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from .._validation import (InvalidParameterError, as_numpy_arrays, check_choice, check_positive_int,
                           check_problem_sizes, check_second_moment)
from .norms import spectral_k_support_norm
from ._factorizations import _EPS, _block_factors, _plain_factors, _rank, certified_block_factors, schur_horn_rotation
from ..routes.penalty import penalty_and_gradient
from ..laws.strategies import validate_strategy

__all__ = ["induced_penalty", "balanced_factors"]

METHODS = ("auto", "closed_form", "numeric")


# --------------------------------------------------------------------------- validation

def _check_psd(S):
    if S.shape[0] == 0:
        return
    w_min = float(np.linalg.eigvalsh((S + S.T) / 2).min())
    scale = max(1.0, float(np.abs(S).max()))
    if w_min < -1e-10 * scale:
        raise InvalidParameterError(
            f"second_moment must be positive semi-definite (a second moment X X^T / N); "
            f"smallest eigenvalue {w_min:.3g} (shape {tuple(S.shape)})"
        )


def _prepare(strategy, A, width, second_moment):
    """Validate the common arguments; return ``(law, A, S)`` (``S`` symmetrized, default I)."""
    validate_strategy(strategy)
    arrays = as_numpy_arrays(A=A, second_moment=second_moment)
    A, S = arrays["A"], arrays["second_moment"]
    width = check_positive_int("width", width)
    n_out, n_in = A.shape
    if n_out == 0 or n_in == 0:
        raise InvalidParameterError(f"A must be a non-empty n_out x n_in matrix, got shape {tuple(A.shape)}")
    check_problem_sizes(n_in, width, n_out)
    if S is None:
        S = np.eye(n_in)
    else:
        check_second_moment(np, S, n_in)
        _check_psd(S)
        S = (S + S.T) / 2
    law = strategy.law(n_in, width, n_out)
    return law, A, S


def _check_width_rank(A, width):
    s = np.linalg.svd(A, compute_uv=False)
    r = _rank(s, A.shape)
    if r > width:
        raise InvalidParameterError(
            f"A has rank {r} > width = {width}: no factorization U V^T = A with {width} hidden "
            f"units exists (Theta(A) = +inf); use a width >= rank(A)"
        )
    return r


# --------------------------------------------------------------------------- law -> penalty form

@dataclass(frozen=True, eq=False)
class PenaltyForm:
    r"""The structure of the penalty that admits a closed form.

    ``kind == "units"``: :math:`R = \sum_j w_j \|u_j\|^2 v_j^\top Q v_j` (``weights`` = w).
    ``kind == "blocks"``: :math:`R = \lambda \sum_g \|U_g V_g^\top Q^{1/2}\|_F^2` with blocks of
    ``block_size`` contiguous units (``strength`` = :math:`\lambda`).
    ``kind is None``: no closed form; ``reason`` says why.
    """

    kind: object
    Q: object = None
    weights: object = None
    strength: float = 0.0
    block_size: int = 1
    reason: str = ""


def _column_constant(variances, name):
    """Per-column variance when every column of an entry-variance array is constant."""
    first = variances[0]
    if np.all(np.abs(variances - first) <= 1e-12 * max(1.0, float(np.abs(first).max(initial=0.0)))):
        return first
    raise _NoClosedForm(f"the {name} weight-mask variances differ within a column")


class _NoClosedForm(Exception):
    pass


def _block_pattern(C):
    """``(lam, b)`` when ``C = lam * blockdiag(1 1^T)`` with contiguous blocks of size ``b > 1``."""
    d = C.shape[0]
    scale = max(1.0, float(np.abs(C).max()))
    for b in range(2, d + 1):
        if d % b:
            continue
        pattern = np.kron(np.eye(d // b), np.ones((b, b)))
        lam = float(C[0, 0])
        if np.abs(C - lam * pattern).max() <= 1e-12 * scale:
            return lam, b
    return None


def penalty_form(law, S) -> PenaltyForm:
    """Read the closed-form structure of the expected penalty off a :class:`MaskLaw`."""
    try:
        return _penalty_form(law, S)
    except _NoClosedForm as err:
        return PenaltyForm(None, reason=str(err))


def _penalty_form(law, S):
    d = law.width
    c = np.zeros(d)
    if law.hidden is not None:
        cov = law.hidden.hidden_covariance()
        if cov.kind == "diagonal":
            c = np.asarray(cov.values, dtype=np.float64)
        elif cov.kind == "block":
            values = np.asarray(cov.values, dtype=np.float64)
            if law.output is not None or law.input is not None:
                raise _NoClosedForm("block-correlated hidden noise combined with weight noise has no closed form")
            if np.ptp(values) > 1e-12 * max(1.0, float(values.max())):
                raise _NoClosedForm("the blocks of the hidden covariance have different variances")
            if cov.block_size == 1:
                c = values
            else:
                return PenaltyForm("blocks", Q=S, strength=float(values[0]), block_size=cov.block_size)
        else:
            C = np.asarray(cov.values, dtype=np.float64)
            off = C - np.diag(np.diag(C))
            if np.abs(off).max() <= 1e-12 * max(1.0, float(np.abs(C).max())):
                c = np.diag(C).copy()
            else:
                pattern = _block_pattern(C)
                if pattern is None:
                    raise _NoClosedForm(
                        "the hidden covariance is neither diagonal nor block-diagonal with equal "
                        "contiguous blocks"
                    )
                if law.output is not None or law.input is not None:
                    raise _NoClosedForm("block-correlated hidden noise combined with weight noise has no closed form")
                return PenaltyForm("blocks", Q=S, strength=pattern[0], block_size=pattern[1])
    lam_u = np.zeros(d) if law.output is None else _column_constant(law.output.entry_variances(), "output")
    lam_v = np.zeros(d) if law.input is None else _column_constant(law.input.entry_variances(), "input")
    alpha = c + (1 + c) * lam_u
    beta = (1 + c) * lam_v * (1 + lam_u)
    D = np.diag(np.diag(S))
    if not np.any(beta):
        return PenaltyForm("units", Q=S, weights=alpha)
    if not np.any(alpha):
        return PenaltyForm("units", Q=D, weights=beta)
    if np.array_equal(S, D):
        return PenaltyForm("units", Q=S, weights=alpha + beta)
    total = alpha + beta
    share = np.divide(alpha, total, out=np.zeros(d), where=total > 0)
    used = share[total > 0]
    if np.ptp(used) > 1e-12:
        raise _NoClosedForm(
            "the units weigh S and diag(S) in different proportions (Q_j is not one matrix "
            "times a per-unit weight)"
        )
    a = float(used[0])
    return PenaltyForm("units", Q=a * S + (1 - a) * D, weights=total)


# --------------------------------------------------------------------------- linear algebra

def _sqrt_psd(Q):
    """``(Q^{1/2}, Q^{+1/2}, range projector, full_rank)`` of a symmetric PSD matrix."""
    w, E = np.linalg.eigh(Q)
    top = max(float(w.max(initial=0.0)), 0.0)
    keep = w > max(Q.shape[0], 1) * 10 * _EPS * top
    if top == 0.0:
        keep = np.zeros_like(w, dtype=bool)
    Ek, wk = E[:, keep], w[keep]
    root = (Ek * np.sqrt(wk)) @ Ek.T
    pinv_root = (Ek / np.sqrt(wk)) @ Ek.T
    return root, pinv_root, Ek @ Ek.T, bool(keep.all())


def weighted_split(s, weights):
    r"""Exact minimizer of :math:`\sum_j w_j \beta_j^2` over :math:`\beta \prec s`.

    ``s``: nonnegative values (singular values padded with zeros), length :math:`d`;
    ``weights``: :math:`w \ge 0`, length :math:`d`.  Returns ``(beta, value)`` with ``beta``
    in the order of ``weights``.  Units sorted by increasing weight receive decreasing
    shares; zero-weight units take the largest values; the rest is the decomposition
    algorithm (solve on the hyperplane, split at the most violated prefix, recurse), which
    terminates after at most :math:`d` splits.
    """
    s = -np.sort(-np.asarray(s, dtype=np.float64))
    w = np.asarray(weights, dtype=np.float64)
    order = np.argsort(w, kind="stable")
    ws = w[order]
    zero = int(np.count_nonzero(ws == 0))
    beta_sorted = np.empty_like(s)
    beta_sorted[:zero] = s[:zero]
    if zero < s.size:
        beta_sorted[zero:] = _decompose(s[zero:], ws[zero:], 1e-14 * max(float(s.sum()), 1e-300))
    beta = np.empty_like(beta_sorted)
    beta[order] = beta_sorted
    return beta, float((w * beta * beta).sum())


def _decompose(s, w, tol):
    inv = 1.0 / w
    beta = s.sum() * inv / inv.sum()
    if s.size == 1:
        return beta
    violation = np.cumsum(beta)[:-1] - np.cumsum(s)[:-1]
    k = int(np.argmax(violation))
    if violation[k] <= tol:
        return beta
    return np.concatenate([_decompose(s[: k + 1], w[: k + 1], tol), _decompose(s[k + 1:], w[k + 1:], tol)])


# --------------------------------------------------------------------------- closed forms

def _closed_form_value(form, A, width, method):
    """Theta(A) from the form, or a ValueError naming the failed condition."""
    hint = "" if method == "closed_form" else "; use method='numeric' for a numerical value"
    if form.kind is None:
        raise InvalidParameterError(f"no closed form for this law: {form.reason}{hint}")
    data = _closed_form_data(form, A, width, hint)
    return data["value"]


def _is_trivial(form):
    """The penalty vanishes identically (no noise, or Q = 0): every factorization is optimal."""
    if not np.any(form.Q):
        return True
    if form.kind == "units":
        return not np.any(form.weights)
    return form.strength == 0


def _closed_form_data(form, A, width, hint):
    root, pinv_root, proj, full = _sqrt_psd(form.Q)
    B = A @ root
    P, s, Qt = np.linalg.svd(B, full_matrices=False)
    r_a = _rank(np.linalg.svd(A, compute_uv=False), A.shape)
    r = _rank(s, B.shape)
    # no noise, or A lies wholly outside the range of Q (A Q^(1/2) = 0): every unit can carry A
    # with v_j in the null space of Q at no cost, so the plain factors of A attain Theta = 0
    trivial = _is_trivial(form) or r == 0
    if trivial:
        return dict(value=0.0, trivial=True, rank=r_a)
    if r < r_a:
        raise InvalidParameterError(
            f"A and second_moment must not leave part of A outside the range of the penalty's matrix Q (from "
            f"second_moment S: S, diag(S) or a mix of the two), a part the rest of A does not span; Q is singular "
            f"and rank(A Q^(1/2)) = {r} < rank(A) "
            f"= {r_a}, where the closed form is at best an infimum that no factorization attains{hint}"
        )
    s = s[:r]
    P, Qt = P[:, :r], Qt[:r]
    data = dict(root=root, pinv_root=pinv_root, proj=proj, full=full, P=P, s=s, Qv=Qt.T, rank=r, trivial=trivial)
    if form.kind == "units":
        s_pad = np.concatenate([s, np.zeros(width - r)])
        beta, value = weighted_split(s_pad, form.weights)
        data.update(beta=beta, value=value, s_pad=s_pad)
    else:
        b = form.block_size
        G = width // b
        if not (b >= r or G >= r):
            factors = certified_block_factors(P, s, Qt.T, b, width)
            if factors is None:
                raise InvalidParameterError(
                    f"DropBlock closed form needs the number of blocks G = width / block_size = {G} or the "
                    f"block size {b} to be >= rank(A S^(1/2)) = {r}, or else an equal split of the "
                    f"b-support decomposition over the {G} blocks, and none was found; with too few "
                    f"blocks the minimum can be larger than (lam b / d) ||A S^(1/2)||_(b)^2{hint}"
                )
            data.update(block_factors=factors)
        value = form.strength * b / width * (spectral_k_support_norm(B, b) ** 2 if r else 0.0)
        data.update(value=value)
    return data


def induced_penalty(strategy, A, width, second_moment=None, method="auto") -> float:
    r"""The regularizer induced on the product, :math:`\Theta(A) = \min_{U V^\top = A} R(U, V)`.

    .. math::

        \Theta(A) = \min\Big\{\sum_j w_j \beta_j^2 : \beta \prec \sigma(A Q^{1/2})\Big\}
        \quad\text{(unit form; } = \tfrac{\lambda}{d}\|A Q^{1/2}\|_*^2 \text{ for equal } w_j = \lambda),

        \Theta(A) = \frac{\lambda b}{d}\,\|A S^{1/2}\|_{(b)}^2 \quad\text{(DropBlock)}.

    The theory page (:ref:`theory-induced`) states every case; :math:`Q` and :math:`w` are read
    off the mask law (Dropout and Gaussian dropout: :math:`Q = S`, :math:`w_j = \lambda`;
    input-layer DropConnect/PerNodeDrop: :math:`Q = D`; both layers:
    :math:`Q \propto \lambda_U S + \lambda_V (1 + \lambda_U) D`; NodeDropout:
    :math:`w_j = p_j / (1 - p_j)`).

    Parameters
    ----------
    strategy : Strategy
    A : array (n_out, n_in)
        The product :math:`U V^\top`.
    width : int
        Number of hidden units :math:`d`; must be at least ``rank(A)``.
    second_moment : array (n_in, n_in), optional
        :math:`S = X X^\top / N` (symmetric PSD; may be singular).  Identity when omitted.
    method : {"auto", "closed_form", "numeric"}
        ``"auto"`` and ``"closed_form"`` return the closed form and raise ``ValueError`` (saying
        which condition failed) where it does not apply: a law without one (a general
        :class:`HiddenNoise` covariance, per-unit :math:`Q_j` not proportional), DropBlock with
        fewer blocks than the rank (``G < rank`` and ``b < rank``) unless attaining factors are
        constructed, or a singular :math:`Q` with ``rank(A Q^{1/2}) < rank(A)``.  Singular values
        below ``1e-10`` times the largest count as zero.  ``"numeric"`` minimizes :math:`R(U_0 G, V_0 G^{-\top})`
        over invertible mixings :math:`G` (``U_0 V_0^\top = A`` from the SVD, padded with zeros or
        with random directions) by L-BFGS from 8 starts, one of them the Dropout-balanced
        rotation.  Every iterate is an exact factorization, so the result is an upper bound on
        :math:`\Theta(A)` up to rounding; in the tests it matches the closed forms to a few
        1e-15 relative (asserted at 1e-8).  It is a local search and carries no certificate.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        ``rank(A) > width`` (no factorization exists), bad shapes, or (``"auto"``,
        ``"closed_form"``) the closed form does not apply.

    References
    ----------
    P. Mianjy, R. Arora and R. Vidal, ICML 2018; J. Cavazza et al., AISTATS 2018;
    A. Pal, C. Lane, R. Vidal and B. D. Haeffele, CVPR 2020; A. Argyriou, R. Foygel and
    N. Srebro, NeurIPS 2012; A. M. McDonald, M. Pontil and D. Stamos, JMLR 2016.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> S, A = pt.second_moment(X), U @ V.T
    >>> theta = pt.induced_penalty(pt.Dropout(0.5), A, width=4, second_moment=S)

    Unit noise of variance :math:`\lambda` on :math:`d` units: :math:`(\lambda / d)
    \|A S^{1/2}\|_*^2` (the nuclear norm is the same with any square root of :math:`S`, here its
    Cholesky factor), and never above the penalty of a factorization of :math:`A`:

    >>> nuclear = np.linalg.norm(A @ np.linalg.cholesky(S), "nuc")
    >>> bool(np.isclose(theta, pt.noise_strength(0.5) / 4 * nuclear**2))
    True
    >>> bool(theta <= pt.expected_penalty(pt.Dropout(0.5), U, V, S))
    True
    """
    check_choice("method", method, METHODS)
    law, A, S = _prepare(strategy, A, width, second_moment)
    _check_width_rank(A, law.width)
    if method == "numeric":
        return numeric_induced_penalty(law, A, S)[0]
    return float(_closed_form_value(penalty_form(law, S), A, law.width, method))


def balanced_factors(strategy, A, width, second_moment=None):
    r"""Factors :math:`(U, V)` with :math:`U V^\top = A` and :math:`R(U, V) = \Theta(A)`.

    .. math::

        U = P\,\Sigma^{1/2} O, \qquad Q^{1/2} V = \tilde Q\,\Sigma^{1/2} O,
        \qquad \operatorname{diag}(O^\top \Sigma O) = \beta,

    with :math:`A Q^{1/2} = P \Sigma \tilde Q^\top` (padded to :math:`d`) and :math:`O` a
    product of plane rotations (the rotation trick of Mianjy, Arora and Vidal, generalized by
    Schur-Horn to the NodeDropout shares :math:`\beta` of :func:`induced_penalty`): every
    unit has :math:`\|u_j\| = \|Q^{1/2} v_j\| = \sqrt{\beta_j}`; for equal weights all
    :math:`\|u_j\|\,\|Q^{1/2} v_j\|` are equal.  The part of :math:`A` outside the range of a
    singular :math:`Q` is added through :math:`V` at no cost.  DropBlock: every block carries
    the leading singular directions of the :math:`b`-support decomposition split equally and
    an equal share of the tail, so all :math:`\|U_g V_g^\top S^{1/2}\|_F` are equal to
    :math:`\|A S^{1/2}\|_{(b)} / G` (the tail split is a small Gauss-Newton solve accepted at
    rounding level).

    Parameters
    ----------
    strategy : Strategy
    A : array (n_out, n_in)
    width : int
    second_moment : array (n_in, n_in), optional

    Returns
    -------
    U : numpy.ndarray (n_out, width)
    V : numpy.ndarray (n_in, width)

    Raises
    ------
    ValueError
        Wherever :func:`induced_penalty` with ``method="closed_form"`` raises.

    References
    ----------
    P. Mianjy, R. Arora and R. Vidal, "On the implicit bias of dropout", ICML 2018;
    A. Pal, C. Lane, R. Vidal and B. D. Haeffele, CVPR 2020.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> S, A = pt.second_moment(X), U @ V.T
    >>> Ub, Vb = pt.balanced_factors(pt.Dropout(0.5), A, width=4, second_moment=S)
    >>> bool(np.allclose(Ub @ Vb.T, A))
    True
    >>> theta = pt.induced_penalty(pt.Dropout(0.5), A, width=4, second_moment=S)
    >>> bool(np.isclose(pt.expected_penalty(pt.Dropout(0.5), Ub, Vb, S), theta))
    True

    The units of the balanced factors contribute equally:

    >>> pt.unit_contributions(Ub, Vb, S).round(4)
    array([0.6916, 0.6916, 0.6916, 0.6916])
    """
    law, A, S = _prepare(strategy, A, width, second_moment)
    d = law.width
    _check_width_rank(A, d)
    form = penalty_form(law, S)
    if form.kind is None:
        raise InvalidParameterError(f"no closed form for this law, so no balanced factors: {form.reason}")
    data = _closed_form_data(form, A, d, "")
    n_out, n_in = A.shape
    if data["trivial"]:
        return _plain_factors(A, d)
    P, s, Qv, r = data["P"], data["s"], data["Qv"], data["rank"]
    if form.kind == "units":
        O = schur_horn_rotation(data["s_pad"], data["beta"])
        Z = np.sqrt(data["s_pad"])[:, None] * O
        U = P @ Z[:r]
        W = Qv @ Z[:r]
    elif "block_factors" in data:
        U, W = data["block_factors"]
    else:
        U, W = _block_factors(P, s, Qv, form.block_size, d)
    V = data["pinv_root"] @ W
    if not data["full"]:
        V = V + (np.linalg.pinv(U) @ (A - A @ data["proj"])).T
    return U, V


# --------------------------------------------------------------------------- numeric

def numeric_induced_penalty(law, A, S, restarts=8, seed=0):
    """``(value, U, V)``: the smallest penalty found over exact factorizations of ``A``."""
    d = law.width
    scale = float(np.linalg.norm(A))
    n_out, n_in = A.shape
    if scale == 0.0:
        return 0.0, np.zeros((n_out, d)), np.zeros((n_in, d))
    An = A / scale
    P, s, Qt = np.linalg.svd(An, full_matrices=False)
    r = _rank(s, A.shape)
    root = np.sqrt(s[:r])
    rng = np.random.default_rng(seed)
    best = (np.inf, None, None)
    for start in range(restarts):
        U0 = np.zeros((n_out, d))
        V0 = np.zeros((n_in, d))
        U0[:, :r] = P[:, :r] * root
        V0[:, :r] = Qt[:r].T * root
        if start % 4 == 1:
            U0[:, r:] = rng.normal(size=(n_out, d - r))
        elif start % 4 == 3:
            V0[:, r:] = rng.normal(size=(n_in, d - r))
        if start == 0:
            lam = np.concatenate([s[:r], np.zeros(d - r)])
            G0 = schur_horn_rotation(lam, np.full(d, lam.sum() / d)) if r else np.eye(d)
        else:
            G0 = np.linalg.qr(rng.normal(size=(d, d)))[0] * np.exp(0.3 * rng.normal(size=d))

        def objective(g):
            G = g.reshape(d, d)
            try:
                Ginv_T = np.linalg.inv(G).T
            except np.linalg.LinAlgError:
                return 1e300, np.zeros_like(g)
            U = U0 @ G
            V = V0 @ Ginv_T
            value, dU, dV = penalty_and_gradient(law, U, V, S)
            grad = U0.T @ dU - Ginv_T @ dV.T @ V
            return value, grad.ravel()

        sol = minimize(objective, G0.ravel(), jac=True, method="L-BFGS-B",
                       options={"maxiter": 20000, "maxcor": 30, "ftol": 1e-16, "gtol": 1e-13})
        if sol.fun < best[0]:
            G = sol.x.reshape(d, d)
            best = (float(sol.fun), U0 @ G, V0 @ np.linalg.inv(G).T)
    value, U, V = best
    return value * scale**2, U * np.sqrt(scale), V * np.sqrt(scale)
