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

The scalar laws live in :mod:`pnd_theory.laws.scalar` and are re-exported here.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .._validation import InvalidParameterError
from .scalar import (LAW_RTOL, Bernoulli, DiscreteLaw, Gaussian, ScalarLaw, Uniform, check_moments, check_scalar_law,
                          moment_matched_support)

COMPONENTS = ("hidden", "output", "input")


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
        for law in getattr(self, "distinct_laws", ()):
            check_moments(law, order, route)

    @property
    def description(self) -> str:
        """A few words naming the law, for messages."""
        return type(self).__name__


@dataclass(frozen=True, eq=False)
class IndependentMask(ComponentLaw):
    """Mask entries that are copies of independent scalar variables.

    Entry ``e`` of the component equals variable ``groups[e]``; variable ``g`` follows
    ``distinct_laws[law_index[g]]`` (a :class:`ScalarLaw`), so that a million weights of one law
    hold one law object.  ``symbol_names`` names the laws' parameters in symbolic derivations:
    one name for every variable, or a tuple with one name per variable (two variables with
    different laws never share a name).  Build it with :func:`independent_mask`.
    """

    distinct_laws: tuple
    law_index: np.ndarray
    groups: np.ndarray
    symbol_names: object

    def __post_init__(self):
        for i, law in enumerate(self.distinct_laws):
            check_scalar_law(f"laws[{i}]", law)
        if isinstance(self.symbol_names, str):
            if len(self.distinct_laws) > 1:
                raise InvalidParameterError(
                    f"symbols must differ for different laws; got one name {self.symbol_names!r} for "
                    f"{len(self.distinct_laws)} laws")
            return
        if len(self.symbol_names) != len(self.law_index):
            raise InvalidParameterError(f"symbols must name every variable; got {len(self.symbol_names)} names "
                                        f"for {len(self.law_index)} variables")
        by_name = {}
        for g, name in enumerate(self.symbol_names):
            by_name.setdefault(name, set()).add(int(self.law_index[g]))
        for name, which in by_name.items():
            if len(which) > 1:
                shown = sorted(repr(self.distinct_laws[i]) for i in which)
                raise InvalidParameterError(f"symbols must differ for different laws; got {name!r} for {shown}")

    @property
    def shape(self):
        return self.groups.shape

    @property
    def n_variables(self) -> int:
        return len(self.law_index)

    @property
    def laws(self) -> tuple:
        """The law of every variable (a tuple as long as the variables: for small components)."""
        return tuple(self.distinct_laws[i] for i in self.law_index)

    variable_laws = laws

    @property
    def symbols(self) -> tuple:
        """The parameter's name of every variable."""
        if isinstance(self.symbol_names, str):
            return (self.symbol_names,) * self.n_variables
        return tuple(self.symbol_names)

    @property
    def independent_entries(self) -> bool:
        return self.groups.size == self.n_variables and np.array_equal(
            self.groups.ravel(), np.arange(self.groups.size)
        )

    @property
    def single_law(self):
        """The one law of every variable, or None when the variables follow different laws."""
        return self.distinct_laws[0] if len(self.distinct_laws) == 1 else None

    def variances(self) -> np.ndarray:
        """Variance of every variable."""
        return np.array([law.variance for law in self.distinct_laws], dtype=np.float64)[self.law_index]

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
            law = self.distinct_laws[self.law_index[g]]
            if symbol_of is None:
                result = result * law.moment(k)
            else:
                result = result * law.symbolic_moment(k, symbol_of(g))
        return result

    def support(self, order):
        cache = [law.support(order) for law in self.distinct_laws]
        values = [np.asarray(cache[i][0], dtype=np.float64) for i in self.law_index]
        probs = [np.asarray(cache[i][1], dtype=np.float64) for i in self.law_index]
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
            for i, law in enumerate(self.distinct_laws):
                by_class.setdefault(type(law), []).append(i)
            groups = {cls: np.flatnonzero(np.isin(self.law_index, which)) for cls, which in by_class.items()}

            def draw(cls, idx):
                return cls.sample_many([self.distinct_laws[i] for i in self.law_index[idx]], lead, generator,
                                       device, dtype)

            if len(groups) == 1:
                (cls, idx), = groups.items()
                z = draw(cls, idx)
            else:
                z = torch.empty(lead + (self.n_variables,), device=device, dtype=dtype)
                for cls, idx in groups.items():
                    z[..., torch.as_tensor(idx, device=z.device)] = draw(cls, idx)
        if self.independent_entries:
            return z.reshape(lead + self.shape)
        return z[..., torch.as_tensor(self.groups, device=z.device)]


def independent_mask(laws, shape, symbols, groups=None) -> IndependentMask:
    """An :class:`IndependentMask` of the given shape.

    ``laws``/``symbols``: one law and one name for all entries (independent entries, stored as
    one law), or, with ``groups`` (entry -> variable), one law and one name for every variable
    or one law and one name per variable."""
    if groups is None:
        check_scalar_law("law", laws)
        groups = np.arange(int(np.prod(shape))).reshape(shape)
        return IndependentMask((laws,), np.zeros(groups.size, dtype=np.int64), groups, str(symbols))
    if isinstance(laws, ScalarLaw):  # one law for every variable, stored once
        n = int(np.max(groups)) + 1 if np.size(groups) else 0
        return IndependentMask((laws,), np.zeros(n, dtype=np.int64), np.asarray(groups), str(symbols))
    laws = tuple(laws)
    for g, law in enumerate(laws):
        check_scalar_law(f"laws[{g}]", law)
    distinct = {}
    index = np.array([distinct.setdefault(law, len(distinct)) for law in laws], dtype=np.int64)
    return IndependentMask(tuple(distinct), index, np.asarray(groups), tuple(symbols))


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


class ComponentsMixin:
    """What a law made of independent components answers from them (``self.components``)."""

    @property
    def max_moment_order(self):
        """Highest moment order fixed by every component (None: all orders)."""
        orders = [c.max_moment_order for c in self.components.values() if c.max_moment_order is not None]
        return min(orders) if orders else None

    def check_order(self, order: int, route: str):
        """Refuse, naming the route, when a component does not fix moments up to ``order``."""
        for c in self.components.values():
            c.check_order(order, route)


@dataclass(frozen=True, eq=False)
class MaskLaw(ComponentsMixin):
    """The law of all masks of a network of given sizes.

    ``hidden``, ``output`` and ``input`` are component laws or ``None`` (identically 1).
    ``per_sample``: every sample draws its own masks (else one draw serves a mini-batch).
    Components are independent of each other.

    Examples
    --------
    Dropout masks the hidden units, a fresh mask per sample, with values 0 and
    :math:`1/(1-p)`:

    >>> import pnd_theory as pt
    >>> law = pt.Dropout(0.5).law(n_in=3, width=4, n_out=2)
    >>> masks = law.sample(5, n_samples=8)
    >>> tuple(masks["hidden"].shape), sorted(set(masks["hidden"].flatten().tolist()))
    ((5, 8, 4), [0.0, 2.0])
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
           "independent_mask", "check_scalar_law", "LAW_RTOL", "ComponentsMixin"]
