r"""The regularizer that noise induces on the map of a deep linear network, and its optimum.

.. math::

    \Theta(A) = \min\{ R(W_1, \dots, W_L) : W_L \cdots W_1 = A \}

over factorizations with given hidden widths :math:`n_1, \dots, n_{L-1}`.  It is computed
numerically: every factorization with :math:`P = W_L \cdots W_2` of full row rank is
:math:`W_1 = P^+ A + (I - P^+ P) Z` (or the mirror image through :math:`W_L` when the widths
are at least :math:`n_0`), so :math:`R` is minimized over :math:`W_2, \dots, W_L, Z` without
constraint (L-BFGS with exact gradients by autograd), from several random starts; the spread of
the end points is reported.

*Envelope.*  With hidden-unit noise of variance :math:`\lambda_l` on every unit of hidden layer
:math:`l` (diagonal covariance, no weight noise), a rank-one map :math:`A = \sigma a b^\top`
(:math:`S^{1/2}` absorbed into :math:`b`) factored through equalized units, every hidden unit
of layer :math:`l` carrying :math:`1/\sqrt{n_l}` of the path, gives

.. math::

    R = \nu\,\sigma^2, \qquad \nu = \prod_{l=1}^{L-1}\Big(1 + \frac{\lambda_l}{n_l}\Big) - 1,

(each noisy layer multiplies :math:`\mathrm{tr} H` by :math:`1 + \lambda_l \sum_j u_j^4 =
1 + \lambda_l / n_l`).  Mianjy and Arora (ICML 2019) show that the convex envelope of
:math:`\Theta` is a multiple of the squared nuclear norm of the map; since :math:`\Theta` is
homogeneous of degree 2, an envelope that is attained on rank-one maps is
:math:`\nu \|A S^{1/2}\|_*^2` with the constant above (every map is a convex combination of
rank-one maps of the same nuclear norm).  The tests check :math:`\Theta \ge \nu \|A
S^{1/2}\|_*^2` numerically, with equality on rank-one maps and on every map at depth 2.  Above
depth 2 a map of higher rank can sit strictly above its envelope; :func:`induced_penalty`
reports both.  The parameterization needs :math:`P` of full row rank: near a rank-deficient
map the minimization converges slowly (use :func:`equalized_factors` for rank one).

*Global optimum.*  With :math:`B = A S^{1/2}` and :math:`M = \frac1N Y X^\top S^{-1/2}`, the
expected loss is :math:`\frac1N\|Y\|^2 - \|M\|^2 + \|M - B\|^2 + \Theta(A)`.  Replacing
:math:`\Theta` by its envelope gives a convex problem whose solution shrinks the singular
values :math:`s` of :math:`M`, :math:`q_i = (s_i - \tau)_+` with
:math:`\tau = \nu \sum_{j \le \rho} s_j / (1 + \nu \rho)`; its value is a lower bound of the
true optimum.  When that solution is rank one, :math:`s_2 (1 + \nu) \le \nu s_1` (a large
enough dropout rate: the regime in which Mianjy and Arora characterize the global optima), the
envelope is attained there by an equalized rank-one factorization, so it is the global optimum
of the deep problem: :math:`A^* = \frac{s_1}{1 + \nu} p_1 q_1^\top S^{-1/2}`.
Elsewhere :func:`global_minimizer` minimizes the closed-form expected loss numerically.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import minimize

from .._backend import max_abs, power_of_two
from .._validation import (SCALED_DOWN, InvalidParameterError, as_numpy_arrays, check_count, check_data,
                           check_positive_int, check_second_moment, check_seed, invalid, warn_if_beyond_floats)
from ..regularizers.induced import balanced_factors
from .closed import penalty_of_deep_law
from .network import check_layer_sizes, check_problem, check_widths, deep_law

__all__ = ["envelope_coefficient", "induced_penalty", "InducedResult", "equalized_factors", "global_minimizer",
           "DeepMinimizerResult"]


def _check_matrix(name, A):
    """A non-empty real matrix (as :func:`as_numpy_arrays` reads it)."""
    A = as_numpy_arrays(**{name: A})[name]
    if A.ndim != 2 or A.size == 0:
        raise invalid(name, "a non-empty matrix", f"an array of shape {A.shape}")
    return A


def envelope_coefficient(sizes, hidden=None, weight_noise=None):
    r""":math:`\nu = \prod_l (1 + \lambda_l / n_l) - 1`: the squared-nuclear-norm envelope
    :math:`\nu \|A S^{1/2}\|_*^2` of the induced regularizer.

    A rank-one map factored through equalized units (every unit of hidden layer :math:`l`
    carrying :math:`1/\sqrt{n_l}` of the path) has the penalty :math:`\nu \sigma^2`, each noisy
    layer multiplying :math:`\mathrm{tr} H` by :math:`1 + \lambda_l / n_l`; the convex envelope
    of the induced regularizer is a multiple of the squared nuclear norm (Mianjy and Arora,
    ICML 2019), hence this one.  Defined for hidden-unit noise with one variance
    :math:`\lambda_l` for all units of a layer and uncoupled units (Dropout, GaussianDropout,
    UnitNoise of one law), and no weight noise; refused otherwise.

    Examples
    --------
    Dropout at rate 0.5 (:math:`\lambda = 1`) on hidden layers of width 4; at depth 2,
    :math:`\lambda / d`, the constant of the single-layer regularizer (theory page, equation
    :eq:`induced`):

    >>> import pnd_theory as pt
    >>> pt.deep.envelope_coefficient((2, 4, 4, 2), hidden=[pt.Dropout(0.5), pt.Dropout(0.5)])
    0.5625
    >>> pt.deep.envelope_coefficient((3, 4, 2), hidden=[pt.Dropout(0.5)])
    0.25
    """
    law = deep_law(sizes, hidden, weight_noise)
    if any(c is not None for c in law.weight_laws):
        raise InvalidParameterError("weight_noise must be None for the nuclear-norm envelope (it is derived for "
                                    "hidden-unit noise only)")
    nu = 1.0
    for l, comp in enumerate(law.hidden, start=1):
        if comp is None:
            continue
        cov = comp.hidden_covariance()
        values = np.asarray(cov.diagonal(), dtype=np.float64)
        if cov.kind != "diagonal" or not np.allclose(values, values[0], rtol=0, atol=0):
            raise invalid(f"hidden[{l - 1}]", "a hidden-unit law with one variance for every unit and uncoupled units "
                          "for the envelope (Dropout, GaussianDropout, UnitNoise(law))", hidden[l - 1])
        nu *= 1.0 + float(values[0]) / law.sizes[l]
    return nu - 1.0


@dataclass(frozen=True, eq=False)
class InducedResult:
    r"""Result of :func:`induced_penalty`.

    Attributes
    ----------
    value : float
        The smallest penalty found over factorizations of ``A`` (the numeric :math:`\Theta(A)`).
    values : numpy.ndarray
        The end value of every start, ascending; ``spread = values[-1] - values[0]``.
    weights : list of numpy.ndarray
        A factorization attaining ``value``.
    envelope : float or None
        :math:`\nu \|A S^{1/2}\|_*^2` where defined (:func:`envelope_coefficient`), else None.
    nu : float or None
    """

    value: float
    values: np.ndarray
    weights: list = field(repr=False)
    envelope: float | None
    nu: float | None

    @property
    def spread(self) -> float:
        return float(self.values[-1] - self.values[0])

    @property
    def gap(self):
        """``value / envelope - 1`` (None without an envelope)."""
        return None if not self.envelope else self.value / self.envelope - 1.0


def _sqrt_psd(S):
    w, Q = np.linalg.eigh((S + S.T) / 2)
    return (Q * np.sqrt(np.clip(w, 0, None))) @ Q.T


def _factorization_side(sizes):
    inner = min(sizes[1:-1]) if len(sizes) > 2 else np.inf
    if inner >= sizes[-1]:
        return "first"
    if inner >= sizes[0]:
        return "last"
    raise InvalidParameterError(
        f"widths must all be at least n_out = {sizes[-1]} or all at least n_in = {sizes[0]} for the numeric "
        f"induced regularizer; got layer sizes {sizes}")


def _completed(free, A, side):
    r"""All weights from the free ones: :math:`W_1 = P^+ A + (I - P^+ P) Z` (or the mirror)."""
    *mats, Z = free
    if side == "first":
        P = mats[-1]
        for W in reversed(mats[:-1]):
            P = P @ W
        Pp = torch.linalg.pinv(P)
        W1 = Pp @ A + Z - Pp @ (P @ Z)
        return [W1] + mats
    Q = mats[0]
    for W in mats[1:]:
        Q = W @ Q
    Qp = torch.linalg.pinv(Q)
    WL = A @ Qp + Z - (Z @ Q) @ Qp
    return mats + [WL]


def _minimize_torch(fun, shapes, x0, max_iter):
    """L-BFGS (scipy) on a torch function of a list of float64 tensors of the given shapes."""
    sizes = [int(np.prod(s)) for s in shapes]

    def split(x):
        out, k = [], 0
        for s, n in zip(shapes, sizes):
            out.append(torch.tensor(x[k:k + n].reshape(s), dtype=torch.float64, requires_grad=True))
            k += n
        return out

    def objective(x):
        ts = split(x)
        value = fun(ts)
        if not torch.isfinite(value):
            return 1e300, np.zeros_like(x)
        grads = torch.autograd.grad(value, ts)
        return float(value.detach()), np.concatenate([g.detach().numpy().ravel() for g in grads])

    sol = minimize(objective, x0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "maxcor": 30, "ftol": 1e-15, "gtol": 1e-11})
    return sol, [t.detach() for t in split(sol.x)]


def _minimize_from_starts(fun, shapes, starts, seed, max_iter):
    """:func:`_minimize_torch` from ``starts`` random starts (entries ``N(0, 1 / fan-in)``, seeded
    by ``seed``): ``(value, tensors)`` of every start, best first."""
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(starts):
        x0 = np.concatenate([rng.normal(size=s).ravel() / np.sqrt(s[1]) for s in shapes])
        sol, ts = _minimize_torch(fun, shapes, x0, max_iter)
        results.append((float(sol.fun), ts))
    results.sort(key=lambda r: r[0])
    return results


def induced_penalty(A, widths, hidden=None, weight_noise=None, second_moment=None, starts=8, seed=0,
                    max_iter=5000) -> InducedResult:
    r"""The induced regularizer :math:`\Theta(A) = \min\{R(W) : W_L \cdots W_1 = A\}`,
    numerically, with its squared-nuclear-norm envelope where defined.

    .. math::

        \Theta(A) \ge \nu \|A S^{1/2}\|_*^2, \qquad \nu = \prod_l (1 + \lambda_l / n_l) - 1

    (:func:`envelope_coefficient`), with equality on rank-one maps and, at depth 2, on every map.
    Every factorization with :math:`P = W_L \cdots W_2` of full row rank is
    :math:`W_1 = P^+ A + (I - P^+ P) Z` (or its mirror image through :math:`W_L`), so :math:`R`
    is minimized over :math:`W_2, \dots, W_L, Z` without constraint (L-BFGS, exact gradients),
    from ``starts`` random starts.

    Parameters
    ----------
    A : array (n_out, n_in)
        The map.
    widths : sequence of int
        Hidden widths ``(n_1, ..., n_{L-1})``; all at least ``n_out`` or all at least ``n_in``.
    hidden, weight_noise : list, optional
        As in :func:`pnd_theory.deep.expected_penalty`.
    second_moment : array (n_in, n_in), optional
        :math:`S`; the identity by default.
    starts : int
        Random starts of L-BFGS (seeded by ``seed``).
    max_iter : int
        Iterations per start.

    Returns
    -------
    InducedResult

    Examples
    --------
    At depth 3 a map of rank two sits above its envelope:

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> A = np.array([[1.0, 0.5], [0.0, 1.0]])
    >>> result = pt.deep.induced_penalty(A, widths=[2, 2], hidden=[pt.Dropout(0.5), pt.Dropout(0.5)], starts=2)
    >>> result.nu, round(result.envelope, 6), round(result.gap, 2)
    (1.25, 5.3125, 0.2)
    """
    A = _check_matrix("A", A)
    widths = check_widths(widths)
    starts = check_count("starts", starts)
    max_iter = check_count("max_iter", max_iter)
    seed = check_seed(seed)
    sizes = (A.shape[1],) + widths + (A.shape[0],)
    law = deep_law(sizes, hidden, weight_noise)
    S = None if second_moment is None else _check_matrix("second_moment", second_moment)
    if S is not None:
        check_second_moment(np, S, sizes[0])
    nu = None
    try:
        nu = envelope_coefficient(sizes, hidden, weight_noise)
    except InvalidParameterError:
        pass
    root = np.eye(sizes[0]) if S is None else _sqrt_psd(S)
    with np.errstate(over="ignore"):  # an A too large for its squared norm: inf, said below
        envelope = None if nu is None else nu * np.float64(np.linalg.svd(A @ root, compute_uv=False).sum()) ** 2
    if len(sizes) == 2 or not np.any(A):
        W = [A.copy()] if len(sizes) == 2 else [np.zeros((sizes[l + 1], sizes[l])) for l in range(len(sizes) - 1)]
        value = penalty_of_deep_law(law, W, S)
        return InducedResult(value, np.array([value]), W, envelope, nu)
    side = _factorization_side(sizes)
    scale = float(np.linalg.norm(A, 2))
    At = torch.as_tensor(A / scale, dtype=torch.float64)
    St = None if S is None else torch.as_tensor(S, dtype=torch.float64)
    L = len(sizes) - 1
    if side == "first":
        shapes = [(sizes[l + 1], sizes[l]) for l in range(1, L)] + [(sizes[1], sizes[0])]
    else:
        shapes = [(sizes[l + 1], sizes[l]) for l in range(0, L - 1)] + [(sizes[L], sizes[L - 1])]

    def fun(free):
        return penalty_of_deep_law(law, _completed(free, At, side), St)

    results = _minimize_from_starts(fun, shapes, starts, seed, max_iter)
    best = [W.numpy() for W in _completed(results[0][1], At, side)]
    per_layer = scale ** (1.0 / L)
    weights = [W * per_layer for W in best]
    with np.errstate(over="ignore"):
        values = np.array([v for v, _ in results]) * np.float64(scale) ** 2
    warn_if_beyond_floats(values[0], "deep.induced_penalty", "at the scale of these A the value (of degree 2 in them)",
                          SCALED_DOWN)
    return InducedResult(float(values[0]), values, weights, None if envelope is None else float(envelope), nu)



def equalized_factors(A, widths, second_moment=None, hidden=None):
    r"""Weights of an equalized factorization of a rank-one map :math:`A = \sigma a b^\top`.

    .. math::

        W_1 = c\, \tfrac{1}{\sqrt{n_1}}\mathbf 1\, b'^\top S^{-1/2}, \quad
        W_l = c\, \tfrac{1}{\sqrt{n_l n_{l-1}}} \mathbf 1 \mathbf 1^\top, \quad
        W_L = c\, a\, \tfrac{1}{\sqrt{n_{L-1}}} \mathbf 1^\top, \qquad c = \sigma^{1/L},

    with :math:`\sigma a b'^\top` the rank-one map :math:`A S^{1/2}`: every hidden unit carries
    the same share of the path, and with equal-variance unit noise the penalty is the envelope
    :math:`\nu \sigma^2` (:func:`envelope_coefficient`).  At depth 2 a map of any rank has equalized
    factors (:func:`pnd_theory.balanced_factors` of the strategy ``hidden[0]``, returned as
    ``[V.T, U]``).  Above depth 2 maps of higher rank are refused: their induced regularizer may
    exceed the envelope, and no such construction is offered.

    Examples
    --------
    The factors multiply to the map, and their penalty is the envelope :math:`\nu \sigma^2`:

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> A, hidden = np.outer([1.0, 2.0], [0.5, -1.0, 1.0]), [pt.Dropout(0.5), pt.Dropout(0.5)]
    >>> weights = pt.deep.equalized_factors(A, widths=[3, 3])
    >>> bool(np.allclose(pt.deep.mean_map(weights), A))
    True
    >>> nu = pt.deep.envelope_coefficient((3, 3, 3, 2), hidden=hidden)
    >>> bool(np.isclose(pt.deep.expected_penalty(weights, hidden=hidden), nu * np.linalg.norm(A, 2) ** 2))
    True
    """
    A = _check_matrix("A", A)
    widths = check_widths(widths)
    S = None if second_moment is None else _check_matrix("second_moment", second_moment)
    n_out, n_in = A.shape
    check_layer_sizes((n_in,) + widths + (n_out,))
    if S is not None:
        check_second_moment(np, S, n_in)
    root = np.eye(n_in) if S is None else _sqrt_psd(S)
    B = A @ root
    P, s, Qt = np.linalg.svd(B)
    tol = 1e-12 * max(1.0, float(s[0]) if s.size else 0.0)
    if s.size == 0 or s[0] <= tol:
        raise invalid("A", "a non-zero rank-one map", "the zero map")
    if s.size > 1 and s[1] > 1e-10 * s[0]:
        if len(widths) == 1 and hidden is not None and len(hidden) == 1 and hidden[0] is not None:
            U, V = balanced_factors(hidden[0], A, widths[0], S)
            return [V.T, U]
        raise invalid("A", "a rank-one map (equalized factors are built for rank one, and at depth 2 for any rank "
                      f"given hidden=[strategy]); singular values {s}", A.shape)
    if S is not None and np.linalg.matrix_rank(S) < n_in:
        raise invalid("second_moment", "an invertible second moment for equalized factors", "a singular matrix")
    a, b = P[:, 0], Qt[0]
    b_in = b if S is None else np.linalg.solve(root, b)  # b'^T S^{-1/2}, S symmetric
    sizes = (n_in,) + widths + (n_out,)
    L = len(sizes) - 1
    c = s[0] ** (1.0 / L)
    if L == 1:
        return [A.copy()]
    ones = [np.ones(n) / np.sqrt(n) for n in sizes]
    Ws = [c * np.outer(ones[1], b_in)]
    for l in range(2, L):
        Ws.append(c * np.outer(ones[l], ones[l - 1]))
    Ws.append(c * np.outer(a, ones[L - 1]))
    return Ws


@dataclass(frozen=True, eq=False)
class DeepMinimizerResult:
    r"""Result of :func:`global_minimizer`.

    Attributes
    ----------
    weights : list of numpy.ndarray
        The best factorization found (numeric) or an equalized one (closed form).
    product : numpy.ndarray
        :math:`A^* = W_L \cdots W_1`.
    objective : float
        The expected loss there (constant part included).
    singular_values : numpy.ndarray
    method : str
        ``"closed_form"`` (the rank-one regime of :func:`global_minimizer`) or ``"numeric"``.
    values : numpy.ndarray
        End values of the numeric starts, ascending (spread of the local minima).
    lower_bound : float or None
        The optimum of the envelope problem (a lower bound), where the envelope is defined.
    nu : float or None
    """

    weights: list = field(repr=False)
    product: np.ndarray
    objective: float
    singular_values: np.ndarray
    method: str
    values: np.ndarray
    lower_bound: float | None
    nu: float | None


def _envelope_problem(X, Y, nu):
    """``(lower_bound, A_star_rank_one_or_None)`` of the envelope problem (module docstring)."""
    N = X.shape[1]
    S = X @ X.T / N
    w, Q = np.linalg.eigh(S)
    if w.min() <= 1e-12 * max(1.0, w.max()):
        return None, None
    inv_root = (Q / np.sqrt(w)) @ Q.T
    M = Y @ X.T / N @ inv_root
    P, s, Qt = np.linalg.svd(M, full_matrices=False)
    rho = 0
    for j in range(1, len(s) + 1):
        if s[j - 1] > nu * s[:j].sum() / (1 + nu * j):
            rho = j
    tau = nu * s[:rho].sum() / (1 + nu * rho) if rho else 0.0
    q = np.clip(s - tau, 0, None)
    const = float((Y * Y).sum()) / N - float((s * s).sum())
    bound = const + float(((s - q) ** 2).sum()) + nu * float(q.sum()) ** 2
    rank_one = None
    if len(s) == 1 or s[1] * (1 + nu) <= nu * s[0]:
        rank_one = (s[0] / (1 + nu)) * np.outer(P[:, 0], Qt[0]) @ inv_root
    return bound, rank_one


def global_minimizer(X, Y, widths, hidden=None, weight_noise=None, starts=8, seed=0, max_iter=20000):
    r"""The global minimizer of the expected loss of a noisy deep linear network.

    .. math::

        \min_{W_1, \dots, W_L} \frac1N \|Y - W_L \cdots W_1 X\|_F^2 + R(W)

    With :math:`M = \frac1N Y X^\top S^{-1/2}` of singular values :math:`s_1 \ge s_2 \ge \dots`,
    replacing the induced regularizer by its envelope (:func:`envelope_coefficient`) gives a
    convex problem whose optimum is a lower bound.  In the rank-one regime of Mianjy and Arora
    (hidden-unit noise of one variance per layer, :math:`s_2 (1 + \nu) \le \nu s_1`) it is
    attained by equalized factors of :math:`A^* = \frac{s_1}{1 + \nu} p_1 q_1^\top S^{-1/2}`,
    so the optimum is in closed form; elsewhere L-BFGS on the closed-form objective from
    ``starts`` random starts (the best end point; ``values`` gives the spread).  Both are
    reported where both apply: the closed form is returned, the numeric values kept.

    Parameters
    ----------
    X, Y : arrays ``(n_0, N)``, ``(n_L, N)``
    widths : sequence of int
        Hidden widths ``(n_1, ..., n_{L-1})``.
    hidden, weight_noise : list, optional
    starts, seed, max_iter : int

    Returns
    -------
    DeepMinimizerResult

    Examples
    --------
    Nearly rank-one data and dropout on two hidden layers: the closed form, which meets the
    envelope's lower bound, and whose objective is the expected loss of its own weights:

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2, 10))
    >>> Y = np.outer([1.0, -1.0], [1.0, 0.5]) @ X + 0.1 * rng.normal(size=(2, 10))
    >>> hidden = [pt.Dropout(0.5), pt.Dropout(0.5)]
    >>> result = pt.deep.global_minimizer(X, Y, widths=[2, 2], hidden=hidden, starts=1)
    >>> result.method, bool(np.isclose(result.objective, result.lower_bound))
    ('closed_form', True)
    >>> bool(np.isclose(result.objective, pt.deep.expected_loss(result.weights, X, Y, hidden=hidden)))
    True
    """
    widths = check_widths(widths)
    starts = check_count("starts", starts)
    seed = check_seed(seed)
    max_iter = check_count("max_iter", max_iter)
    X, Y = (as_numpy_arrays(X=X, Y=Y)[k] for k in ("X", "Y"))
    check_data(X, Y, None, None)
    sizes = (X.shape[0],) + widths + (Y.shape[0],)
    check_layer_sizes(sizes, X.shape[1])
    Ws0 = [np.zeros((sizes[l + 1], sizes[l])) for l in range(len(sizes) - 1)]
    check_problem(Ws0, X, Y)
    law = deep_law(sizes, hidden, weight_noise)
    N = X.shape[1]
    # the objective is invariant to X -> X / cx with W_1 -> W_1 cx (the penalty is homogeneous
    # of degree 2 in W_1 and 1 in S): solved on the scaled inputs (exact), W_1 scaled back
    cx = power_of_two(max_abs(np, X))
    X = X / cx
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    St = Xt @ Xt.T / N
    scale = max(float(np.abs(Y).max()), 1e-300)

    def fun(Ws):
        H = Xt
        for W in Ws:
            H = W @ H
        r = Yt / scale - H
        return (r * r).sum() / N + penalty_of_deep_law(law, Ws, St)

    shapes = [(sizes[l + 1], sizes[l]) for l in range(len(sizes) - 1)]
    results = _minimize_from_starts(fun, shapes, starts, seed, max_iter)
    per_layer = scale ** (1.0 / len(shapes))
    weights = [W.numpy() * per_layer for W in results[0][1]]
    with np.errstate(over="ignore"):
        values = np.array([v for v, _ in results]) * np.float64(scale) ** 2
    nu = lower = None
    try:
        nu = envelope_coefficient(sizes, hidden, weight_noise)
    except InvalidParameterError:
        pass
    method = "numeric"
    objective = float(values[0])
    if nu is not None:
        lower, rank_one = _envelope_problem(X, Y / scale, nu)  # of degrees 2 and 1 in Y: solved on Y / scale
        with np.errstate(over="ignore"):
            lower = None if lower is None else float(lower * np.float64(scale) ** 2)
        if rank_one is not None:
            S = X @ X.T / N
            unit = equalized_factors(rank_one, widths, S)
            weights = [W * per_layer for W in unit]
            with np.errstate(over="ignore"):
                objective = float(fun([torch.as_tensor(W) for W in unit]) * np.float64(scale) ** 2)
            method = "closed_form"
    A = weights[0]
    for W in weights[1:]:
        A = W @ A
    singular_values = np.linalg.svd(A, compute_uv=False) / cx
    weights = [weights[0] / cx] + list(weights[1:])
    A = A / cx
    warn_if_beyond_floats(objective, "deep.global_minimizer",
                          "at the scale of these X and Y the value (of degree 2 in them)", SCALED_DOWN)
    return DeepMinimizerResult(weights, A, objective, singular_values, method, values, lower, nu)
