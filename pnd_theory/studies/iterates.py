r"""Exact moments of the SGD iterates of the last layer under masks.

With the features :math:`h_k = V^\top x_k` fixed (``V=None``: :math:`h_k = x_k`, the linear
model :math:`f(x) = U\,\mathrm{diag}(\xi)\,x`), the prediction for sample :math:`k` is
:math:`(U \circ \mu)\,h_k`, with :math:`\mu_{oj} = \xi_j` for masks on the hidden units and
:math:`\mu_{oj} = M_{oj}` for masks on the weights of ``U``.  One SGD step on a batch
:math:`I` of size :math:`B` (the project's loss, the mean over the batch of the squared error
summed over outputs) is

.. math::

    U' = U - 2\eta\, \hat G_I(U), \qquad
    \hat G_I(U) = \frac1B \sum_{k \in I} \mu_k \circ \big(((\mu_k \circ U) h_k - y_k)\, h_k^\top\big),

affine in :math:`u = \mathrm{vec}(U)`: :math:`u' = A u + b` with :math:`(A, b)` independent
across steps.  Hence, with :math:`\bar W` the mean of the linear part of :math:`\hat G`
(block :math:`o`: :math:`S_h \circ (1 1^\top + C^{(o)})`, :math:`S_h = H H^\top / N`,
:math:`C^{(o)}` the covariance of row :math:`o` of :math:`\mu`),

.. math::

    m_{t+1} = m_t - 2\eta\,(\bar W m_t - \bar\beta), \qquad
    P_{t+1} = \bar A P_t \bar A^\top + 4\eta^2 \big(\mathcal Q(P_t) - \bar W P_t \bar W\big)
              + 4\eta^2\, \mathrm{Cov}\, \hat G_I(m_t),

with :math:`\bar A = I - 2\eta \bar W` and :math:`\mathcal Q(P) = E[\hat W_I P \hat W_I^\top]`
(:math:`\hat W_I` the linear part of :math:`\hat G_I`).  :math:`\mathcal Q` and the gradient
covariance need the moments of :math:`\mu` up to order 4: for entries made of independent
variables of cumulants :math:`\kappa_2, \kappa_3, \kappa_4` the fourth moment is a sum over the
partitions of the four positions into blocks of at least two entries sharing a variable, and
each term is one contraction of the blocks of ``P`` (no :math:`(n_{out} d)^4` array).  With
``B`` samples drawn uniformly with replacement,
:math:`\mathcal Q = \frac1B \mathcal T_1 + (1 - \frac1B)\mathcal T_2`: :math:`\mathcal T_1` one
sample and one mask, :math:`\mathcal T_2` two independent samples (with one shared mask for
per-batch masks, independent masks per sample).

The stationary mean solves :math:`\bar W m = \bar\beta` (the minimizer over ``U`` of the
expected loss, whatever :math:`\eta`); the stationary covariance solves the Stein equation
:math:`P = \bar A P \bar A + R(P)` (GMRES, preconditioned by the Stein solve in the eigenbasis
of :math:`\bar W`); the second moments are stable while
:math:`\eta < 1 / \rho(\mathcal D^{-1}\mathcal Q)` with
:math:`\mathcal D(P) = (\bar W P + P \bar W)/2` (ARPACK on the positive map
:math:`\mathcal D^{-1}\mathcal Q`, whose spectral radius is its largest eigenvalue); and the asymptotic covariance of
:math:`\sqrt K` times the deviation of the average of :math:`K` iterates is
:math:`\Sigma = (2\eta\bar W)^{-1} P + P (2\eta\bar W)^{-1} - P`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np
import scipy.sparse.linalg as spla

from .._display import ResultDisplay
from .._validation import (InvalidParameterError, as_numpy_arrays, check_count, check_data, check_memory,
                           check_positive_int, check_real, invalid)
from ..laws.strategies import validate_strategy

__all__ = ["IterateMoments", "StationaryMoments", "iterate_moments", "stationary_moments"]

_POSITIONS = "abcd"  # a, d: the outer (gradient) entries j, j'; b, c: the inner entries l, l'
_GROUP = dict(a="A", b="B", c="C", d="D")
_WITHIN = dict(a="w", b="x", c="y", d="z")
_MEMORY = 2 ** 27  # largest intermediate of one contraction, in elements
_PLANS = {}  # contraction paths by subscripts and shapes


def _partitions(positions):
    """Set partitions of ``positions`` into blocks of at least two."""
    positions = list(positions)
    if not positions:
        yield []
        return
    first, rest = positions[0], positions[1:]
    for k in range(1, len(rest) + 1):
        for others in itertools.combinations(rest, k):
            remaining = [p for p in rest if p not in others]
            for tail in _partitions(remaining):
                yield [(first,) + others] + tail


def _terms(within_only):
    """Every (subset, partition) of the four positions with blocks of at least two entries;
    ``within_only``: blocks inside one side ({a, b} or {c, d}), the two masks independent."""
    out = []
    for r in range(0, 5):
        for subset in itertools.combinations(_POSITIONS, r):
            skip = set(_POSITIONS) - set(subset)
            for part in _partitions([p for p in _POSITIONS if p not in skip]):
                if within_only and any(set(b) - set("ab") and set(b) - set("cd") for b in part):
                    continue
                out.append(part)
    return out


class _Moments:
    r"""Moments of the iterates' step for one problem: features, targets, mask cumulants.

    Units are grouped in contiguous blocks of ``b`` sharing one variable (``b = 1``: every
    unit its own); the targets ride along as ``n_out`` extra constant groups, so that the
    gradient :math:`\hat G(U)` is linear in the augmented :math:`\tilde U = (U, -I)`.
    """

    def __init__(self, H, Y, kappa, block, per_row, per_sample):
        n_out, N = Y.shape
        d = H.shape[0]
        self.n_out, self.d, self.N, self.b = n_out, d, N, block
        self.G = d // block
        self.Ga = self.G + n_out
        self.per_row, self.per_sample = per_row, per_sample
        F = np.zeros((N, self.Ga, block))
        F[:, :self.G, :] = H.T.reshape(N, self.G, block)
        F[:, self.G:, 0] = Y.T
        self.F = F
        self.S = np.einsum("kgr,khs->grhs", F, F) / N
        # cumulants (2, 3, 4) per group, per output row when the masks sit on the weights of U
        k = np.zeros((3, n_out, self.Ga))
        k[:, :, :self.G] = kappa
        self.kappa = k if per_row else k[:, 0]
        C = np.zeros((n_out, self.Ga, block, self.Ga, block))
        kk = np.broadcast_to(kappa[0], (n_out, self.G))
        for g in range(self.G):
            C[:, g, :, g, :] = kk[:, g, None, None]
        self.Wbar = self.S[None] * (1.0 + C)  # (n_out, Ga, b, Ga, b)
        self.beta = np.einsum("kgr,ko->ogr", F[:, :self.G], Y.T) / N

    # ----------------------------------------------------------------- the fourth-moment engine
    def _einsum(self, part, form):
        """Operands and subscripts of one term: (subscripts, operand keys, the subscripts of the
        output's view: output axes that share a letter take the diagonal)."""
        group = dict(_GROUP)
        side_p = "p"
        cross = False
        for blk in part:
            for pos in blk[1:]:
                group[pos] = group[blk[0]]
            if set(blk) & set("ab") and set(blk) & set("cd"):
                cross = True
        diag = cross and self.per_row
        if diag:
            side_p = "o"
        sub = {pos: group[pos] + _WITHIN[pos] for pos in _POSITIONS}
        ops, keys = [], []
        if form == "sample":
            ops += ["k" + sub["a"], "k" + sub["b"], "k" + sub["c"], "k" + sub["d"]]
            keys += ["F", "F", "F", "F"]
        else:
            ops += [sub["a"] + sub["b"], sub["c"] + sub["d"]]
            keys += ["S", "S"]
        ops.append("o" + sub["b"] + side_p + sub["c"])
        keys.append("X")
        for blk in part:
            row = ("o" if set(blk) & set("ab") else side_p) if self.per_row else ""
            ops.append(row + group[blk[0]])
            keys.append(len(blk) - 2)
        full = "o" + sub["a"] + side_p + sub["d"]
        out = "".join(dict.fromkeys(full))  # a letter shared by two output axes: their diagonal
        return ",".join(ops) + "->" + out, keys, full + "->" + out

    def _apply(self, X, form, within_only):
        r""":math:`\mathcal T(X)`: ``form="sample"`` one sample and one mask (mean over samples),
        ``"mean"`` the sample means on both sides; masks shared by both sides unless
        ``within_only``.  ``X`` is (n_out, Ga, b, n_out, Ga, b)."""
        out = np.zeros_like(X)
        arrays = {"F": self.F, "S": self.S, "X": X}
        for part in _terms(within_only):
            subs, keys, view = self._einsum(part, form)
            ops = [arrays[k] if isinstance(k, str) else self.kappa[k] for k in keys]
            shapes = tuple(o.shape for o in ops)
            plan = _PLANS.get((subs, shapes))
            if plan is None:
                plan = np.einsum_path(subs, *ops, optimize=("greedy", _MEMORY))[0]
                _PLANS[(subs, shapes)] = plan
            val = np.einsum(subs, *ops, optimize=plan)
            if form == "sample":
                val = val / self.N
            target = np.einsum(view, out)  # a writable view of the axes' diagonal
            target += val
        return out

    def Q(self, X, batch):
        r""":math:`E[\hat W_I X \hat W_I^\top]` for a batch of ``batch`` samples drawn with
        replacement (``None``: the full data set, each sample once)."""
        shared = not self.per_sample
        if batch is None:
            if shared:
                return self._apply(X, "mean", False)
            return (self._apply(X, "mean", True) + (self._apply(X, "sample", False)
                                                   - self._apply(X, "sample", True)) / self.N)
        two = self._apply(X, "mean", not shared)
        if batch == 1:
            return self._apply(X, "sample", False)
        return self._apply(X, "sample", False) / batch + (1 - 1 / batch) * two

    # ----------------------------------------------------------------- pieces of the recursion
    def pad(self, P):
        """Real (n_out d)^2 covariance to the augmented layout (zeros on the target groups)."""
        n, G, b = self.n_out, self.G, self.b
        X = np.zeros((n, self.Ga, b, n, self.Ga, b))
        X[:, :G, :, :, :G, :] = P.reshape(n, G, b, n, G, b)
        return X

    def real(self, X):
        n, G, b = self.n_out, self.G, self.b
        return np.ascontiguousarray(X[:, :G, :, :, :G, :]).reshape(n * G * b, n * G * b)

    def augmented_mean(self, m):
        n, G, b = self.n_out, self.G, self.b
        mt = np.zeros((n, self.Ga, b))
        mt[:, :G, :] = m.reshape(n, G, b)
        mt[np.arange(n), G + np.arange(n), 0] = -1.0
        return mt

    def W(self):
        """The mean linear map on real coordinates, (n_out d) x (n_out d), block diagonal."""
        n, G, b = self.n_out, self.G, self.b
        blocks = self.Wbar[:, :G, :, :G, :].reshape(n, G * b, G * b)
        W = np.zeros((n, G * b, n, G * b))
        W[np.arange(n), :, np.arange(n), :] = blocks
        return W.reshape(n * G * b, n * G * b)

    def mean_gradient(self, m):
        r""":math:`E \hat G(m)`, flat."""
        mt = self.augmented_mean(m)
        g = np.einsum("ogrhs,ohs->ogr", self.Wbar, mt)
        return g[:, :self.G].reshape(-1)

    def gradient_covariance(self, m, batch):
        r""":math:`\mathrm{Cov}\,\hat G_I(m)`, flat."""
        mt = self.augmented_mean(m)
        second = self.real(self.Q(np.einsum("ogr,phs->ogrphs", mt, mt), batch))
        g = self.mean_gradient(m)
        return second - np.outer(g, g)

    def noise_map(self, P, batch):
        r""":math:`\mathcal Q(P)` on real coordinates."""
        return self.real(self.Q(self.pad(P), batch))


@dataclass(eq=False)
class IterateMoments(ResultDisplay):
    r"""Exact mean and covariance of the last layer's SGD iterates (:func:`iterate_moments`).

    Attributes
    ----------
    mean : ndarray (steps + 1, n_out, width)
        :math:`E U_t`.
    covariance : ndarray (steps + 1, n_out * width, n_out * width)
        :math:`\mathrm{Cov}\,\mathrm{vec}(U_t)` (C order: entry :math:`(o, j)` at :math:`o\,d + j`).
    lr, steps, batch_size, per_sample, strategy
        The settings (``batch_size=None``: full batch).
    """

    mean: np.ndarray
    covariance: np.ndarray
    lr: float
    steps: int
    batch_size: int | None
    per_sample: bool
    strategy: object = field(repr=False)

    def _display_items(self):
        return [("strategy", repr(self.strategy)), ("lr", self.lr), ("steps", self.steps),
                ("batch_size", self.batch_size), ("per_sample", self.per_sample), ("mean", self.mean),
                ("covariance", self.covariance), ("final_spread", self.spread[-1])]

    @property
    def spread(self) -> np.ndarray:
        r""":math:`\mathrm{tr}\,\mathrm{Cov}\,\mathrm{vec}(U_t)` for every step."""
        return np.trace(self.covariance, axis1=1, axis2=2)


@dataclass(eq=False)
class StationaryMoments(ResultDisplay):
    r"""Stationary law of the last layer's SGD iterates (:func:`stationary_moments`).

    Attributes
    ----------
    mean : ndarray (n_out, width)
        The stationary mean, the minimizer over ``U`` of the expected loss.
    covariance : ndarray (n_out * width, n_out * width)
        The stationary covariance :math:`P` of :math:`\mathrm{vec}(U)`.
    averaged_covariance : ndarray (n_out * width, n_out * width)
        :math:`\Sigma = \sum_{h \in \mathbb Z} \mathrm{Cov}(u_0, u_h)`, the covariance of
        :math:`\sqrt K (\bar u_K - m)` for the average of :math:`K` iterates as :math:`K \to \infty`.
    lr, max_stable_lr : float
        The step and the largest step at which the second moments stay bounded.
    batch_size, per_sample, strategy
    """

    mean: np.ndarray
    covariance: np.ndarray
    averaged_covariance: np.ndarray
    lr: float
    max_stable_lr: float
    batch_size: int | None
    per_sample: bool
    strategy: object = field(repr=False)

    def _display_items(self):
        return [("strategy", repr(self.strategy)), ("lr", self.lr), ("max_stable_lr", self.max_stable_lr),
                ("batch_size", self.batch_size), ("per_sample", self.per_sample), ("mean", self.mean),
                ("spread", self.spread), ("averaged_spread", float(np.trace(self.averaged_covariance)))]

    @property
    def spread(self) -> float:
        r""":math:`\mathrm{tr}\, P`."""
        return float(np.trace(self.covariance))

    def intervals(self, average, K, level=0.95):
        r"""Confidence intervals for the stationary mean from the average of ``K`` iterates:
        :math:`\bar u \pm z\,\sqrt{\Sigma_{ii} / K}`, ``average`` of shape (..., n_out, width) (several
        runs at once); returns ``(low, high)`` of its shape."""
        z = NormalDist().inv_cdf(0.5 + check_real("level", level, "a level in (0, 1)", 0, 1, True, True) / 2)
        half = z * np.sqrt(np.diag(self.averaged_covariance) / check_positive_int("K", K)).reshape(self.mean.shape)
        average = np.asarray(average, dtype=float)
        if average.shape[-2:] != self.mean.shape:
            raise invalid("average", f"an array of shape (..., n_out, width) with (n_out, width) = {self.mean.shape}",
                          average.shape)
        return average - half, average + half


# ============================================================================ building the problem

def _problem(strategy, X, Y, V, batch_size, U0=None):
    validate_strategy(strategy)
    arrays = as_numpy_arrays(X=X, Y=Y) if V is None else as_numpy_arrays(X=X, Y=Y, V=V)
    X, Y = np.asarray(arrays["X"], float), np.asarray(arrays["Y"], float)
    check_data(X, Y, None, None if V is None else arrays["V"])
    if V is None:
        H = X
    else:
        V = np.asarray(arrays["V"], float)
        if V.ndim != 2:
            raise invalid("V", "a matrix (n_in, width) or None", V)
        H = V.T @ X
    n_out, d = Y.shape[0], H.shape[0]
    if V is not None:
        strategy.check_width(d)
    if U0 is not None and U0.shape != (n_out, d):
        raise invalid("U0", f"an array of shape (n_out, width) = {(n_out, d)} (width: V.shape[1], or X's rows "
                      "where V is None)", U0.shape)
    scale = _Scale(H, Y)
    if U0 is not None:
        scale.start(U0)
    H, Y = H / scale.features, Y / scale.targets
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size)
    law = strategy.law(X.shape[0], d, n_out)
    comps = law.components
    if "input" in comps:
        raise InvalidParameterError(
            f"strategy must mask the hidden units or the weights of U only (the features V^T x must be "
            f"fixed for the step to be affine in U); got {strategy!r}, which masks the weights of V")
    if not comps:
        raise InvalidParameterError(f"strategy must mask the hidden units or the weights of U; got {strategy!r}")
    if len(comps) > 1:
        raise InvalidParameterError(
            f"strategy must mask either the hidden units or the weights of U, not both; got {strategy!r}")
    (name, comp), = comps.items()
    law.check_order(4, "the moments of the SGD iterates")
    if name == "hidden":
        cov = comp.hidden_covariance()
        if cov.kind == "diagonal":
            block = 1
        elif cov.kind == "block":
            block = cov.block_size
        else:
            raise InvalidParameterError(
                f"strategy must share hidden draws within contiguous blocks of equal size for the moments of "
                f"the SGD iterates; got {strategy!r}")
        reps = [[g * block] for g in range(d // block)]
    else:
        comp.entry_variances()  # refuses entries that share a variable
        block = 1
        reps = [[e] for e in range(n_out * d)]
    raw = np.array([[float(comp.moment(r * k)) for r in reps] for k in (1, 2, 3, 4)])
    if not np.allclose(raw[0], 1.0, rtol=1e-12, atol=1e-12):
        raise InvalidParameterError(f"strategy must have masks of mean 1; got means {raw[0][:4]} for {strategy!r}")
    m2, m3, m4 = raw[1:]
    k2 = m2 - 1
    k3 = m3 - 3 * m2 + 2
    k4 = (m4 - 4 * m3 + 6 * m2 - 3) - 3 * k2 ** 2
    kappa = np.stack([k2, k3, k4])
    kappa = kappa.reshape(3, n_out, d) if name == "output" else kappa.reshape(3, 1, d // block)
    return _Moments(H, Y, kappa, block, name == "output", law.per_sample), batch_size, n_out, d, scale


class _Scale:
    r"""The problem in units where the features :math:`H = V^	op X` and the targets :math:`Y`
    have largest entry 1, so that no scale of the data overflows or underflows inside.

    With :math:`H = c H'` and :math:`Y = b Y'`, the iterates are :math:`U = (b / c)\, U'` for the
    step :math:`\eta' = c^2 \eta`: means scale by :math:`b / c`, covariances by
    :math:`(b / c)^2`, steps by :math:`1 / c^2`.
    """

    def __init__(self, H, Y):
        self.features = np.float64(np.abs(H).max(initial=0.0) or 1.0)
        self.targets = np.float64(np.abs(Y).max(initial=0.0) or 1.0)
        self.names = "X, Y (and V)"  # the arrays that set the units
        self._units()

    def _units(self):
        with np.errstate(over="ignore", under="ignore"):
            self.u = self.targets / self.features  # U = u U'
            self.lr = self.features ** 2  # lr' = lr * c^2

    def start(self, U0):
        """``U0`` in the problem's units, the targets' scale raised to that of the start's predictions
        where they are larger (so that a large start overflows no more than the targets would)."""
        with np.errstate(over="ignore", under="ignore"):
            predictions = np.float64(np.abs(U0).max(initial=0.0)) * self.features
        if np.isfinite(predictions) and predictions > self.targets:
            self.targets, self.names = predictions, "X, Y (and V) with U0"
            self._units()
        with np.errstate(over="ignore", under="ignore"):
            return U0 / self.u

    def step(self, lr):
        """The step in the problem's units (inf where it overflows, beyond every stable step),
        refused where it underflows to 0."""
        with np.errstate(over="ignore", under="ignore"):
            scaled = lr * self.lr
        if scaled == 0.0:
            raise invalid("lr", f"a step whose product with the features' squared scale ({self.features:.3g}^2, "
                          "the largest entry of V^T X, or X) is not 0 in floating point", lr)
        return np.float64(scaled)  # numpy arithmetic: a power that overflows is inf, not an error

    def back(self, name, values, power):
        """``values`` (in the problem's units) times ``u**power``, refused naming the data if they overflow."""
        with np.errstate(over="ignore", under="ignore"):
            out = values * self.u ** power
        if not np.all(np.isfinite(out)):
            raise InvalidParameterError(
                f"{self.names} must have scales whose {name} is representable; the features' largest entry is "
                f"{self.features:.3g} and the targets' (or the start's predictions') {self.targets:.3g}, which put "
                "it beyond the float range")
        return out


def _check_lr(lr):
    return check_real("lr", lr, "a positive finite real number", low=0.0, low_open=True)


# ================================================================================== public API

def iterate_moments(strategy, X, Y, U0, lr, steps, *, V=None, batch_size=None) -> IterateMoments:
    r"""Exact mean and covariance of :math:`\mathrm{vec}(U_t)` over ``steps`` SGD steps on ``U``.

    .. math::

        m_{t+1} = m_t - 2\eta(\bar W m_t - \bar\beta), \qquad
        P_{t+1} = (I - 2\eta\bar W) P_t (I - 2\eta\bar W) + 4\eta^2 \big(\mathcal Q(P_t) - \bar W P_t \bar W\big)
                  + 4\eta^2\,\mathrm{Cov}\,\hat G_I(m_t)

    (theory page, equation :eq:`iterate-moments`: :math:`\bar W = E\,\hat W_I` and
    :math:`\bar\beta` the expected linear and constant parts of the step,
    :math:`\mathcal Q(P) = E[\hat W_I P \hat W_I^\top]`), from :math:`m_0 = \mathrm{vec}(U_0)`, :math:`P_0 = 0`.

    Parameters
    ----------
    strategy : Strategy
        Masks on the hidden units or on the weights of ``U`` (per sample or per batch, as the
        strategy draws them), with moments fixed up to order 4.
    X, Y : arrays (n_in, N), (n_out, N)
    U0 : array (n_out, width)
    lr : float
        The step :math:`\eta` of ``U <- U - lr * grad``.
    steps : int
    V : array (n_in, width), optional, keyword-only
        Fixed first layer (``None``: the linear model, width ``n_in``).
    batch_size : int, optional, keyword-only
        ``None``: full-batch gradient descent (a per-batch mask is one draw per step); an
        integer ``B``: ``B`` samples drawn uniformly with replacement each step.

    Returns
    -------
    IterateMoments

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    >>> moments = pt.iterate_moments(pt.Dropout(0.5), X, Y, np.zeros((2, 2)), 0.05, 400)
    >>> moments.mean.shape, moments.covariance.shape
    ((401, 2, 2), (401, 4, 4))

    From :math:`U_0 = 0` the first step's mean is :math:`-\eta` times the mean gradient
    :math:`-2 Y X^\top / N`, and after many steps the moments reach the stationary ones:

    >>> bool(np.allclose(moments.mean[1], 2 * 0.05 * Y @ X.T / 4))
    True
    >>> stationary = pt.stationary_moments(pt.Dropout(0.5), X, Y, 0.05)
    >>> bool(np.allclose(moments.mean[-1], stationary.mean, atol=1e-3))
    True
    >>> bool(np.allclose(moments.covariance[-1], stationary.covariance, atol=1e-5))
    True
    """
    lr = _check_lr(lr)
    steps = check_count("steps", steps)
    U0 = np.asarray(as_numpy_arrays(U0=U0)["U0"], float)
    mom, batch, n_out, d, scale = _problem(strategy, X, Y, V, batch_size, U0)
    n = n_out * d
    check_memory(f"steps={steps}, n_out={n_out}, width={d}", 2 * (steps + 1) * (n * n + n), "iterates' moments")
    eta = scale.step(lr)
    W = mom.W()
    means = np.empty((steps + 1, n))
    covs = np.empty((steps + 1, n, n))
    means[0], covs[0] = scale.start(U0).reshape(-1), 0.0
    A = np.eye(n) - 2 * eta * W
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            m, P = means[t], covs[t]
            noise = mom.noise_map(P, batch) - W @ P @ W if t else 0.0
            P_next = A @ P @ A + 4 * eta ** 2 * (noise + mom.gradient_covariance(m, batch))
            covs[t + 1] = (P_next + P_next.T) / 2
            means[t + 1] = m - 2 * eta * mom.mean_gradient(m)
            if not (np.all(np.isfinite(means[t + 1])) and np.all(np.isfinite(covs[t + 1]))):
                raise invalid("lr", f"a step at which the iterates' moments stay finite float numbers for "
                              f"steps={steps} with these X, Y (and V); they overflow at step {t + 1}", lr)
    return IterateMoments(mean=scale.back("mean", means, 1).reshape(steps + 1, n_out, d),
                          covariance=scale.back("covariance", covs, 2), lr=lr, steps=steps,
                          batch_size=batch, per_sample=mom.per_sample, strategy=strategy)


def _max_stable_lr(mom, batch, w, Q):
    r""":math:`1 / \rho(\mathcal D^{-1} \mathcal Q)`, :math:`\mathcal D(P) = \bar W P + P \bar W` (times 2).

    The map is positive (it sends positive semidefinite matrices to positive semidefinite ones),
    so its spectral radius is an eigenvalue with a positive semidefinite eigenvector (Perron and
    Frobenius, Krein and Rutman): the Arnoldi iteration of ARPACK on the map of the
    :math:`n \times n` matrices, started from the identity, finds it in a few tens of
    applications, where the power iteration converges only at the ratio of the two largest
    eigenvalues.
    """
    n = Q.shape[0]
    denom = w[:, None] + w[None, :]

    def op(p):
        P = p.reshape(n, n)
        P = (P + P.T) / 2  # the map on symmetric matrices, where the Perron vector lies
        R = Q.T @ (mom.noise_map(P, batch) * 2.0) @ Q
        return (Q @ (R / denom) @ Q.T).reshape(-1)

    v0 = np.eye(n).reshape(-1)
    if n == 1:  # ARPACK needs a space of dimension 3 at least
        M = np.stack([op(e) for e in np.eye(n * n)], axis=1)
        return 1.0 / float(np.max(np.abs(np.linalg.eigvals(M))))
    lin = spla.LinearOperator((n * n, n * n), matvec=op, dtype=float)
    vals = spla.eigs(lin, k=1, which="LM", v0=v0, tol=1e-13, ncv=min(n * n - 1, 20), maxiter=10_000,
                     return_eigenvectors=False)
    return 1.0 / float(np.abs(vals[0]))


def stationary_moments(strategy, X, Y, lr, *, V=None, batch_size=None) -> StationaryMoments:
    r"""Stationary mean, covariance and averaged covariance of the last layer's SGD iterates.

    .. math::

        \bar W m = \bar\beta, \qquad
        P = (I - 2\eta\bar W) P (I - 2\eta\bar W) + 4\eta^2\big(\mathcal Q(P) - \bar W P \bar W\big)
            + 4\eta^2\,\mathrm{Cov}\,\hat G_I(m), \qquad
        \Sigma = (2\eta\bar W)^{-1} P + P (2\eta\bar W)^{-1} - P

    (theory page, :ref:`theory-iterates`): :math:`m` is the minimizer over ``U`` of the expected loss whatever
    :math:`\eta`; :math:`\Sigma` is the sum of all autocovariances, the covariance of
    :math:`\sqrt K` times the deviation of the average of :math:`K` iterates.  Arguments as
    :func:`iterate_moments`; a step at which the second moments diverge,
    :math:`\eta \ge 1/\rho(\mathcal D^{-1}\mathcal Q)`, is refused, naming the largest stable step.

    Returns
    -------
    StationaryMoments

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    >>> moments = pt.stationary_moments(pt.Dropout(0.5), X, Y, 0.05)
    >>> bool(0.05 < moments.max_stable_lr), moments.covariance.shape
    (True, (4, 4))

    The mean is the minimizer of the expected loss with input dropout,
    :math:`Y X^\top / N \, (S + \lambda\, \mathrm{diag}\, S)^{-1}` with :math:`\lambda = 1`:

    >>> S = X @ X.T / 4
    >>> bool(np.allclose(moments.mean, Y @ X.T / 4 @ np.linalg.inv(S + np.diag(np.diag(S)))))
    True
    """
    mom, batch, n_out, d, scale = _problem(strategy, X, Y, V, batch_size)
    lr = _check_lr(lr)
    n = n_out * d
    check_memory(f"n_out={n_out}, width={d}", 8 * n * n, "stationary moments")
    eta = scale.step(lr)
    W = mom.W()
    w, Q = np.linalg.eigh(W)
    if w[0] <= 1e-12 * max(w[-1], 1e-300):
        raise InvalidParameterError(
            f"X (with V) must give masked features of full rank for a unique stationary law; the mean "
            f"step's smallest eigenvalue is {w[0] * scale.lr:.3g} (largest {w[-1] * scale.lr:.3g})")
    eta_max = _max_stable_lr(mom, batch, w, Q)
    with np.errstate(under="ignore", divide="ignore"):
        lr_max = float(eta_max / scale.lr)
    if eta >= eta_max:
        raise InvalidParameterError(
            f"lr must be below {lr_max:.6g}, the largest step at which the second moments of the iterates stay "
            f"bounded for these X, Y (and V); got {lr!r}")
    m = np.linalg.solve(W, (mom.beta.reshape(-1)))
    Sg = 4 * eta ** 2 * mom.gradient_covariance(m, batch)
    # 1 - a_i a_j for a = 1 - 2 eta w, written so that a small step loses no digits
    stein = 1.0 / (2 * eta * (w[:, None] + w[None, :]) - 4 * eta ** 2 * np.outer(w, w))

    def stein_solve(R):
        return Q @ ((Q.T @ R @ Q) * stein) @ Q.T

    def op(p):
        P = p.reshape(n, n)
        R = 4 * eta ** 2 * (mom.noise_map(P, batch) - W @ P @ W)
        return (P - stein_solve(R)).reshape(-1)

    rhs = stein_solve(Sg).reshape(-1)
    lin = spla.LinearOperator((n * n, n * n), matvec=op, dtype=float)
    p, info = spla.gmres(lin, rhs, x0=rhs, rtol=1e-13, atol=0.0, restart=min(60, n * n), maxiter=200)
    if info != 0:
        raise InvalidParameterError(
            f"lr = {lr!r} is too close to the largest stable step {lr_max:.6g}: the stationary covariance did "
            f"not converge")
    P = p.reshape(n, n)
    P = (P + P.T) / 2
    Winv = np.linalg.inv(W) / (2 * eta)
    Sigma = Winv @ P + P @ Winv - P
    return StationaryMoments(mean=scale.back("mean", m, 1).reshape(n_out, d), covariance=scale.back("covariance", P, 2),
                             averaged_covariance=scale.back("averaged covariance", (Sigma + Sigma.T) / 2, 2),
                             lr=lr, max_stable_lr=lr_max, batch_size=batch, per_sample=mom.per_sample,
                             strategy=strategy)
