r"""Mask laws: the ground floor that every route of the package reads.

Two levels:

* A **scalar law** (:class:`ScalarLaw`) is the law of one mask variable :math:`m`, always of
  mean 1 (inverted scaling, so that the mean network is :math:`U V^\top`).  It answers its raw
  moments :math:`E[m^k]` (numeric, and symbolic for derivations), a finite support matching
  those moments up to a requested order, and how to sample it with torch.  Built in:
  :class:`Bernoulli` (values 0 and :math:`1/(1-p)`), :class:`Gaussian`
  (:math:`N(1, p/(1-p))`), :class:`DiscreteLaw` (any finite support of mean 1) and
  :class:`Uniform` (mean 1).  A user's law is a subclass that supplies :meth:`ScalarLaw.moment`
  and :meth:`ScalarLaw.sample`; every route then works for it or refuses it by a property of
  the law (for example "this route needs moments up to order 4").
* A **component law** says how the entries of one mask component (the hidden units
  :math:`\xi`, the weights of ``U`` or the weights of ``V``) are made of scalar variables:
  :class:`IndependentMask` (each entry is a copy of one of a set of independent variables;
  entries that share a variable share a draw, as the units of a DropBlock block do) or
  :class:`CovarianceMask` (a hidden mask known by its covariance only).  A :class:`MaskLaw`
  gathers the components of a network of given sizes, and whether masks are drawn per sample
  or shared by a mini-batch.

The component protocol (:class:`ComponentLaw`) is the only thing a route may ask of a law:
shape and number of variables, the hidden covariance structure, entry variances, moments of
any order of a product of entries, the highest moment order the law fixes, supports, sampling,
and the scalar law behind each variable.

Why supports up to an order suffice: the loss is a polynomial of degree at most 2 in every
mask variable, and a gradient covariance of degree at most 4; an expectation of such a
polynomial depends on each independent variable only through its moments up to that degree.
A law with the same moments up to that order therefore gives the same expectation, to
rounding.  A finite law's own support is exact for every order.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy
import torch

from ._validation import InvalidParameterError, check_probability, check_real, invalid
from .sampling import sample_mask

COMPONENTS = ("hidden", "output", "input")

#: relative tolerance of "mean 1" and "probabilities sum to 1" for user-given finite laws
LAW_RTOL = 1e-9


# =========================================================================== scalar laws

class ScalarLaw(abc.ABC):
    r"""Law of one mask variable :math:`m` of mean 1.

    Subclass it with :meth:`moment` (the raw moment :math:`E[m^k]`, a float) and
    :meth:`sample` (torch), and the law works on every route.  Optional: :meth:`symbolic_moment`
    (a sympy expression in the law's parameter, for derivations that keep the rate as a symbol;
    the default is the numeric moment as an exact number), :attr:`finite` and :meth:`support`
    (the default matches the moments up to the requested order with a Gauss quadrature).

    Laws are immutable and compare equal when their parameters are equal.
    """

    #: name of the law's parameter kept as a symbol in derivations (None: no parameter)
    parameter_name: str | None = None

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
        return moment_matched_support([float(self.moment(k)) for k in range(2 * (order // 2 + 1) + 1)],
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
    def _key(self):
        return tuple(sorted(vars(self).items()))

    def __eq__(self, other):
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self):
        return hash((type(self).__name__, self._key()))


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
    ``moments[0..2 n_points - 1]`` (``moments[k]`` :math:`= E[m^k]`, at least
    :math:`2 n` of them plus one).

    Golub-Welsch: the Cholesky factor of the Hankel matrix of moments gives the three-term
    recurrence of the orthogonal polynomials; the nodes are the eigenvalues of its Jacobi
    matrix and the weights the squared first components of the eigenvectors.  A law with fewer
    points of support than ``n_points`` (a degenerate one) returns its own support.
    """
    m = np.asarray(moments, dtype=np.float64)
    n = int(n_points)
    while n > 1:
        H = np.array([[m[i + j] for j in range(n + 1)] for i in range(n + 1)])
        try:
            R = np.linalg.cholesky(H).T
            if np.min(np.abs(np.diag(R))) > 1e-7 * np.sqrt(np.max(np.abs(np.diag(H)))):
                break
        except np.linalg.LinAlgError:
            pass
        n -= 1  # the law has at most n points of support: fewer nodes reproduce it
    if n <= 1:
        return np.array([m[1] / m[0]]), np.array([1.0])
    H = np.array([[m[i + j] for j in range(n + 1)] for i in range(n + 1)])
    R = np.linalg.cholesky(H).T
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


