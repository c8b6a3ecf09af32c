r"""Scalar laws: the law of one mask variable :math:`m`, always of mean 1.

A scalar law answers its raw moments :math:`E[m^k]` (numeric, and symbolic for derivations), a
finite support matching those moments up to a requested order, and how to sample it with torch.
Built in: :class:`Bernoulli` (values 0 and :math:`1/(1-p)`), :class:`Gaussian`
(:math:`N(1, p/(1-p))`), :class:`DiscreteLaw` (any finite support of mean 1) and :class:`Uniform`
(mean 1).  A user's law is a subclass of :class:`ScalarLaw` that supplies
:meth:`ScalarLaw.moment` and :meth:`ScalarLaw.sample`.

Why supports up to an order suffice: the loss is a polynomial of degree at most 2 in every
mask variable, and a gradient covariance of degree at most 4; an expectation of such a
polynomial depends on each independent variable only through its moments up to that degree.
A law with the same moments up to that order therefore gives the same expectation, to
rounding.  A finite law's own support is exact for every order.
"""

from __future__ import annotations

import abc
import functools
import math
import time
import warnings
import weakref
from collections.abc import Mapping, Sequence

import numpy as np
import sympy
import torch

from .._validation import InvalidParameterError, as_real_array, check_probability, check_real, invalid, user_stacklevel
from ._sampling import sample_mask

#: relative tolerance of "mean 1" and "probabilities sum to 1" for user-given finite laws
LAW_RTOL = 1e-9


