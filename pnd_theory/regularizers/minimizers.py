r"""Global minimizers of the expected loss over the product :math:`A = U V^\top`.

.. math::

    \min_{U, V} L(U, V) + R(U, V) = \min_{\operatorname{rank} A \le d}
        \frac1N \|Y - A X\|_F^2 + \Theta(A)

(the theory page), with :math:`\Theta` the induced regularizer of :mod:`pnd_theory.regularizers.induced`.
With :math:`S = X X^\top / N`, :math:`M = Y X^\top / N`, :math:`B = A S^{1/2}` and
:math:`M' = M S^{+1/2} = P \operatorname{diag}(s) \tilde Q^\top`, the data fit is
:math:`\|M' - B\|_F^2 + \frac1N\|Y\|_F^2 - \|M'\|_F^2` for every :math:`S` (a singular
:math:`S` only sees :math:`A` on its range, and the minimizer returned is the one with rows in
that range).  When the penalty's matrix :math:`Q` is proportional to :math:`S`, both terms are
unitarily invariant functions of :math:`B`, so :math:`B^* = P \operatorname{diag}(q) \tilde Q^\top`
(von Neumann's trace inequality) with

* equal unit weights :math:`w` (Dropout, Gaussian dropout, output-layer or whitened
  DropConnect/PerNodeDrop): :math:`q = \operatorname{prox}` of
  :math:`\tfrac{c}{2}\|\cdot\|_1^2`, :math:`c = w/d`, applied to the :math:`d` largest
  :math:`s_i`: :math:`q_i = (s_i - \tau)_+`;
* DropBlock: :math:`q = \operatorname{prox}` of :math:`\tfrac{c}{2}\|\cdot\|_{(b)}^2`,
  :math:`c = \lambda b / d` (McDonald, Pontil and Stamos 2016), valid when the result has
  rank at most :math:`\max(G, b)`, or when factors attaining the bound at it are constructed
  (:func:`pnd_theory.regularizers._factorizations.certified_block_factors`);
* per-unit weights (NodeDropout): the convex quadratic program
  :math:`\min_{q \ge 0,\ \beta \prec q} \|s - q\|^2 + \sum_j w_j \beta_j^2`, solved exactly
  as a bounded least-squares problem (slack variables for the prefix constraints).

When :math:`Q` is not proportional to :math:`S` (input-layer or both-layer weight noise with
correlated inputs, :math:`Q` involves :math:`D = \operatorname{diag}(S)`) there is no
single-SVD formula; the problem :math:`\min_C f(C) + \frac{w}{d}\|C\|_*^2` in
:math:`C = A Q^{1/2}` is convex and is solved by FISTA with adaptive restart, using the prox
of the squared nuclear norm.

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
.. [6] A. Beck and M. Teboulle, "A fast iterative shrinkage-thresholding algorithm",
   SIAM J. Imaging Sciences 2(1), 2009; B. O'Donoghue and E. Candes, "Adaptive restart for
   accelerated gradient schemes", Found. Comput. Math. 15, 2015.
"""

from __future__ import annotations

from dataclasses import dataclass, replace, field

import math

import numpy as np
from scipy.optimize import lsq_linear, minimize

from .._validation import (SCALED_DOWN, InvalidParameterError, as_numpy_arrays, check_choice, check_count, check_data,
                           check_positive_int, check_problem_sizes, warn_if_beyond_floats)
from .._display import ResultDisplay
from ._factorizations import _rank, certified_block_factors
from .induced import _sqrt_psd, balanced_factors, penalty_form, weighted_split
from .norms import k_support_norm, prox_squared_k_support, prox_squared_k_support_vector
from ..routes.penalty import penalty_and_gradient
from ..laws.strategies import validate_strategy

__all__ = ["global_minimizer", "MinimizerResult"]

METHODS = ("auto", "closed_form", "convex", "numeric")


