r"""Noise strategies and the laws of their masks.

The network is :math:`f(x) = (U \circ M_U)\,\mathrm{diag}(\xi)\,(V \circ M_V)^\top x` with
``U`` of shape ``(n_out, d)`` and ``V`` of shape ``(n_in, d)``.  A strategy says which of the
three mask components is random -- ``hidden`` (:math:`\xi`, shape ``(d,)``), ``output``
(:math:`M_U`, shape ``(n_out, d)``) and ``input`` (:math:`M_V`, shape ``(n_in, d)``) -- and
with which law; the components it leaves alone are identically 1.  Every mask has mean 1.

This module is the single source of truth: the numeric penalty, the symbolic derivation,
the exact enumeration, the Monte Carlo estimate and the torch layers all read a strategy
only through its :class:`MaskLaw` (``strategy.law(n_in, width, n_out)``).  A new strategy is
one new class returning a law; nothing else changes.

Two kinds of component law exist:

* :class:`IndependentMask`: each entry equals one of a set of independent scalar variables
  (entries sharing a variable share a draw, as the units of a DropBlock block do).  A
  variable is inverted Bernoulli (values 0 and :math:`1/(1-p)`) or Gaussian
  :math:`N(1, \lambda)`, :math:`\lambda = p/(1-p)`, with its own drop probability ``p``.
* :class:`CovarianceMask`: a hidden-unit mask of mean 1 with a given covariance matrix
  (:class:`HiddenNoise`), numeric or with sympy symbols as entries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ._validation import check_choice, check_positive_int, check_probability

SCALAR_KINDS = ("bernoulli", "gaussian")
LAYERS = ("input", "output", "both")
STIRS = ("drop", "gaussian")
COMPONENTS = ("hidden", "output", "input")


# --------------------------------------------------------------------------- scalar laws

def noise_strength(p):
    r""":math:`\lambda = p / (1 - p)`, the variance of a mean-one mask of drop probability ``p``."""
    return p / (1 - p)


def scalar_moment(kind: str, p, k: int):
    r"""Raw moment :math:`E[m^k]` of one mask variable of drop probability ``p``.

    Inverted Bernoulli: :math:`E[m^k] = (1-p)^{1-k}` for :math:`k \ge 1`.
    Gaussian :math:`N(1, \lambda)`: :math:`E[m^k] = \sum_{i\ \mathrm{even}} \binom{k}{i}
    \lambda^{i/2} (i-1)!!`.  ``p`` may be a float or a sympy expression.
    """
    if k == 0:
        return 1
    if kind == "bernoulli":
        return (1 - p) ** (1 - k)
    lam = noise_strength(p)
    return sum(math.comb(k, i) * lam ** (i // 2) * _double_factorial(i - 1) for i in range(0, k + 1, 2))


def _double_factorial(n: int) -> int:
    return math.prod(range(n, 0, -2)) if n > 0 else 1


def two_point_support(kind: str, p: np.ndarray):
    r"""Values and probabilities of a two-point law with the same moments up to order 3.

    Bernoulli: the law itself, :math:`\{0, 1/(1-p)\}` with probabilities :math:`\{p, 1-p\}`.
    Gaussian: :math:`\{1 - \sqrt\lambda, 1 + \sqrt\lambda\}` with probabilities 1/2 each; its
    first three moments equal those of :math:`N(1, \lambda)`, which is all an expectation of a
    polynomial of degree at most 3 in that variable can see.
    Returns ``(values, probs)``, each of shape ``p.shape + (2,)``.
    """
    p = np.asarray(p, dtype=np.float64)
    if kind == "bernoulli":
        values = np.stack([np.zeros_like(p), 1.0 / (1.0 - p)], axis=-1)
        probs = np.stack([p, 1.0 - p], axis=-1)
    else:
        root = np.sqrt(noise_strength(p))
        values = np.stack([1.0 - root, 1.0 + root], axis=-1)
        probs = np.full(p.shape + (2,), 0.5)
    return values, probs


def sample_scalar(kind: str, p, shape, generator=None, device=None, dtype=None):
    """Draw mean-one mask values of drop probability ``p`` (a float or a tensor that
    broadcasts against ``shape``) with torch: the layers' sampler, so that a strategy and the
    torch modules draw the same way."""
    import torch

    from .nn import _sample_mask

    stir = "drop" if kind == "bernoulli" else "gaussian"
    return _sample_mask(tuple(shape), p, stir, generator=generator, device=device, dtype=dtype or torch.float64)


# --------------------------------------------------------------------------- component laws

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


@dataclass(frozen=True, eq=False)
class IndependentMask:
    """Mask entries that are copies of independent scalar variables.

    Entry ``e`` of the component equals variable ``groups[e]``; variable ``g`` is of ``kind``
    (``"bernoulli"`` or ``"gaussian"``) with drop probability ``rates[g]``; ``symbols[g]``
    names that rate in symbolic derivations.
    """

    kind: str
    rates: np.ndarray
    groups: np.ndarray
    symbols: tuple

    @property
    def shape(self):
        return self.groups.shape

    @property
    def n_variables(self) -> int:
        return len(self.rates)

    @property
    def independent_entries(self) -> bool:
        return self.groups.size == self.n_variables and np.array_equal(
            self.groups.ravel(), np.arange(self.groups.size)
        )

    def variances(self) -> np.ndarray:
        """Variance of every variable, :math:`\\lambda_g = p_g / (1 - p_g)`."""
        return noise_strength(self.rates)

    def entry_variances(self) -> np.ndarray:
        """Variance of every entry (shape of the component); entries must be independent."""
        if not self.independent_entries:
            raise NotImplementedError("entry variances describe the law only when every entry has its own variable")
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

    def moment(self, entries: Sequence, rate_symbol):
        """:math:`E[\\prod_e m_e]` for a multiset of entry indices; ``rate_symbol(g)`` gives
        the rate (symbol or number) of variable ``g``."""
        counts = {}
        for e in entries:
            g = int(self.groups.flat[e])
            counts[g] = counts.get(g, 0) + 1
        result = 1
        for g, k in counts.items():
            result = result * scalar_moment(self.kind, rate_symbol(g), k)
        return result

    def support(self):
        """``(values, probs)`` of shape ``(n_variables, 2)``: see :func:`two_point_support`."""
        return two_point_support(self.kind, self.rates)

    def entries(self, z):
        """Entries from variable values ``z`` of shape ``(..., n_variables)``."""
        return z[..., self.groups]

    def sample(self, lead, generator=None, device=None, dtype=None):
        """Draw masks of shape ``lead + self.shape``."""
        import torch

        uniform = np.all(self.rates == self.rates[0])
        if self.independent_entries:
            p = self.rates[0] if uniform else torch.as_tensor(self.rates.reshape(self.shape), device=device)
            return sample_scalar(self.kind, p, tuple(lead) + self.shape, generator, device, dtype)
        p = self.rates[0] if uniform else torch.as_tensor(self.rates, device=device)
        z = sample_scalar(self.kind, p, tuple(lead) + (self.n_variables,), generator, device, dtype)
        return z[..., torch.as_tensor(self.groups, device=device)]


@dataclass(frozen=True, eq=False)
class CovarianceMask:
    r"""Hidden mask :math:`\xi = 1 + L z` of mean 1 and covariance :math:`C = L L^\top`.

    Only the first two moments are part of the law: moments of order above 2 raise.  For
    enumeration ``z`` is a vector of independent signs (mean 0, identity covariance), which
    gives every expectation of a polynomial of degree 2 in :math:`\xi` exactly; for sampling
    ``z`` is standard normal.
    """

    covariance: object  # numpy (d, d) or sympy Matrix

    @property
    def symbolic(self) -> bool:
        return not isinstance(self.covariance, np.ndarray)

    @property
    def shape(self):
        return (self.covariance.shape[0],)

    def _numeric(self, what):
        if self.symbolic:
            raise TypeError(f"{what} needs a numeric covariance; this HiddenNoise has symbolic entries")
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

    def moment(self, entries: Sequence, rate_symbol=None):
        entries = list(entries)
        if len(entries) <= 1:
            return 1
        if len(entries) == 2:
            return 1 + self.covariance[entries[0], entries[1]]
        raise ValueError(
            "HiddenNoise fixes only the mean and covariance of the mask: moments of order "
            f"{len(entries)} are not determined by it"
        )

    def support(self):
        r = self.n_variables
        return np.tile([-1.0, 1.0], (r, 1)), np.full((r, 2), 0.5)

    def entries(self, z):
        L = self.factor
        if hasattr(z, "new_tensor"):
            L = z.new_tensor(L)
        return 1 + z @ L.T

    def sample(self, lead, generator=None, device=None, dtype=None):
        import torch

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
        import torch

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


# --------------------------------------------------------------------------- strategies

class Strategy:
    """Base class: a noise strategy is an immutable object that knows the law of its mask."""

    per_sample: bool = True

    def law(self, n_in: int, width: int, n_out: int) -> MaskLaw:  # pragma: no cover - abstract
        raise NotImplementedError

    def check_width(self, width: int) -> int:
        """Validate the width for this strategy (block sizes, per-unit rates)."""
        return check_positive_int("width", width)

    def _sizes(self, n_in, width, n_out):
        return (check_positive_int("n_in", n_in), self.check_width(width), check_positive_int("n_out", n_out))


def _independent(kind, rates, shape, symbols, groups=None):
    rates = np.asarray(rates, dtype=np.float64)
    if groups is None:
        groups = np.arange(int(np.prod(shape))).reshape(shape)
        rates = np.broadcast_to(rates, (groups.size,)).copy()
        symbols = tuple(symbols) * (groups.size // len(symbols))
    return IndependentMask(kind, rates, groups, tuple(symbols))


@dataclass(frozen=True)
class Dropout(Strategy):
    """Dropout on the hidden units: one inverted Bernoulli per unit, new per sample."""

    p: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "p", check_probability("p", self.p))

    def law(self, n_in, width, n_out):
        n_in, width, n_out = self._sizes(n_in, width, n_out)
        return MaskLaw(n_in, width, n_out, True, hidden=_independent("bernoulli", self.p, (width,), ("p",)))


@dataclass(frozen=True)
class GaussianDropout(Strategy):
    """Gaussian dropout on the hidden units: one :math:`N(1, p/(1-p))` per unit, new per sample."""

    p: float = 0.5

    def __post_init__(self):
        object.__setattr__(self, "p", check_probability("p", self.p))

    def law(self, n_in, width, n_out):
        n_in, width, n_out = self._sizes(n_in, width, n_out)
        return MaskLaw(n_in, width, n_out, True, hidden=_independent("gaussian", self.p, (width,), ("p",)))


@dataclass(frozen=True)
class DropBlock(Strategy):
    """DropBlock over hidden units: one inverted Bernoulli per block of ``block_size``
    contiguous units (``block_size`` divides the width), new per sample."""

    p: float = 0.5
    block_size: int = 1

    def __post_init__(self):
        object.__setattr__(self, "p", check_probability("p", self.p))
        object.__setattr__(self, "block_size", check_positive_int("block_size", self.block_size))

    def check_width(self, width):
        width = check_positive_int("width", width)
        if width % self.block_size:
            raise ValueError(
                f"block_size must divide the width; got block_size={self.block_size} and width={width}"
            )
        return width

    def law(self, n_in, width, n_out):
        n_in, width, n_out = self._sizes(n_in, width, n_out)
        n_blocks = width // self.block_size
        groups = np.arange(width) // self.block_size
        hidden = _independent("bernoulli", np.full(n_blocks, self.p), None, ("p",) * n_blocks, groups)
        return MaskLaw(n_in, width, n_out, True, hidden=hidden)


@dataclass(frozen=True)
class NodeDropout(Strategy):
    """Dropout with its own drop probability ``p[j]`` for every hidden unit (Y-Drop style)."""

    p: tuple = (0.5,)

    def __post_init__(self):
        if isinstance(self.p, (str, bytes)) or not hasattr(self.p, "__len__"):
            raise TypeError(f"p must be a sequence of per-unit drop probabilities, got {self.p!r}")
        if len(self.p) == 0:
            raise ValueError("p must hold at least one per-unit drop probability, got an empty sequence")
        rates = tuple(check_probability(f"p[{j}]", q) for j, q in enumerate(self.p))
        object.__setattr__(self, "p", rates)

    def check_width(self, width):
        width = check_positive_int("width", width)
        if width != len(self.p):
            raise ValueError(f"width must equal len(p) = {len(self.p)} for NodeDropout; got width={width}")
        return width

    def law(self, n_in, width, n_out):
        n_in, width, n_out = self._sizes(n_in, width, n_out)
        symbols = tuple(f"p_{j + 1}" for j in range(width))
        hidden = _independent("bernoulli", self.p, None, symbols, np.arange(width))
        return MaskLaw(n_in, width, n_out, True, hidden=hidden)


def _weight_law(kind, p, layer, per_sample, n_in, width, n_out):
    output = _independent(kind, p, (n_out, width), ("p",)) if layer in ("output", "both") else None
    input_ = _independent(kind, p, (n_in, width), ("p",)) if layer in ("input", "both") else None
    return MaskLaw(n_in, width, n_out, per_sample, output=output, input=input_)


@dataclass(frozen=True)
class DropConnect(Strategy):
    """DropConnect: one inverted Bernoulli per weight of ``U`` (``layer="output"``), of ``V``
    (``"input"``) or of both; one draw shared by the mini-batch unless ``per_sample=True``."""

    p: float = 0.5
    layer: str = "output"
    per_sample: bool = False

    def __post_init__(self):
        object.__setattr__(self, "p", check_probability("p", self.p))
        check_choice("layer", self.layer, LAYERS)
        if not isinstance(self.per_sample, (bool, np.bool_)):
            raise TypeError(f"per_sample must be True or False, got {self.per_sample!r}")

    def law(self, n_in, width, n_out):
        return _weight_law("bernoulli", self.p, self.layer, bool(self.per_sample), *self._sizes(n_in, width, n_out))


@dataclass(frozen=True)
class PerNodeDrop(Strategy):
    """PerNodeDrop: per-sample DropConnect, one variable per weight and per sample, inverted
    Bernoulli (``stir="drop"``) or :math:`N(1, p/(1-p))` (``stir="gaussian"``)."""

    p: float = 0.5
    layer: str = "input"
    stir: str = "drop"

    def __post_init__(self):
        object.__setattr__(self, "p", check_probability("p", self.p))
        check_choice("layer", self.layer, LAYERS)
        check_choice("stir", self.stir, STIRS)

    @property
    def per_sample(self) -> bool:
        return True

    def law(self, n_in, width, n_out):
        kind = "bernoulli" if self.stir == "drop" else "gaussian"
        return _weight_law(kind, self.p, self.layer, True, *self._sizes(n_in, width, n_out))


@dataclass(frozen=True, eq=False)
class HiddenNoise(Strategy):
    """Any multiplicative hidden-unit noise of mean 1 with the given covariance matrix,
    new per sample.  ``covariance`` is numeric (square, symmetric, positive semi-definite)
    or a sympy matrix (square and symmetric) for symbolic derivations."""

    covariance: object = field(default=None)

    def __post_init__(self):
        C = self.covariance
        try:
            import sympy
        except ImportError:  # pragma: no cover
            sympy = None
        if sympy is not None and isinstance(C, sympy.MatrixBase):
            C = sympy.ImmutableMatrix(C)
            if not C.is_square:
                raise ValueError(f"covariance must be square, got shape {C.shape}")
            if C != C.T:
                raise ValueError("covariance must be symmetric; got a sympy matrix with C != C.T")
        else:
            try:
                C = np.array(C, dtype=np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"covariance must be a numeric or sympy square matrix, got {self.covariance!r}") from None
            if C.ndim != 2 or C.shape[0] != C.shape[1] or C.shape[0] == 0:
                raise ValueError(f"covariance must be a non-empty square matrix, got shape {C.shape}")
            if not np.all(np.isfinite(C)):
                raise ValueError("covariance has non-finite entries (NaN or inf)")
            scale = max(1.0, float(np.abs(C).max()))
            if np.abs(C - C.T).max() > 1e-12 * scale:
                raise ValueError(f"covariance must be symmetric; max |C - C^T| = {np.abs(C - C.T).max():.3g}")
            C = (C + C.T) / 2
            w_min = float(np.linalg.eigvalsh(C).min())
            if w_min < -1e-10 * scale:
                raise ValueError(f"covariance must be positive semi-definite; smallest eigenvalue {w_min:.3g}")
            C.setflags(write=False)
        object.__setattr__(self, "covariance", C)

    def check_width(self, width):
        width = check_positive_int("width", width)
        if width != self.covariance.shape[0]:
            raise ValueError(
                f"width must equal the covariance size {self.covariance.shape[0]} for HiddenNoise; got width={width}"
            )
        return width

    def law(self, n_in, width, n_out):
        n_in, width, n_out = self._sizes(n_in, width, n_out)
        return MaskLaw(n_in, width, n_out, True, hidden=CovarianceMask(self.covariance))

    def __repr__(self):
        return f"HiddenNoise(covariance={self.covariance!r})"


STRATEGY_NAMES = {
    "dropout": Dropout,
    "gaussian-dropout": GaussianDropout,
    "dropblock": DropBlock,
    "node-dropout": NodeDropout,
    "dropconnect": DropConnect,
    "pernodedrop": PerNodeDrop,
}


def strategy_from_name(name: str, **params) -> Strategy:
    """Build a strategy from its command-line name (see ``STRATEGY_NAMES``) and parameters."""
    cls = STRATEGY_NAMES.get(check_choice("strategy", name, tuple(STRATEGY_NAMES)))
    return cls(**params)