def _rate_repr(self):
    return f"{type(self).__name__}(p={self.p!r})"


class Bernoulli(ScalarLaw):
    r"""Inverted Bernoulli of drop probability ``p``: 0 with probability ``p``, :math:`1/(1-p)`
    with probability :math:`1 - p`.

    .. math:: E[m^k] = (1 - p)^{1 - k} \quad (k \ge 1), \qquad \mathrm{Var}[m] = p / (1 - p).
    """

    parameter_name = "p"

    def __init__(self, p=0.5):
        object.__setattr__(self, "p", check_probability("p", p))

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    __repr__ = _rate_repr

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

    def sample(self, shape, generator=None, device=None, dtype=None):
        return sample_mask(tuple(shape), self.p, "drop", generator=generator, device=device,
                           dtype=dtype or torch.float64)

    @classmethod
    def sample_many(cls, laws, lead, generator=None, device=None, dtype=None):
        p = torch.tensor([law.p for law in laws], dtype=torch.float64, device=device)
        return sample_mask(tuple(lead) + (len(laws),), p, "drop", generator=generator, device=device,
                           dtype=dtype or torch.float64)


def _double_factorial(n: int) -> int:
    return math.prod(range(n, 0, -2)) if n > 0 else 1


class Gaussian(ScalarLaw):
    r"""Gaussian :math:`N(1, \lambda)`, :math:`\lambda = p / (1 - p)`: the variance of a
    Bernoulli of drop probability ``p``.

    .. math:: E[m^k] = \sum_{i\ \mathrm{even}} \binom{k}{i} \lambda^{i/2} (i - 1)!!
    """

    parameter_name = "p"

    def __init__(self, p=0.5):
        object.__setattr__(self, "p", check_probability("p", p))

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    __repr__ = _rate_repr

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

    def sample(self, shape, generator=None, device=None, dtype=None):
        return sample_mask(tuple(shape), self.p, "gaussian", generator=generator, device=device,
                           dtype=dtype or torch.float64)

    @classmethod
    def sample_many(cls, laws, lead, generator=None, device=None, dtype=None):
        p = torch.tensor([law.p for law in laws], dtype=torch.float64, device=device)
        return sample_mask(tuple(lead) + (len(laws),), p, "gaussian", generator=generator, device=device,
                           dtype=dtype or torch.float64)