class ScalarLaw(abc.ABC):
    r"""Law of one mask variable :math:`m` of mean 1.

    Subclass it with :meth:`moment` (the raw moment :math:`E[m^k]`, a float) and
    :meth:`sample` (torch), and the law works on every route.  Optional: :meth:`symbolic_moment`
    (a sympy expression in the law's parameter, for derivations that keep the rate as a symbol;
    the default is the numeric moment as an exact number), :attr:`finite` and :meth:`support`
    (the default matches the moments up to the requested order with a Gauss quadrature).

    Laws are immutable and compare equal when their parameters are equal.  Being immutable, a
    law's :meth:`moment` is computed once per law object and order: every subclass's
    ``moment`` is cached (a user's too), and :func:`moment_calls` counts the evaluations, so
    that an expensive law costs one call per order however many routes ask.

    Examples
    --------
    A law of one's own needs only its moments and a sampler; every route then takes it:

    >>> import torch
    >>> import pnd_theory as pt
    >>> class TwoPoint(pt.ScalarLaw):
    ...     # 0.5 or 1.5 with equal probability
    ...     def moment(self, k):
    ...         return (0.5**k + 1.5**k) / 2
    ...     def sample(self, shape, generator=None, device=None, dtype=None):
    ...         coin = torch.rand(shape, generator=generator, device=device, dtype=dtype) < 0.5
    ...         return 0.5 + coin.to(dtype or torch.get_default_dtype())
    >>> law = TwoPoint()
    >>> law.variance
    0.25
    >>> U, V, X, Y = pt.random_problem(seed=0)
    >>> bool(abs(pt.exact_expected_loss(pt.UnitNoise(law), U, V, X, Y)
    ...          - pt.expected_loss(pt.UnitNoise(law), U, V, X, Y)) < 1e-9)
    True
    """

    #: name of the law's parameter kept as a symbol in derivations (None: no parameter)
    parameter_name: str | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("moment")
        if callable(own) and not getattr(own, "__isabstractmethod__", False) and not hasattr(own, "_cached_moment"):
            cls.moment = _cached_moment(own)

    # ---- what a subclass must supply
    @abc.abstractmethod
    def moment(self, k: int) -> float:
        r"""Raw moment :math:`E[m^k]` (``k >= 0``; ``E[m^0] = 1``, ``E[m] = 1``)."""

    @abc.abstractmethod
    def sample(self, shape, generator=None, device=None, dtype=None) -> torch.Tensor:
        """Independent draws of the law, a tensor of the given shape."""

    # ---- derived
    @property
    def parameter(self):
        """Value of the parameter named :attr:`parameter_name` (None when there is none)."""
        return None if self.parameter_name is None else getattr(self, self.parameter_name)

    @property
    def variance(self) -> float:
        r""":math:`\mathrm{Var}[m] = E[m^2] - 1`: the noise strength :math:`\lambda` of the law."""
        return float(self.moment(2)) - 1.0

    @property
    def finite(self) -> bool:
        """True when :meth:`support` is the law itself (exact for every moment order)."""
        return False

    def symbolic_moment(self, k: int, symbol=None):
        """:math:`E[m^k]` as a sympy expression; ``symbol`` stands for the law's parameter."""
        return _exact_number(self.moment(k))

    def support(self, order: int):
        r"""``(values, probs)``: a finite law with the same moments as this one up to ``order``.

        The default is the Gauss quadrature of the law: :math:`n = \lfloor order/2 \rfloor + 1`
        points matching the moments up to :math:`2n - 1 \ge` ``order``, computed from the
        moments (Golub and Welsch).  A finite law returns its own support.
        """
        order = _check_order(order)
        return moment_matched_support([float(self.moment(k)) for k in range(2 * (order // 2 + 1))],
                                      order // 2 + 1)

    @classmethod
    def sample_many(cls, laws, lead, generator=None, device=None, dtype=None) -> torch.Tensor:
        """Draws of shape ``lead + (len(laws),)``: variable ``i`` follows ``laws[i]`` (all of
        this class).  The default samples each distinct law apart; a class with a vectorized
        parameter overrides it."""
        dtype = dtype or torch.float64
        out = torch.empty(tuple(lead) + (len(laws),), device=device, dtype=dtype)
        for law, idx in _distinct(laws).items():
            out[..., idx] = law.sample(tuple(lead) + (len(idx),), generator, device, dtype)
        return out

    # ---- value semantics
    def __repr__(self):
        inner = ", ".join(f"{k}={v!r}" for k, v in sorted(vars(self).items()))
        return f"{type(self).__name__}({inner})"

    def _key(self):
        return tuple(sorted(vars(self).items()))

    def __eq__(self, other):
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self):
        return hash((type(self).__name__, self._key()))


#: law object's id -> (weak reference, {(function, k): value}); an entry leaves with its law
_MOMENTS: dict = {}
#: evaluations of laws' own moment functions: in total, and by law object's id
_CALLS = {"total": 0}


def _forget(key):
    def drop(_):
        _MOMENTS.pop(key, None)
        _CALLS.pop(key, None)
    return drop


def _cached_moment(function):
    """``function`` (a law class's own ``moment``) computed once per law object and order:
    a law is immutable, so its moments are too.  Keyed by the function as well, so that a
    subclass's ``moment`` that calls ``super().moment(k)`` gets each its own value."""

    @functools.wraps(function)
    def moment(self, k):
        key = id(self)
        entry = _MOMENTS.get(key)
        if entry is None or entry[0]() is not self:
            try:
                entry = (weakref.ref(self, _forget(key)), {})
            except TypeError:  # a law that cannot be referenced weakly: not cached
                return function(self, k)
            _MOMENTS[key] = entry
            _CALLS[key] = 0
        try:
            return entry[1][function, k]
        except KeyError:
            pass
        except TypeError:  # an order that is not hashable: the law's own answer, uncached
            return function(self, k)
        value = function(self, k)
        entry[1][function, k] = value
        _CALLS["total"] += 1
        _CALLS[key] = _CALLS.get(key, 0) + 1
        return value

    moment._cached_moment = True
    return moment


def moment_calls(law=None) -> int:
    """How many times laws' own ``moment`` functions were evaluated: for ``law`` (a law
    object), or for all laws together (``law=None``).  Each order is evaluated once per law
    object; the routes report the difference they made (``law_calls``)."""
    if law is None:
        return _CALLS["total"]
    entry = _MOMENTS.get(id(law))
    return _CALLS.get(id(law), 0) if entry is not None and entry[0]() is law else 0


def _check_order(order) -> int:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 0:
        raise invalid("order", "a non-negative integer moment order", order)
    return int(order)


def _exact_number(x):
    """A float as the simplest sympy number equal to it to rounding (0.25 -> 1/4)."""
    x = float(x)
    r = sympy.nsimplify(x, rational=True, tolerance=1e-15 * max(1.0, abs(x)))
    return r if abs(float(r) - x) <= 1e-15 * max(1.0, abs(x)) else sympy.Float(x)


def _distinct(laws):
    """Distinct laws -> the indices of the variables that follow each."""
    out = {}
    for i, law in enumerate(laws):
        out.setdefault(law, []).append(i)
    return out


def moment_matched_support(moments, n_points: int):
    r"""Gauss quadrature: ``n_points`` values and probabilities whose moments equal
    ``moments[0..2 n_points - 1]`` (``moments[k]`` :math:`= E[m^k]`).

    Golub-Welsch: the Cholesky factor of the Hankel matrix of moments gives the three-term
    recurrence of the orthogonal polynomials; the nodes are the eigenvalues of its Jacobi
    matrix and the weights the squared first components of the eigenvectors.  A law with fewer
    than ``n_points`` points of support returns its own support (fewer nodes).
    """
    m = np.asarray(moments, dtype=np.float64)
    n = int(n_points)
    Rn = None
    while n > 1:
        Hn = np.array([[m[i + j] for j in range(n)] for i in range(n)])
        try:
            Rn = np.linalg.cholesky(Hn).T
        except np.linalg.LinAlgError:
            Rn = None
        if Rn is not None and np.min(np.abs(np.diag(Rn))) > 1e-7 * np.sqrt(np.max(np.abs(np.diag(Hn)))):
            break
        n -= 1  # the law has fewer than n points of support: fewer nodes reproduce it
    if n <= 1:
        return np.array([m[1] / m[0]]), np.array([1.0])
    # the last column of the Cholesky factor of the (n+1) x (n+1) Hankel matrix (moments up to
    # 2n - 1 suffice: its corner entry, which would need moment 2n, is not used)
    last = np.linalg.solve(Rn.T, np.array([m[i + n] for i in range(n)]))
    R = np.hstack([Rn, last[:, None]])
    alpha = np.empty(n)
    beta = np.empty(n - 1)
    for j in range(n):
        prev = R[j - 1, j] / R[j - 1, j - 1] if j > 0 else 0.0
        alpha[j] = R[j, j + 1] / R[j, j] - prev
    for j in range(n - 1):
        beta[j] = R[j + 1, j + 1] / R[j, j]
    J = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    nodes, vecs = np.linalg.eigh(J)
    weights = m[0] * vecs[0] ** 2
    return nodes, weights / weights.sum()


class _RateLaw(ScalarLaw):
    """A law of one drop probability ``p`` that the one sampler draws (``stir`` of
    :func:`pnd_theory.laws._sampling.sample_mask`); immutable."""

    parameter_name = "p"
    stir = None

    def __init__(self, p=0.5):
        object.__setattr__(self, "p", check_probability("p", p))

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __repr__(self):
        return f"{type(self).__name__}(p={self.p!r})"

    def sample(self, shape, generator=None, device=None, dtype=None):
        return sample_mask(tuple(shape), self.p, self.stir, generator=generator, device=device,
                           dtype=dtype or torch.float64)

    @classmethod
    def sample_many(cls, laws, lead, generator=None, device=None, dtype=None):
        p = torch.tensor([law.p for law in laws], dtype=torch.float64, device=device)
        return sample_mask(tuple(lead) + (len(laws),), p, cls.stir, generator=generator, device=device,
                           dtype=dtype or torch.float64)


class Bernoulli(_RateLaw):
    r"""Inverted Bernoulli of drop probability ``p``: 0 with probability ``p``, :math:`1/(1-p)`
    with probability :math:`1 - p`.

    .. math:: E[m^k] = (1 - p)^{1 - k} \quad (k \ge 1), \qquad \mathrm{Var}[m] = p / (1 - p).

    Examples
    --------
    >>> import pnd_theory as pt
    >>> law = pt.Bernoulli(0.25)
    >>> law.support()  # values 0 and 1 / (1 - p), probabilities p and 1 - p
    (array([0.        , 1.33333333]), array([0.25, 0.75]))
    >>> law.moment(1), round(law.variance, 6)  # mean 1, variance p / (1 - p)
    (1.0, 0.333333)
    """

    stir = "drop"

    @property
    def finite(self):
        return True

    def moment(self, k):
        return 1.0 if k == 0 else (1.0 - self.p) ** (1 - k)

    def symbolic_moment(self, k, symbol=None):
        p = _exact_number(self.p) if symbol is None else symbol
        return sympy.Integer(1) if k == 0 else (1 - p) ** (1 - k)

    def support(self, order=None):
        return np.array([0.0, 1.0 / (1.0 - self.p)]), np.array([self.p, 1.0 - self.p])


def _double_factorial(n: int) -> int:
    return math.prod(range(n, 0, -2)) if n > 0 else 1


class Gaussian(_RateLaw):
    r"""Gaussian :math:`N(1, \lambda)`, :math:`\lambda = p / (1 - p)`: the variance of a
    Bernoulli of drop probability ``p``.

    .. math:: E[m^k] = \sum_{i\ \mathrm{even}} \binom{k}{i} \lambda^{i/2} (i - 1)!!

    Examples
    --------
    >>> import pnd_theory as pt
    >>> law = pt.Gaussian(0.5)  # N(1, p / (1 - p))
    >>> law.moment(1), law.variance, law.moment(4)
    (1.0, 1.0, 10.0)

    Two Gauss-Hermite points match its moments up to order 3:

    >>> law.support(2)
    (array([0., 2.]), array([0.5, 0.5]))
    """

    stir = "gaussian"

    @staticmethod
    def _moment(lam, k):
        return sum(math.comb(k, i) * lam ** (i // 2) * _double_factorial(i - 1) for i in range(0, k + 1, 2))

    def moment(self, k):
        return float(self._moment(self.p / (1.0 - self.p), k))

    def symbolic_moment(self, k, symbol=None):
        p = _exact_number(self.p) if symbol is None else symbol
        return sympy.sympify(self._moment(p / (1 - p), k))

    def support(self, order):
        r"""Gauss-Hermite nodes :math:`1 + \sqrt{\lambda}\, t_i`: exact moments up to order
        :math:`2n - 1`, :math:`n = \lfloor order/2 \rfloor + 1`."""
        n = _check_order(order) // 2 + 1
        if self.p == 0.0:
            return np.array([1.0]), np.array([1.0])  # no noise: one point
        t, w = np.polynomial.hermite_e.hermegauss(n)
        return 1.0 + math.sqrt(self.p / (1.0 - self.p)) * t, w / w.sum()


def _as_float_vector(name, values):
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Sequence, np.ndarray)) and not (
            torch.is_tensor(values)):
        raise invalid(name, "a sequence of finite real numbers", values)
    arr = np.array(as_real_array(name, values), dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise invalid(name, "a non-empty 1-D sequence of finite real numbers", values)
    return arr


class DiscreteLaw(ScalarLaw):
    r"""Any finite law of mean 1: value ``values[i]`` with probability ``probs[i]``.

    Checked: probabilities positive and summing to 1, values distinct, and
    :math:`\sum_i p_i v_i = 1` to rounding.  Its support is exact for every moment order.

    .. math:: E[m^k] = \sum_i p_i v_i^k

    Examples
    --------
    >>> import pnd_theory as pt
    >>> law = pt.DiscreteLaw([0.0, 2.0], [0.5, 0.5])  # Bernoulli(0.5) with inverted scaling
    >>> law.moment(2) == pt.Bernoulli(0.5).moment(2)
    True
    """

    def __init__(self, values, probs):
        v = _as_float_vector("values", values)
        q = _as_float_vector("probs", probs)
        if v.shape != q.shape:
            raise InvalidParameterError(
                f"values and probs must have the same length; got {v.size} values and {q.size} probs")
        if np.any(q <= 0):
            raise invalid("probs", "positive probabilities (drop a value of probability 0)", tuple(q))
        if abs(q.sum() - 1.0) > LAW_RTOL * q.size:
            raise invalid("probs", f"probabilities summing to 1 (the sum is {q.sum():.17g})", tuple(q))
        if len(set(v.tolist())) != v.size:
            raise invalid("values", "distinct values", tuple(v))
        mean = float(q @ v)
        if abs(mean - 1.0) > LAW_RTOL * max(1.0, float(np.abs(v).max())) * v.size:
            raise invalid("values", f"the support of a law of mean 1 (sum probs * values = {mean:.17g})", tuple(v))
        object.__setattr__(self, "values", tuple(float(x) for x in v))
        object.__setattr__(self, "probs", tuple(float(x) for x in q / q.sum()))

    def __setattr__(self, name, value):
        raise AttributeError("DiscreteLaw is immutable")

    def __repr__(self):
        return f"DiscreteLaw(values={list(self.values)}, probs={list(self.probs)})"

    @property
    def finite(self):
        return True

    def moment(self, k):
        return float(sum(q * v**k for v, q in zip(self.values, self.probs)))

    def symbolic_moment(self, k, symbol=None):
        return sympy.Add(*(_exact_number(q) * _exact_number(v) ** k for v, q in zip(self.values, self.probs)))

    def support(self, order=None):
        return np.array(self.values), np.array(self.probs)

    def sample(self, shape, generator=None, device=None, dtype=None):
        dtype = dtype or torch.float64
        u = torch.rand(tuple(shape), generator=generator, device=device, dtype=torch.float64)
        edges = torch.tensor(np.cumsum(self.probs)[:-1], dtype=torch.float64, device=u.device)
        idx = torch.bucketize(u, edges, right=True)
        return torch.tensor(self.values, dtype=dtype, device=u.device)[idx]


class Uniform(ScalarLaw):
    r"""Uniform on ``[low, high]`` with mean 1 (``low + high = 2``, checked to rounding).

    .. math:: E[m^k] = \frac{\text{high}^{k+1} - \text{low}^{k+1}}{(k + 1)(\text{high} - \text{low})},
        \qquad \mathrm{Var}[m] = (\text{high} - \text{low})^2 / 12.

    Examples
    --------
    >>> import pnd_theory as pt
    >>> law = pt.Uniform(0.5, 1.5)
    >>> law.moment(1), round(law.variance, 6)  # (b - a)**2 / 12
    (1.0, 0.083333)
    """

    def __init__(self, low=0.0, high=2.0):
        low = check_real("low", low)
        high = check_real("high", high)
        if not high > low:
            raise invalid("high", f"greater than low = {low!r}", high)
        if abs((low + high) / 2 - 1.0) > LAW_RTOL * max(1.0, abs(low), abs(high)):
            raise invalid("high", f"2 - low = {2 - low!r} so that the law has mean 1 (low={low!r})", high)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def __setattr__(self, name, value):
        raise AttributeError("Uniform is immutable")

    def __repr__(self):
        return f"Uniform(low={self.low!r}, high={self.high!r})"

    def moment(self, k):
        a, b = self.low, self.high
        return float((b ** (k + 1) - a ** (k + 1)) / ((k + 1) * (b - a)))

    def symbolic_moment(self, k, symbol=None):
        a, b = _exact_number(self.low), _exact_number(self.high)
        return sympy.nsimplify((b ** (k + 1) - a ** (k + 1)) / ((k + 1) * (b - a)))

    def support(self, order):
        """Gauss-Legendre nodes on ``[low, high]``: exact moments up to order ``2n - 1``."""
        n = _check_order(order) // 2 + 1
        t, w = np.polynomial.legendre.leggauss(n)
        return (self.low + self.high) / 2 + (self.high - self.low) / 2 * t, w / w.sum()

    def sample(self, shape, generator=None, device=None, dtype=None):
        dtype = dtype or torch.float64
        u = torch.rand(tuple(shape), generator=generator, device=device, dtype=torch.float64)
        return (self.low + (self.high - self.low) * u).to(dtype)


def check_scalar_law(name: str, law) -> ScalarLaw:
    """A scalar law; a user's law (a subclass) is checked once, where it enters: mean 1, a
    finite variance >= 0, and a sampler that draws finite real tensors of the shape asked for.
    Each refusal names the property; the built-in laws hold them by construction."""
    if not isinstance(law, ScalarLaw):
        raise invalid(name, "a scalar law (pt.Bernoulli(p), pt.Gaussian(p), pt.DiscreteLaw, pt.Uniform "
                      "or a subclass of pt.ScalarLaw)", law)
    if type(law) in _BUILT_IN or _checked(law):
        return law
    mean, second = _moment_value(name, law, 1), _moment_value(name, law, 2)
    if abs(mean - 1.0) > LAW_RTOL:
        raise invalid(name, f"a law of mean 1 (moment(1) = 1 to {LAW_RTOL:g})", f"{law!r} with moment(1) = {mean!r}")
    if second - 1.0 < -LAW_RTOL * max(1.0, abs(second)):
        raise invalid(name, "a law of variance >= 0 (moment(2) >= moment(1)^2 = 1)",
                      f"{law!r} with moment(2) = {second!r}, variance {second - 1.0:.6g}")
    try:
        draw = law.sample((2, 3), None, None, torch.float64)
    except Exception as error:  # a user's sampler: whatever it raises is reported as the law's fault
        raise invalid(name, "a law whose sample(shape, generator, device, dtype) draws a tensor",
                      f"{law!r}, whose sample((2, 3)) raised {type(error).__name__}: {error}") from None
    if not torch.is_tensor(draw) or tuple(draw.shape) != (2, 3) or draw.dtype != torch.float64 \
            or not bool(torch.isfinite(draw).all()):
        shown = (f"shape {tuple(draw.shape)}, dtype {draw.dtype}, finite {bool(torch.isfinite(draw).all())}"
                 if torch.is_tensor(draw) else type(draw).__name__)
        raise invalid(name, "a law whose sample(shape, ..., dtype) draws finite values of that shape and dtype",
                      f"{law!r}, whose sample((2, 3), dtype=torch.float64) gave {shown}")
    _CHECKED[id(law)] = law
    return law


#: seconds: a user's ``moment`` slower than this has the route say how many evaluations remain
SLOW_MOMENT_S = 0.5


def check_moments(law, order: int, route: str, name: str = "strategy"):
    """Evaluate a user's law's moments of orders 1 to ``order`` where ``route`` needs them, each
    once per law object (cached), refusing a non-finite or failing one by its order and the route.
    When an evaluation is slow (over :data:`SLOW_MOMENT_S` seconds) and more remain, a warning says
    how many evaluations the route will still make and about how long they take.  The built-in
    laws are exact by construction and are not evaluated here."""
    if type(law) in _BUILT_IN or not isinstance(law, ScalarLaw):
        return
    done = {k for _, k in _cached_orders(law)}
    pending = [k for k in range(1, order + 1) if k not in done]
    for i, k in enumerate(pending):
        start = time.perf_counter()
        _moment_value(name, law, k, f" (needed up to order {order} by {route})")
        spent, left = time.perf_counter() - start, pending[i + 1:]
        if i == 0 and left and spent > SLOW_MOMENT_S:
            warnings.warn(f"the moments of {law!r} up to order {order} are needed for {route}: moment({k}) took "
                          f"{spent:.2g} s, and {len(left)} more evaluation{'s follow' if len(left) > 1 else ' follows'} "
                          f"(orders {', '.join(map(str, left))}; about {spent * len(left):.2g} s), each made "
                          "once for this law object", RuntimeWarning, stacklevel=user_stacklevel())


def _cached_orders(law):
    """The (function, order) keys of the moments cached for this law object."""
    entry = _MOMENTS.get(id(law))
    return list(entry[1]) if entry is not None and entry[0]() is law else []


def _moment_value(name, law, k, needed="") -> float:
    try:
        value = law.moment(k)
        value = float(value)
    except Exception as error:  # a user's moment: whatever it raises is reported as the law's fault
        raise invalid(name, f"a law whose moment({k}) is a real number{needed}", f"{law!r}, whose moment({k}) raised "
                      f"{type(error).__name__}: {error}") from None
    if not math.isfinite(value):
        raise invalid(name, f"a law with a finite moment({k}){needed}", f"{law!r} with moment({k}) = {value!r}")
    return value


#: user laws already checked, by identity (kept alive with them: a law is small)
_CHECKED: dict = {}


def _checked(law) -> bool:
    return _CHECKED.get(id(law)) is law


_BUILT_IN = (Bernoulli, Gaussian, DiscreteLaw, Uniform)

__all__ = ["ScalarLaw", "Bernoulli", "Gaussian", "DiscreteLaw", "Uniform", "moment_matched_support",
           "check_scalar_law", "check_moments", "LAW_RTOL", "SLOW_MOMENT_S", "moment_calls"]
