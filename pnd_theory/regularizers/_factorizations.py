r"""Factorizations of a product that attain an induced regularizer, and what each unit carries.

Constructions used by :func:`pnd_theory.balanced_factors` and by the closed forms of
:mod:`pnd_theory.regularizers.induced`: the Schur-Horn rotation that gives every unit a prescribed share of
the product, the fusion frames that split the tail of a block decomposition equally over the
blocks (with a certificate), the plain factors of a product, and the per-unit (per-block)
contributions whose equality certifies that a factorization is balanced.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from .._backend import max_abs, product_of_scales
from .._validation import (InvalidParameterError, as_numpy_arrays, check_factors, check_positive_int,
                          check_second_moment)
from .norms import k_support_norm

_EPS = np.finfo(np.float64).eps

RANK_RTOL = 1e-10


def _rank(s, shape):
    r"""Numerical rank: singular values above ``RANK_RTOL`` times the largest.

    Products formed through :math:`S^{\pm 1/2}` carry rounding of order cond(S) times the
    machine epsilon, far above the usual ``max(shape) * eps`` threshold; ``1e-10`` relative
    separates that rounding from genuine directions (singular values below it are treated as
    zero, an error of that relative size in Theta and in the balanced factors).
    """
    if s.size == 0 or s[0] == 0:
        return 0
    return int(np.count_nonzero(s > max(RANK_RTOL, max(shape) * _EPS) * s[0]))


def _k_support_head(s, k):
    """Number of leading singular values kept whole by the k-support norm (``k - r - 1``)."""
    best, head = np.inf, 0
    for r in range(k):
        h = k - r - 1
        tail = s[h:].sum()
        if tail >= (r + 1) * s[h] * (1 - 1e-13):
            value = (s[:h] ** 2).sum() + tail**2 / (r + 1)
            if value < best:
                best, head = value, h
    return head


def schur_horn_rotation(eigenvalues, target):
    r"""An orthogonal :math:`O` with :math:`\operatorname{diag}(O^\top \Lambda O) = t`.

    ``eigenvalues`` (:math:`\Lambda`, any order) and ``target`` :math:`t` have the same length
    and :math:`t \prec \lambda` (majorization; checked up to rounding).  Built from at most
    :math:`d - 1` plane rotations, each fixing one diagonal entry at its target (Marshall,
    Olkin and Arnold, *Inequalities*, Lemma 2.B.1, with a rotation for each T-transform;
    the unfixed-unfixed off-diagonal entries stay zero, so each rotation acts on a diagonal
    2 x 2 block).
    """
    lam = np.asarray(eigenvalues, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    d = lam.size
    order_l = np.argsort(-lam, kind="stable")
    order_t = np.argsort(-t, kind="stable")
    x = lam[order_l].copy()
    y = t[order_t]
    scale = max(float(np.abs(x).sum()), 1e-300)
    if np.any(np.cumsum(y) > np.cumsum(x) + 1e-9 * scale) or abs(y.sum() - x.sum()) > 1e-9 * scale:
        raise InvalidParameterError("target must be majorized by the eigenvalues (Schur-Horn condition)")
    M = np.diag(x)
    O = np.eye(d)
    tol = 64 * _EPS * scale
    for _ in range(d):
        diff = np.diag(M) - y
        above = np.flatnonzero(diff > tol)
        if above.size == 0:
            break
        j = above[-1]
        below = np.flatnonzero(diff[j + 1:] < -tol)
        if below.size == 0:
            break
        k = j + 1 + below[0]
        delta = min(diff[j], -diff[k])
        gap = M[j, j] - M[k, k]
        sin2 = min(max(delta / gap, 0.0), 1.0)
        cs, sn = np.sqrt(1 - sin2), np.sqrt(sin2)
        # plane rotation R (R[j,j] = R[k,k] = cs, R[k,j] = sn, R[j,k] = -sn): O <- O R, M <- R^T M R
        for X in (O, M):
            cj, ck = X[:, j].copy(), X[:, k].copy()
            X[:, j], X[:, k] = cs * cj + sn * ck, cs * ck - sn * cj
        rj, rk = M[j].copy(), M[k].copy()
        M[j], M[k] = cs * rj + sn * rk, cs * rk - sn * rj
    # columns follow the target's order, rows the eigenvalues' order
    out = np.empty_like(O)
    out[np.ix_(order_l, order_t)] = O
    return out


def _fusion_frame(mu, G, m, seed=0, tries=20):
    r"""``Y`` of shape ``(G, n, m)``: :math:`Y_g^\top Y_g = I_m`, :math:`\sum_g Y_g Y_g^\top = \mathrm{diag}(\mu)`.

    Needs :math:`0 \le \mu_i \le G`, :math:`\sum \mu = G m`.  Exact for ``m == 1`` (Schur-Horn)
    and ``m == n``; otherwise a Gauss-Newton solve of the polynomial system, accepted only
    when its residual is at rounding level (it has converged in every trial with
    ``n <= G``).
    """
    n = mu.size
    if m == n:
        return np.broadcast_to(np.eye(n), (G, n, n)).copy()
    if m == 1:
        lam = np.concatenate([mu, np.zeros(G - n)])
        O = schur_horn_rotation(lam, np.ones(G))
        F = (np.sqrt(np.maximum(lam, 0))[:, None] * O)[:n]
        return F.T[:, :, None]
    iu, im = np.triu_indices(n), np.triu_indices(m)
    target = np.diag(mu)

    eye_n, eye_m = np.eye(n), np.eye(m)

    def residual(x):
        Y = x.reshape(G, n, m)
        frame = np.einsum("gim,gjm->ij", Y, Y) - target
        ortho = np.einsum("gim,gil->gml", Y, Y) - eye_m
        return np.concatenate([frame[iu], ortho[:, im[0], im[1]].ravel()])

    def jacobian(x):
        Y = x.reshape(G, n, m)
        # d(sum_g Y_g Y_g^T)_ij / dY_g[a, p] = delta_ia Y_g[j, p] + delta_ja Y_g[i, p]
        frame = np.einsum("ia,gjp->ijgap", eye_n, Y) + np.einsum("ja,gip->ijgap", eye_n, Y)
        # d(Y_g^T Y_g)_kl / dY_g[a, p] = delta_kp Y_g[a, l] + delta_lp Y_g[a, k], block-diagonal in g
        block = np.einsum("kp,gal->gklap", eye_m, Y) + np.einsum("lp,gak->gklap", eye_m, Y)
        ortho = np.einsum("gh,gklap->gklhap", np.eye(G), block)[:, im[0], im[1]]
        return np.concatenate([frame[iu].reshape(len(iu[0]), -1), ortho.reshape(-1, G * n * m)])

    rng = np.random.default_rng(seed)
    for _ in range(tries):
        x0 = rng.normal(size=G * n * m) / np.sqrt(n)
        sol = least_squares(residual, x0, jac=jacobian, xtol=1e-15, ftol=1e-15, gtol=1e-15, method="trf",
                            max_nfev=500)
        if np.abs(sol.fun).max() < 1e-12 * max(1.0, float(mu.max())):
            Y = sol.x.reshape(G, n, m)
            # polish: make every Y_g exactly orthonormal (a tiny change, at rounding level)
            P, _, Qt = np.linalg.svd(Y, full_matrices=False)
            return P @ Qt
    raise RuntimeError(f"could not split diag(mu) into {G} projections of rank {m}; mu = {mu}")


def certified_block_factors(P, s, Qv, b, d):
    r"""Factors of ``B = P diag(s) Qv^T`` attaining the DropBlock bound, or None if none found.

    Used when ``G < rank`` and ``b < rank``: the bound :math:`\|B\|_{(b)}^2 / G` is then
    attained only if the tail of the b-support decomposition splits into ``G`` equal pieces,
    which may or may not be possible.  A returned pair is checked (product and block norms)
    and is a certificate that the closed form is the minimum.
    """
    try:
        U, W = _block_factors(P, s, Qv, b, d, tries=5)
    except RuntimeError:
        return None
    G = d // b
    blocks = np.array([np.linalg.norm(U[:, g * b:(g + 1) * b] @ W[:, g * b:(g + 1) * b].T) for g in range(G)])
    target = k_support_norm(s, b) / G if s.size else 0.0
    B = (P * s) @ Qv.T
    if np.allclose(blocks, target, rtol=1e-10, atol=0) and np.allclose(U @ W.T, B, rtol=0, atol=1e-11 * s[0]):
        return U, W
    return None


def _plain_factors(A, d):
    """``A = U V^T`` from the SVD, split evenly between the factors, padded to ``d`` columns."""
    P, s, Qt = np.linalg.svd(A, full_matrices=False)
    r = _rank(s, A.shape)
    U = np.zeros((A.shape[0], d))
    V = np.zeros((A.shape[1], d))
    U[:, :r] = P[:, :r] * np.sqrt(s[:r])
    V[:, :r] = Qt[:r].T * np.sqrt(s[:r])
    return U, V


def _block_factors(P, s, Qv, b, d, tries=20):
    """Factors of ``B = P diag(s) Qv^T`` whose ``G = d / b`` blocks have equal Frobenius norms."""
    G = d // b
    r = s.size
    n_out, n_in = P.shape[0], Qv.shape[0]
    U = np.zeros((n_out, d))
    W = np.zeros((n_in, d))
    if r == 0:
        return U, W
    if b >= r:
        for g in range(G):
            U[:, g * b: g * b + r] = P * np.sqrt(s / G)
            W[:, g * b: g * b + r] = Qv * np.sqrt(s / G)
        return U, W
    h = _k_support_head(s, b)
    m = b - h
    tail = s[h:]
    T = tail.sum()
    mu = G * m * tail / T
    if tail.size > G * m:  # G projections of rank m cannot cover the tail
        raise RuntimeError(f"the tail of rank {tail.size} cannot be split into {G} pieces of rank {m}")
    Y = _fusion_frame(mu, G, m, tries=tries)
    c = T / (G * m)
    for g in range(G):
        lo = g * b
        U[:, lo: lo + h] = P[:, :h] * np.sqrt(s[:h] / G)
        W[:, lo: lo + h] = Qv[:, :h] * np.sqrt(s[:h] / G)
        U[:, lo + h: lo + b] = P[:, h:] @ Y[g] * np.sqrt(c)
        W[:, lo + h: lo + b] = Qv[:, h:] @ Y[g] * np.sqrt(c)
    return U, W


def unit_contributions(U, V, second_moment=None, block_size=1):
    r"""What each hidden unit (or block of units) carries of the product, in the metric of the data.

    .. math::

        c_j = \|u_j\|\,\|S^{1/2} v_j\| \quad (\text{block\_size} = 1), \qquad
        c_g = \|U_g V_g^\top S^{1/2}\|_F \quad (\text{blocks } g \text{ of contiguous units}).

    The induced regularizer of Dropout (DropBlock) is attained exactly by *equalized* factors:
    all :math:`c_j` (all :math:`c_g`) equal.

    Parameters
    ----------
    U : array (n_out, d)
    V : array (n_in, d)
    second_moment : array (n_in, n_in), optional
        :math:`S`, symmetric positive semi-definite; the identity when omitted.
    block_size : int
        Units per block (it must divide ``d``).

    Returns
    -------
    numpy.ndarray of shape (d // block_size,)

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> S = pt.second_moment(X)
    >>> c = pt.unit_contributions(U, V, S)
    >>> bool(np.isclose(c[0], np.linalg.norm(U[:, 0]) * np.sqrt(V[:, 0] @ S @ V[:, 0])))
    True
    >>> pt.unit_contributions(U, V, S, block_size=2).shape  # two blocks of two units
    (2,)
    """
    arrays = as_numpy_arrays(U=U, V=V, second_moment=second_moment)
    U, V, S = arrays["U"], arrays["V"], arrays["second_moment"]
    check_factors(U, V)
    block_size = check_positive_int("block_size", block_size)
    d = U.shape[1]
    if d % block_size:
        raise InvalidParameterError(f"block_size must divide the width; got block_size={block_size} and width={d}")
    if S is None:
        S = np.eye(V.shape[0])
    check_second_moment(np, S, V.shape[0])
    G = d // block_size
    # homogeneous of degree 1 in U and V and 1/2 in S: computed on the arrays divided by their
    # largest entries and scaled back, finite wherever the contributions are
    su, sv, ss = (max_abs(np, a) or 1.0 for a in (U, V, S))
    Ub = (U / su).reshape(U.shape[0], G, block_size)
    Vb = (V / sv).reshape(V.shape[0], G, block_size)
    # ||U_g V_g^T S^(1/2)||_F^2 = tr(U_g^T U_g V_g^T S V_g)
    gram_u = np.einsum("ogj,ogk->gjk", Ub, Ub)
    gram_v = np.einsum("igj,ih,hgk->gjk", Vb, S / ss, Vb)
    return np.sqrt(np.maximum(np.einsum("gjk,gkj->g", gram_u, gram_v), 0.0)) * product_of_scales(su, sv, ss ** 0.5)