@dataclass(frozen=True, eq=False)
class MinimizerResult(ResultDisplay):
    r"""The global minimizer of :math:`L(A) + \Theta(A)` over products of width ``width``.

    Attributes
    ----------
    strategy : Strategy
    width : int
    product : numpy.ndarray (n_out, n_in)
        :math:`A^*`.
    objective : float
        :math:`L(A^*) + \Theta(A^*)`, the minimal expected loss, constant part included:
        directly comparable with ``pt.expected_loss(strategy, U, V, X, Y)``.
    data_fit : float
        :math:`L(A^*) = \frac1N \|Y - A^* X\|_F^2`.
    penalty : float
        :math:`\Theta(A^*)`.
    singular_values : numpy.ndarray
        Of :math:`A^*`, descending, length ``min(n_out, n_in)``.
    method : str
        ``"closed_form"``, ``"convex"`` or ``"numeric"``.
    residual : float
        Optimality residual: 0 for the closed form; the norm of the proximal gradient
        mapping for ``"convex"``; the gradient norm for ``"numeric"``.
    second_moment : numpy.ndarray (n_in, n_in)
        :math:`S = X X^\top / N`.
    """

    strategy: object
    width: int
    product: np.ndarray
    objective: float
    data_fit: float
    penalty: float
    singular_values: np.ndarray
    method: str
    residual: float
    second_moment: np.ndarray = field(repr=False)
    _factors: tuple = field(default=None, repr=False)
    _plot_function = "plot_spectrum"

    @property
    def rank(self) -> int:
        return _rank(self.singular_values, self.product.shape)

    def factors(self):
        """Factors ``(U, V)`` attaining the objective: the balanced factors of the product
        (:func:`pnd_theory.balanced_factors`), or the optimizer's own for ``"numeric"``."""
        if self._factors is not None:
            return tuple(f.copy() for f in self._factors)
        return balanced_factors(self.strategy, self.product, self.width, self.second_moment)

    def summary(self) -> str:
        """A short human-readable report (what the ``minimize`` command prints)."""
        sv = np.array2string(self.singular_values, precision=6, separator=", ")
        return "\n".join([
            f"global minimizer for {self.strategy!r}, width {self.width} ({self.method})",
            f"  objective  L + Theta = {self.objective:.12g}",
            f"  data fit   L         = {self.data_fit:.12g}",
            f"  penalty    Theta     = {self.penalty:.12g}",
            f"  rank {self.rank}, singular values of A* = {sv}",
        ] + ([f"  optimality residual   = {self.residual:.3g}"] if self.method != "closed_form" else []))

    def __str__(self):
        return self.summary()