def _as_float_vector(name, values):
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Sequence, np.ndarray)) and not (
            torch.is_tensor(values)):
        raise invalid(name, "a sequence of finite real numbers", values)
    try:
        arr = np.array(values.detach().cpu() if torch.is_tensor(values) else values, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid(name, "a sequence of finite real numbers", values) from None
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
        raise invalid(name, "a non-empty 1-D sequence of finite real numbers", values)
    return arr


class DiscreteLaw(ScalarLaw):
    r"""Any finite law of mean 1: value ``values[i]`` with probability ``probs[i]``.

    Checked: probabilities positive and summing to 1, values distinct, and
    :math:`\sum_i p_i v_i = 1` to rounding.  Its support is exact for every moment order.

    .. math:: E[m^k] = \sum_i p_i v_i^k
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
    if not isinstance(law, ScalarLaw):
        raise invalid(name, "a scalar law (pt.Bernoulli(p), pt.Gaussian(p), pt.DiscreteLaw, pt.Uniform "
                      "or a subclass of pt.ScalarLaw)", law)
    return law


# =========================================================================== component laws

@dataclass(frozen=True)
class HiddenCovariance:
    """Structure of the covariance of the hidden mask, so that no dense ``d x d`` matrix is
    formed when it is diagonal or block-diagonal.

    ``kind`` is ``"diagonal"`` (``values``: the ``d`` variances), ``"block"`` (``values``: one
    variance per block of ``block_size`` contiguous units, all entries of a block equal) or
    ``"dense"`` (``values``: the ``d x d`` matrix).
    """

    kind: str
    values: np.ndarray
    block_size: int = 1

    def diagonal(self) -> np.ndarray:
        if self.kind == "diagonal":
            return self.values
        if self.kind == "block":
            return np.repeat(self.values, self.block_size)
        return np.diag(self.values)


class ComponentLaw(abc.ABC):
    """The protocol every route asks of one mask component, and nothing else."""

    #: highest order of a product of entries whose moment the law fixes (None: every order)
    max_moment_order: int | None = None

    @property
    @abc.abstractmethod
    def shape(self) -> tuple:
        """Shape of the component: ``(d,)``, ``(n_out, d)`` or ``(n_in, d)``."""

    @property
    @abc.abstractmethod
    def n_variables(self) -> int:
        """Number of independent scalar variables behind the entries."""

    @abc.abstractmethod
    def hidden_covariance(self) -> HiddenCovariance:
        """Covariance of the entries (a hidden component), with its structure."""

    @abc.abstractmethod
    def entry_variances(self) -> np.ndarray:
        """Variance of every entry (component shape); entries must be independent."""

    @abc.abstractmethod
    def moment(self, entries: Sequence, symbol_of=None):
        r""":math:`E[\prod_e m_e]` over a multiset of flat entry indices; ``symbol_of(g)`` gives
        the sympy symbol of variable ``g``'s parameter (or None), for symbolic moments."""

    @abc.abstractmethod
    def support(self, order: int):
        """``(values, probs)``, lists with one array per variable, matching moments up to
        ``order``; the variables are independent."""

    @abc.abstractmethod
    def entries(self, z):
        """Entries (component shape as trailing axes) from variable values ``z`` (..., n_variables)."""

    @abc.abstractmethod
    def sample(self, lead, generator=None, device=None, dtype=None):
        """Draw masks of shape ``lead + shape``."""

    #: scalar law behind each variable (None when the component is not made of scalar laws)
    variable_laws: tuple | None = None

    def check_order(self, order: int, route: str):
        """Refuse, naming the route and the order, when the law does not fix moments up to ``order``."""
        if self.max_moment_order is not None and order > self.max_moment_order:
            raise InvalidParameterError(
                f"strategy must fix mask moments up to order {order} for {route}; this law "
                f"({self.description}) fixes them only up to order {self.max_moment_order}")

    @property
    def description(self) -> str:
        """A few words naming the law, for messages."""
        return type(self).__name__


@dataclass(frozen=True, eq=False)
class IndependentMask(ComponentLaw):
    """Mask entries that are copies of independent scalar variables.

    Entry ``e`` of the component equals variable ``groups[e]``; variable ``g`` follows
    ``laws[g]`` (a :class:`ScalarLaw`); ``symbols[g]`` names its parameter in symbolic
    derivations (two variables with different laws never share a name).
    """

    laws: tuple
    groups: np.ndarray
    symbols: tuple

    def __post_init__(self):
        for g, law in enumerate(self.laws):
            check_scalar_law(f"laws[{g}]", law)
        if len(self.symbols) != len(self.laws):
            raise InvalidParameterError(f"symbols must name every variable; got {len(self.symbols)} names "
                                        f"for {len(self.laws)} variables")
        for name in set(self.symbols):
            same = {self.laws[g] for g, s in enumerate(self.symbols) if s == name}
            if len(same) > 1 and name is not None:
                raise InvalidParameterError(f"symbols must differ for different laws; got {name!r} for {sorted(map(repr, same))}")

    @property
    def shape(self):
        return self.groups.shape

    @property
    def n_variables(self) -> int:
        return len(self.laws)

    @property
    def variable_laws(self):
        return self.laws

    @property
    def independent_entries(self) -> bool:
        return self.groups.size == self.n_variables and np.array_equal(
            self.groups.ravel(), np.arange(self.groups.size)
        )

    @property
    def single_law(self):
        """The one law of every variable, or None when the variables follow different laws."""
        first = self.laws[0]
        return first if all(law == first for law in self.laws) else None

    def variances(self) -> np.ndarray:
        """Variance of every variable."""
        cache = {law: law.variance for law in set(self.laws)}
        return np.array([cache[law] for law in self.laws], dtype=np.float64)

    def entry_variances(self) -> np.ndarray:
        if not self.independent_entries:
            raise InvalidParameterError(
                "entry variances describe the law only when every entry has its own variable")
        return self.variances()[self.groups]

    def hidden_covariance(self) -> HiddenCovariance:
        lam = self.variances()
        d = self.groups.size
        if self.independent_entries:
            return HiddenCovariance("diagonal", lam)
        n = self.n_variables
        if d % n == 0 and np.array_equal(self.groups, np.arange(d) // (d // n)):
            return HiddenCovariance("block", lam, block_size=d // n)
        same = self.groups[:, None] == self.groups[None, :]
        return HiddenCovariance("dense", np.where(same, lam[self.groups][:, None], 0.0))

    def moment(self, entries, symbol_of=None):
        counts = {}
        for e in entries:
            g = int(self.groups.flat[e])
            counts[g] = counts.get(g, 0) + 1
        result = 1
        for g, k in counts.items():
            law = self.laws[g]
            if symbol_of is None:
                result = result * law.moment(k)
            else:
                result = result * law.symbolic_moment(k, symbol_of(g))
        return result

    def support(self, order):
        cache = {law: law.support(order) for law in set(self.laws)}
        values = [np.asarray(cache[law][0], dtype=np.float64) for law in self.laws]
        probs = [np.asarray(cache[law][1], dtype=np.float64) for law in self.laws]
        return values, probs

    def entries(self, z):
        return z[..., self.groups]

    def sample(self, lead, generator=None, device=None, dtype=None):
        lead = tuple(lead)
        dtype = dtype or torch.float64
        single = self.single_law
        if single is not None and self.independent_entries:
            return single.sample(lead + self.shape, generator, device, dtype)
        if single is not None:
            z = single.sample(lead + (self.n_variables,), generator, device, dtype)
        else:
            by_class = {}
            for g, law in enumerate(self.laws):
                by_class.setdefault(type(law), []).append(g)
            if len(by_class) == 1:
                z = type(self.laws[0]).sample_many(self.laws, lead, generator, device, dtype)
            else:
                z = torch.empty(lead + (self.n_variables,), device=device, dtype=dtype)
                for cls, idx in by_class.items():
                    z[..., idx] = cls.sample_many([self.laws[g] for g in idx], lead, generator, device, dtype)
        if self.independent_entries:
            return z.reshape(lead + self.shape)
        return z[..., torch.as_tensor(self.groups, device=z.device)]


def independent_mask(laws, shape, symbols, groups=None) -> IndependentMask:
    """An :class:`IndependentMask` of the given shape.

    ``laws``/``symbols``: one law and one name for all entries (independent entries), or, with
    ``groups`` (entry -> variable), one per variable."""
    if groups is None:
        groups = np.arange(int(np.prod(shape))).reshape(shape)
        laws = (laws,) * groups.size
        symbols = (symbols,) * groups.size
    return IndependentMask(tuple(laws), np.asarray(groups), tuple(symbols))


@dataclass(frozen=True, eq=False)
class CovarianceMask(ComponentLaw):
    r"""Hidden mask :math:`\xi = 1 + L z` of mean 1 and covariance :math:`C = L L^\top`.

    Only the first two moments are part of the law: moments of order above 2 are refused.  For
    enumeration ``z`` is a vector of independent signs (mean 0, identity covariance), which
    gives every expectation of a polynomial of degree 2 in :math:`\xi` exactly; for sampling
    ``z`` is standard normal.
    """

    covariance: object  # numpy (d, d) or sympy Matrix
    max_moment_order = 2
    description = "a hidden mask known by its covariance only, as HiddenNoise gives"

    @property
    def symbolic(self) -> bool:
        return not isinstance(self.covariance, np.ndarray)

    @property
    def shape(self):
        return (self.covariance.shape[0],)

    def _numeric(self, what):
        if self.symbolic:
            raise InvalidParameterError(
                f"strategy must have a numeric covariance for {what}; this HiddenNoise has symbolic entries")
        return self.covariance

    @property
    def factor(self) -> np.ndarray:
        C = self._numeric("this computation")
        w, Q = np.linalg.eigh(C)
        keep = w > 1e-12 * max(1.0, float(np.abs(w).max(initial=0.0)))
        return Q[:, keep] * np.sqrt(w[keep])

    @property
    def n_variables(self) -> int:
        return self.factor.shape[1]

    def hidden_covariance(self) -> HiddenCovariance:
        return HiddenCovariance("dense", self._numeric("the numeric penalty"))

    def entry_variances(self):
        return np.diag(self._numeric("entry variances"))

    def moment(self, entries, symbol_of=None):
        entries = list(entries)
        if len(entries) <= 1:
            return 1
        if len(entries) == 2:
            return 1 + self.covariance[entries[0], entries[1]]
        self.check_order(len(entries), "this moment")

    def support(self, order):
        self.check_order(order, "a support")
        r = self.n_variables
        return [np.array([-1.0, 1.0])] * r, [np.array([0.5, 0.5])] * r

    def entries(self, z):
        L = self.factor
        if hasattr(z, "new_tensor"):
            L = z.new_tensor(L)
        return 1 + z @ L.T

    def sample(self, lead, generator=None, device=None, dtype=None):
        dtype = dtype or torch.float64
        L = torch.as_tensor(self.factor, device=device, dtype=dtype)
        z = torch.randn(tuple(lead) + (L.shape[1],), generator=generator, device=device, dtype=dtype)
        return 1 + z @ L.T


@dataclass(frozen=True, eq=False)
class MaskLaw:
    """The law of all masks of a network of given sizes.

    ``hidden``, ``output`` and ``input`` are component laws or ``None`` (identically 1).
    ``per_sample``: every sample draws its own masks (else one draw serves a mini-batch).
    Components are independent of each other.
    """

    n_in: int
    width: int
    n_out: int
    per_sample: bool
    hidden: object = None
    output: object = None
    input: object = None

    @property
    def components(self) -> dict:
        return {name: getattr(self, name) for name in COMPONENTS if getattr(self, name) is not None}

    @property
    def n_variables(self) -> int:
        return sum(c.n_variables for c in self.components.values())

    @property
    def max_moment_order(self):
        """Highest moment order fixed by every component (None: all orders)."""
        orders = [c.max_moment_order for c in self.components.values() if c.max_moment_order is not None]
        return min(orders) if orders else None

    def check_order(self, order: int, route: str):
        for c in self.components.values():
            c.check_order(order, route)

    def sample(self, n_draws: int, n_samples: int, generator=None, device=None, dtype=None) -> dict:
        """Masks for ``n_draws`` independent draws over a data set of ``n_samples`` samples.

        Each array has shape ``(n_draws, n, *component_shape)`` with ``n = n_samples`` for
        per-sample laws and ``n = 1`` (one mask shared by all samples) otherwise.
        """
        n = n_samples if self.per_sample else 1
        return {name: c.sample((n_draws, n), generator, device, dtype) for name, c in self.components.items()}

    def predict(self, U, V, X, masks: dict):
        r"""Predictions :math:`(U \circ M_U)\,\mathrm{diag}(\xi)\,(V \circ M_V)^\top x_k` (torch).

        ``U`` (n_out, d), ``V`` (n_in, d), ``X`` (n_in, N); ``masks`` as from :meth:`sample`
        (any subset of the components).  Returns shape ``(T, N, n_out)``.
        """
        mV = masks.get("input")
        if mV is None:
            H = (X.T @ V).unsqueeze(0)
        elif mV.shape[1] == 1:
            H = torch.einsum("tij,ik->tkj", V * mV[:, 0], X)
        else:
            H = torch.einsum("tkij,ik->tkj", V * mV, X)
        xi = masks.get("hidden")
        if xi is not None:
            H = H * xi
        mU = masks.get("output")
        if mU is None:
            return H @ U.T
        if mU.shape[1] == 1:
            return torch.einsum("tkj,toj->tko", H, U * mU[:, 0])
        return torch.einsum("tkj,tkoj->tko", H, U * mU)


__all__ = ["ScalarLaw", "Bernoulli", "Gaussian", "DiscreteLaw", "Uniform", "moment_matched_support",
           "ComponentLaw", "IndependentMask", "CovarianceMask", "HiddenCovariance", "MaskLaw", "COMPONENTS",
           "independent_mask", "check_scalar_law"]