def global_minimizer(strategy, X, Y, width, method="auto", *, tol=1e-12, max_iter=200_000) -> MinimizerResult:
    r"""Global minimizer of the expected loss :math:`L + R` over all factors of width ``d``.

    .. math::

        A^* = \operatorname*{argmin}_{\operatorname{rank} A \le d}
            \frac1N\|Y - A X\|_F^2 + \Theta(A), \qquad
        B^* = A^* S^{1/2} = P \operatorname{diag}(q) \tilde Q^\top,

    with :math:`q` the prox of the squared (:math:`b`-support or :math:`\ell_1`) norm of the
    singular values :math:`s` of :math:`M' = (Y X^\top / N) S^{+1/2}` (theory page, equations
    :eq:`minimizer` and :eq:`soft-threshold`).

    Parameters
    ----------
    strategy : Strategy
    X : array (n_in, N)
        Inputs, samples as columns.  :math:`S = X X^\top/N` may be singular (``N < n_in``).
    Y : array (n_out, N)
    width : int
    method : {"auto", "closed_form", "convex", "numeric"}
        ``"auto"``: the closed form when the penalty's :math:`Q` is proportional to :math:`S`,
        else the convex solver.  ``"closed_form"`` or ``"convex"`` force one (``ValueError``
        if it does not apply; ``"convex"`` applies to every law with equal unit weights).
        Where neither applies -- a law without closed form, DropBlock whose minimizer has more
        than ``max(G, b)`` nonzero singular values, a convex solution of rank above ``width``
        -- ``ValueError`` says why; ``"numeric"`` then minimizes :math:`L + R` over
        :math:`(U, V)` by L-BFGS from 8 starts (a local search, no certificate; float64;
        stops at a relative objective change of 1e-16 or a gradient norm of 1e-12).
    tol : float, keyword-only
        ``"convex"`` stops when the proximal gradient mapping has norm at most
        ``tol * max(1, ||grad f(0)||_F)`` (FISTA with adaptive restart, float64).
    max_iter : int, keyword-only
        Iteration cap of the convex solver (``RuntimeError`` if reached).

    Returns
    -------
    MinimizerResult
        ``.product``, ``.objective`` (constant part included), ``.singular_values``,
        ``.method``, ``.factors()``, ``.summary()``.

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
    >>> result = pt.global_minimizer(pt.Dropout(0.5), X, Y, width=4)
    >>> result.method, result.rank
    ('closed_form', 2)

    Its objective is the expected loss of its own factors:

    >>> Ua, Va = result.factors()
    >>> bool(np.isclose(result.objective, pt.expected_loss(pt.Dropout(0.5), Ua, Va, X, Y)))
    True
    """
    validate_strategy(strategy)
    check_choice("method", method, METHODS)
    arrays = as_numpy_arrays(X=X, Y=Y)
    X, Y = arrays["X"], arrays["Y"]
    check_data(X, Y, None, None)
    width = check_positive_int("width", width)
    check_problem_sizes(X.shape[0], width, Y.shape[0], X.shape[1])
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not (0 < tol < 1):
        raise InvalidParameterError(f"tol must be a number in (0, 1), got {tol!r}")
    max_iter = check_count("max_iter", max_iter)
    # Scaling X by cx and Y by cy leaves the problem the same up to A* -> A* cy / cx (the
    # penalty is invariant to V -> V / cx, S -> cx^2 S) and every energy times cy^2: solve on the
    # data divided by powers of four near their largest entries (exact; the square root too).
    cx, cy = _power_of_four(X), _power_of_four(Y)
    res = _global_minimizer(strategy, X / cx, Y / cy, width, method, tol, max_iter)
    if cx == 1.0 and cy == 1.0:
        return res
    e, ratio = cy * cy, cy / cx
    S = res.second_moment * cx * cx
    factors = res._factors
    if factors is None and not 2.0 ** -240 <= cx <= 2.0 ** 240:  # S may over- or underflow: factor now
        factors = res.factors()
    factors = factors and (factors[0] * math.sqrt(cy), factors[1] * (math.sqrt(cy) / cx))
    with np.errstate(over="ignore"):
        res = replace(res, product=res.product * ratio, singular_values=res.singular_values * ratio,
                      objective=res.objective * e, data_fit=res.data_fit * e, penalty=res.penalty * e,
                      residual=res.residual * cy * cx, second_moment=S, _factors=factors)
    warn_if_beyond_floats([res.objective, *res.product.ravel()], "global_minimizer",
                          f"at the scale of these X and Y (largest entries {cx:.3g} and {cy:.3g}, to a power of four) "
                          "the minimum's objective or product", SCALED_DOWN)
    return res


def _power_of_four(a) -> float:
    """The power of four at or just above the largest absolute entry of ``a`` (1 for zero)."""
    top = float(np.abs(a).max(initial=0.0))
    if top == 0.0:
        return 1.0
    exponent = int(np.frexp(top)[1])
    return float(np.ldexp(1.0, min(exponent + exponent % 2, 1022)))  # 2^1024 is not a float


def _global_minimizer(strategy, X, Y, width, method, tol, max_iter):
    n_in, N = X.shape
    n_out = Y.shape[0]
    law = strategy.law(n_in, width, n_out)
    S = X @ X.T / N
    S = (S + S.T) / 2
    problem = _Problem(strategy, law, X, Y, S, Y @ X.T / N, float((Y * Y).sum()) / N, width)
    if method == "numeric":
        return _numeric(problem)
    form = penalty_form(law, S)
    if form.kind is None:
        raise InvalidParameterError(f"no closed form or convex formulation for this law: {form.reason}; use method='numeric'")
    kappa = _proportionality(form, S)
    if method in ("auto", "closed_form") and kappa is not None:
        return _closed_form(problem, form, kappa)
    if method == "closed_form":
        raise InvalidParameterError(
            "no single-SVD closed form: the penalty's matrix Q is not proportional to S = X X^T / N "
            "(weight noise on the input layer with correlated inputs); use method='convex'"
        )
    uniform = form.kind == "units" and np.ptp(form.weights) == 0
    if not uniform:
        what = "per-unit weights" if form.kind == "units" else "block-correlated hidden noise"
        raise InvalidParameterError(
            "the convex solver handles laws with equal unit weights (the squared nuclear norm); "
            f"this law has {what}"
            + ("" if kappa is None else "; use method='closed_form'")
            + ("; use method='numeric'" if kappa is None else "")
        )
    return _convex(problem, form, tol, max_iter)


@dataclass(frozen=True, eq=False)
class _Problem:
    strategy: object
    law: object
    X: np.ndarray
    Y: np.ndarray
    S: np.ndarray
    M: np.ndarray
    const: float
    width: int

    def data_fit(self, A):
        residual = self.Y - A @ self.X
        return float((residual * residual).sum()) / self.X.shape[1]

    def result(self, A, penalty, method, residual=0.0, factors=None):
        data_fit = self.data_fit(A)
        return MinimizerResult(
            strategy=self.strategy, width=self.width, product=A, objective=data_fit + penalty,
            data_fit=data_fit, penalty=float(penalty), singular_values=np.linalg.svd(A, compute_uv=False),
            method=method, residual=float(residual), second_moment=self.S, _factors=factors,
        )


def _proportionality(form, S):
    """``kappa`` with ``Q = kappa S``, or None; a penalty that vanishes counts as ``kappa = 0``."""
    weights_zero = (form.kind == "units" and not np.any(form.weights)) or (form.kind == "blocks" and form.strength == 0)
    if weights_zero or not np.any(form.Q):
        return 0.0
    norm_s = float((S * S).sum())
    if norm_s == 0.0:
        return None
    kappa = float((form.Q * S).sum()) / norm_s
    if np.linalg.norm(form.Q - kappa * S) <= 1e-12 * np.linalg.norm(form.Q):
        return kappa
    return None


def _closed_form(problem, form, kappa):
    d = problem.width
    _, pinv_root, _, _ = _sqrt_psd(problem.S)
    P, s, Qt = np.linalg.svd(problem.M @ pinv_root, full_matrices=False)
    n = s.size
    m = min(n, d)
    q = np.zeros(n)
    if kappa == 0.0:
        q[:m] = s[:m]  # no penalty: reduced-rank least squares
        penalty = 0.0
    elif form.kind == "units":
        w = kappa * np.asarray(form.weights, dtype=np.float64)
        if np.ptp(w) == 0:
            q[:m] = prox_squared_k_support_vector(s[:m], 1, float(w[0]) / d)
        else:
            q[:m] = _weighted_shrinkage(s, w)
        penalty = weighted_split(np.concatenate([q[:m], np.zeros(d - m)]), w)[1]
    else:
        b = form.block_size
        G = d // b
        c = kappa * form.strength * b / d
        q = prox_squared_k_support_vector(s, b, c)
        r = _rank(q, problem.M.shape)
        q[r:] = 0.0
        if not (G >= r or b >= r) and certified_block_factors(P[:, :r], q[:r], Qt[:r].T, b, d) is None:
            raise InvalidParameterError(
                f"the minimizer of L + (lam b / d) ||A S^(1/2)||_(b)^2 has rank {r}, more than the "
                f"number of blocks G = {G} and the block size b = {b}, and no factors attaining the "
                "DropBlock closed form of Theta there were found: the true minimum can be larger; "
                "use method='numeric'"
            )
        penalty = c * k_support_norm(q, b) ** 2 if r else 0.0
    A = (P * q) @ Qt @ pinv_root
    return problem.result(A, penalty, "closed_form")


def _weighted_shrinkage(s, w):
    r"""Exact solution of :math:`\min_{q \ge 0,\ \beta \prec q} \|s - q\|^2 + \sum_j w_j \beta_j^2`.

    Units sorted by increasing weight, :math:`q` of length :math:`m = \min(n, d)` and prefix
    slacks :math:`c_k \ge 0` (:math:`k < d`) give :math:`\beta_j = q_j [j \le m] - c_j + c_{j-1}`:
    a bounded linear least-squares problem, solved exactly by BVLS (an active-set method).
    The prefix relaxation is exact because the optimal :math:`\beta` decreases along the
    sorted units (checked in the tests against a direct factorized minimization).
    """
    d = w.size
    n = s.size
    m = min(n, d)
    ws = np.sort(w)
    nvar = m + d - 1
    rows = []
    for i in range(m):
        row = np.zeros(nvar)
        row[i] = 1.0
        rows.append(row)
    for j in range(d):
        if ws[j] == 0:
            continue
        row = np.zeros(nvar)
        if j < m:
            row[j] = 1.0
        if j < d - 1:
            row[m + j] -= 1.0
        if j > 0:
            row[m + j - 1] += 1.0
        rows.append(np.sqrt(ws[j]) * row)
    Amat = np.array(rows)
    rhs = np.concatenate([s[:m], np.zeros(Amat.shape[0] - m)])
    sol = lsq_linear(Amat, rhs, bounds=(0.0, np.inf), method="bvls", tol=1e-15, max_iter=100 * nvar)
    q = np.maximum(sol.x[:m], 0.0)
    return q


def _convex(problem, form, tol, max_iter):
    r"""FISTA with adaptive restart on :math:`f(C) + \frac{w}{d}\|C\|_*^2`, :math:`C = A Q^{1/2}`."""
    d = problem.width
    w = float(form.weights[0])
    root, pinv_root, _, _ = _sqrt_psd(form.Q)
    K = pinv_root @ problem.S @ pinv_root
    Mt = problem.M @ pinv_root
    lipschitz = 2 * float(np.linalg.eigvalsh(K).max(initial=0.0))
    if lipschitz == 0.0:
        A = np.zeros_like(problem.M)
        return problem.result(A, 0.0, "convex")
    step = 1.0 / lipschitz
    c = 2 * step * w / d
    scale = max(1.0, 2 * float(np.linalg.norm(Mt)))
    C = np.zeros_like(Mt)
    Z = C.copy()
    theta = 1.0
    residual = np.inf
    for _ in range(max_iter):
        grad = 2 * (Z @ K - Mt)
        C_new = prox_squared_k_support(Z - step * grad, 1, c)
        residual = float(np.linalg.norm(Z - C_new)) / step
        if residual <= tol * scale:
            C = C_new
            break
        if float(((Z - C_new) * (C_new - C)).sum()) > 0:  # gradient restart (O'Donoghue-Candes)
            theta = 1.0
            Z = C_new
        else:
            theta_new = (1 + np.sqrt(1 + 4 * theta * theta)) / 2
            Z = C_new + ((theta - 1) / theta_new) * (C_new - C)
            theta = theta_new
        C = C_new
    else:
        raise RuntimeError(
            f"the convex solver did not reach tol={tol} in max_iter={max_iter} iterations "
            f"(proximal gradient residual {residual:.3g} against scale {scale:.3g})"
        )
    P, sv, Qt = np.linalg.svd(C, full_matrices=False)
    r = _rank(sv, C.shape)
    if r > d:
        raise InvalidParameterError(
            f"the convex minimizer has rank {r} > width = {d}: the width constraint is active and "
            "the problem is no longer convex; use method='numeric'"
        )
    C = (P[:, :r] * sv[:r]) @ Qt[:r]
    penalty = w / d * float(sv[:r].sum()) ** 2
    A = C @ pinv_root
    return problem.result(A, penalty, "convex", residual=residual)


def _numeric(problem, restarts=8, seed=0):
    r"""L-BFGS on :math:`L(U, V) + R(U, V)` from several starts; the best local minimum."""
    d = problem.width
    S, M = problem.S, problem.M
    n_out, n_in = M.shape
    rng = np.random.default_rng(seed)
    size = n_out * d

    def objective(x):
        U = x[:size].reshape(n_out, d)
        V = x[size:].reshape(n_in, d)
        A = U @ V.T
        AS = A @ S
        fit = float((AS * A).sum() - 2 * (A * M).sum()) + problem.const
        value, gU, gV = penalty_and_gradient(problem.law, U, V, S)
        dA = 2 * (AS - M)
        gU = gU + dA @ V
        gV = gV + dA.T @ U
        return fit + value, np.concatenate([gU.ravel(), gV.ravel()])

    amplitude = np.sqrt(max(float(np.linalg.norm(M)), 1e-12) / max(d, 1))
    best = None
    for _ in range(restarts):
        x0 = amplitude * rng.normal(size=(n_out + n_in) * d)
        sol = minimize(objective, x0, jac=True, method="L-BFGS-B",
                       options={"maxiter": 20000, "maxcor": 30, "ftol": 1e-16, "gtol": 1e-12})
        if best is None or sol.fun < best.fun:
            best = sol
    U = best.x[:size].reshape(n_out, d)
    V = best.x[size:].reshape(n_in, d)
    penalty = penalty_and_gradient(problem.law, U, V, S)[0]
    grad_norm = float(np.linalg.norm(objective(best.x)[1]))
    return problem.result(U @ V.T, penalty, "numeric", residual=grad_norm, factors=(U, V))
