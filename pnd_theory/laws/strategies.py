r"""Noise strategies: the named catalogue over the mask laws of :mod:`pnd_theory.laws`.

The network is :math:`f(x) = (U \circ M_U)\,\mathrm{diag}(\xi)\,(V \circ M_V)^\top x` with
``U`` of shape ``(n_out, d)`` and ``V`` of shape ``(n_in, d)``.  A strategy says which of the
three mask components is random -- ``hidden`` (:math:`\xi`, shape ``(d,)``), ``output``
(:math:`M_U`, shape ``(n_out, d)``) and ``input`` (:math:`M_V`, shape ``(n_in, d)``) -- and
with which scalar law; the components it leaves alone are identically 1.  Every mask has mean 1.

Two generic strategies cover every law:

* :class:`UnitNoise` ``(law, block_size=1)``: one variable per hidden unit (or per block of
  contiguous units), new per sample.  ``Dropout(p)`` is ``UnitNoise(Bernoulli(p))``,
  ``GaussianDropout(p)`` is ``UnitNoise(Gaussian(p))``, ``DropBlock(p, b)`` is
  ``UnitNoise(Bernoulli(p), b)`` and ``NodeDropout(p)`` is ``UnitNoise([Bernoulli(p_j)])``.
* :class:`WeightNoise` ``(law, layer, per_sample=True)``: one variable per weight of ``V``
  (``layer="input"``), of ``U`` (``"output"``) or of both (``law`` may then be the pair
  ``(law_on_V, law_on_U)``), drawn per sample (PerNodeDrop) or once per mini-batch
  (DropConnect).

:class:`HiddenNoise` stays for hidden-unit laws known only by their covariance.

A strategy is read by every route only through its :class:`~pnd_theory.laws.MaskLaw`
(``strategy.law(n_in, width, n_out)``): a user's strategy is a subclass whose ``law`` returns
one, and a user's scalar law goes through :class:`UnitNoise` or :class:`WeightNoise`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

import numpy as np
import sympy

from .._validation import (InvalidParameterError, as_real_array, check_bool, check_choice, check_positive_int,
                          check_probability, check_real, invalid)
from .masks import (Bernoulli, CovarianceMask, Gaussian, MaskLaw, ScalarLaw, check_scalar_law,
                   independent_mask)

LAYERS = ("input", "output", "both")
STIRS = ("drop", "gaussian")


def noise_strength(p):
    r""":math:`\lambda = p / (1 - p)`, the variance of a mean-one mask of drop probability ``p``
    (``p`` in [0, 1)).

    Examples
    --------
    >>> import pnd_theory as pt
    >>> pt.noise_strength(0.5), pt.noise_strength(0.2)
    (1.0, 0.25)
    >>> pt.drop_probability(pt.noise_strength(0.3))  # the inverse
    0.3
    """
    p = check_probability("p", p)
    return p / (1 - p)


def drop_probability(lam):
    r"""The drop probability :math:`p = \lambda / (1 + \lambda)` of a noise strength
    :math:`\lambda` (a finite real number >= 0).

    Examples
    --------
    >>> import pnd_theory as pt
    >>> pt.drop_probability(1.0), pt.drop_probability(0.25)
    (0.5, 0.2)
    """
    lam = check_real("lam", lam, "a noise strength, a finite real number >= 0", low=0.0)
    return lam / (1 + lam)


# --------------------------------------------------------------------------- base class

class Strategy(abc.ABC):
    """Base class: a noise strategy is an immutable object that knows the law of its mask.

    A subclass defines :meth:`law`; :attr:`fields` (names of the constructor's parameters, in
    order) gives equality, hashing and the repr.

    Examples
    --------
    Every built-in strategy is one; its law is a :class:`MaskLaw` for given sizes:

    >>> import pnd_theory as pt
    >>> s = pt.Dropout(0.5)
    >>> isinstance(s, pt.Strategy), s.fields, s == pt.Dropout(0.5)
    (True, ('p',), True)
    >>> law = s.law(3, 4, 2)
    >>> law.width, law.per_sample, sorted(law.components)
    (4, True, ['hidden'])
    """

    fields: tuple = ()

    @abc.abstractmethod
    def law(self, n_in: int, width: int, n_out: int) -> MaskLaw:
        """The :class:`~pnd_theory.MaskLaw` of a network with these sizes."""

    @property
    def per_sample(self) -> bool:
        """Whether every sample draws its own masks (read from the law at a minimal size)."""
        return self.law(1, self.min_width, 1).per_sample

    @property
    def min_width(self) -> int:
        """The smallest width this strategy accepts (1 unless a block or a per-unit law says otherwise)."""
        return 1

    def check_width(self, width: int) -> int:
        """Validate the width for this strategy (block sizes, per-unit laws)."""
        return check_positive_int("width", width)

    def _sizes(self, n_in, width, n_out):
        return (check_positive_int("n_in", n_in), self.check_width(width), check_positive_int("n_out", n_out))

    def with_per_sample(self, per_sample: bool) -> "Strategy":
        """The same law with masks drawn per sample (True) or shared by a mini-batch (False)."""
        per_sample = check_bool("per_sample", per_sample)
        return self if per_sample == self.per_sample else Resampled(self, per_sample)

    # ---- value semantics over ``fields``
    def _values(self):
        return tuple(getattr(self, f) for f in self.fields)

    def __setattr__(self, name, value):
        if getattr(self, "_frozen", False):
            raise AttributeError(f"{type(self).__name__} is immutable: build a new one instead of setting {name}")
        object.__setattr__(self, name, value)

    def _freeze(self):
        object.__setattr__(self, "_frozen", True)

    def __eq__(self, other):
        return type(self) is type(other) and self._values() == other._values()

    def __hash__(self):
        return hash((type(self).__name__,) + tuple(_hashable(v) for v in self._values()))

    def __repr__(self):
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.fields)
        return f"{type(self).__name__}({inner})"


def _hashable(v):
    return v.tobytes() if isinstance(v, np.ndarray) else v


def validate_strategy(strategy):
    """A pnd_theory strategy, else the one exception with what is allowed."""
    if not isinstance(strategy, Strategy):
        raise invalid("strategy", "a pnd_theory strategy (e.g. pt.Dropout(0.5), pt.UnitNoise(pt.Gaussian(0.3)))",
                      strategy)
    return strategy


class Resampled(Strategy):
    """Another strategy's law with its masks drawn per sample or shared by a mini-batch."""

    fields = ("base", "per_sample_masks")

    def __init__(self, base, per_sample_masks):
        self.base = validate_strategy(base)
        self.per_sample_masks = check_bool("per_sample_masks", per_sample_masks)
        self._freeze()

    @property
    def min_width(self):
        return self.base.min_width

    def check_width(self, width):
        return self.base.check_width(width)

    def law(self, n_in, width, n_out):
        law = self.base.law(n_in, width, n_out)
        return MaskLaw(law.n_in, law.width, law.n_out, self.per_sample_masks, law.hidden, law.output, law.input)


# --------------------------------------------------------------------------- generic strategies

def _check_laws(name, law):
    """One scalar law, or a non-empty sequence of them (per variable)."""
    if isinstance(law, ScalarLaw):
        return check_scalar_law(name, law)
    if isinstance(law, (str, bytes, Mapping)) or not isinstance(law, Sequence) or len(law) == 0:
        raise invalid(name, "a scalar law or a non-empty sequence of scalar laws", law)
    return tuple(check_scalar_law(f"{name}[{i}]", x) for i, x in enumerate(law))


class UnitNoise(Strategy):
    r"""Noise on the hidden units: one variable per unit, or per block of ``block_size``
    contiguous units, drawn anew for every sample.

    .. math:: R = \sum_{jk} C_{jk} (u_j^\top u_k)(v_j^\top S v_k), \qquad
        C = \mathrm{blockdiag}(\sigma_g^2\, 1 1^\top)

    with :math:`\sigma_g^2` the variance of block ``g``'s law (a diagonal :math:`C` for
    ``block_size=1``).

    Parameters
    ----------
    law : ScalarLaw or sequence of ScalarLaw
        One law for every block, or one law per block (the width is then
        ``len(law) * block_size``).
    block_size : int
        Units per block (it must divide the width).

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, seed=0)
    >>> S = pt.second_moment(X)

    Only the law's variance enters the penalty:

    >>> law = pt.Uniform(0.5, 1.5)
    >>> bool(np.isclose(pt.expected_penalty(pt.UnitNoise(law), U, V, S),
    ...                 law.variance * pt.expected_penalty(pt.Dropout(0.5), U, V, S)))
    True
    """

    fields = ("scalar_law", "block_size")

    def __init__(self, law, block_size=1):
        self.scalar_law = _check_laws("law", law)
        self.block_size = check_positive_int("block_size", block_size)
        self._freeze()

    def __repr__(self):
        law = list(self.scalar_law) if isinstance(self.scalar_law, tuple) else self.scalar_law
        extra = "" if self.block_size == 1 else f", block_size={self.block_size}"
        return f"UnitNoise({law!r}{extra})"

    @property
    def per_sample(self):
        return True

    @property
    def min_width(self):
        n = len(self.scalar_law) if isinstance(self.scalar_law, tuple) else 1
        return n * self.block_size

    def check_width(self, width):
        width = check_positive_int("width", width)
        if isinstance(self.scalar_law, tuple) and width != len(self.scalar_law) * self.block_size:
            raise InvalidParameterError(
                f"width must equal len(p) * block_size = {len(self.scalar_law) * self.block_size} for per-unit laws "
                f"(one law per {'unit' if self.block_size == 1 else 'block'}); got width={width}")
        if width % self.block_size:
            raise InvalidParameterError(
                f"block_size must divide the width; got block_size={self.block_size} and width={width}")
        return width

    def law(self, n_in, width, n_out):
        n_in, width, n_out = self._sizes(n_in, width, n_out)
        n_blocks = width // self.block_size
        if isinstance(self.scalar_law, tuple):
            laws = self.scalar_law
            symbols = tuple(f"p_{g + 1}" for g in range(n_blocks))
        else:
            laws, symbols = self.scalar_law, "p"
        hidden = independent_mask(laws, None, symbols, groups=np.arange(width) // self.block_size)
        return MaskLaw(n_in, width, n_out, True, hidden=hidden)


class WeightNoise(Strategy):
    r"""Noise on the weights: one variable per weight of ``V`` (``layer="input"``), of ``U``
    (``"output"``) or of both, drawn per sample (PerNodeDrop) or once per mini-batch
    (DropConnect).  With variances :math:`\sigma_U^2` and :math:`\sigma_V^2`,

    .. math:: R = \sigma_U^2 \sum_j \|u_j\|^2 v_j^\top S v_j
        + \sigma_V^2 (1 + \sigma_U^2) \sum_j \|u_j\|^2 v_j^\top D v_j,
        \qquad D = \mathrm{diag}(S).

    Parameters
    ----------
    law : ScalarLaw, or a pair ``(law_on_V, law_on_U)`` for ``layer="both"``
    layer : {"input", "output", "both"}
    per_sample : bool
        A fresh mask for every sample (True) or one mask per mini-batch (False).

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, seed=0)
    >>> S = pt.second_moment(X)

    Gaussian noise on the weights of ``V`` has the penalty of input-layer PerNodeDrop of the
    same variance:

    >>> bool(np.isclose(pt.expected_penalty(pt.WeightNoise(pt.Gaussian(0.5), layer="input"), U, V, S),
    ...                 pt.expected_penalty(pt.PerNodeDrop(0.5, layer="input"), U, V, S)))
    True
    """

    fields = ("scalar_law", "layer", "per_sample_masks")

    def __init__(self, law, layer="input", per_sample=True):
        self.layer = check_choice("layer", layer, LAYERS)
        if isinstance(law, ScalarLaw):
            self.scalar_law = check_scalar_law("law", law)
        elif layer == "both" and isinstance(law, (tuple, list)) and len(law) == 2:
            self.scalar_law = (check_scalar_law("law[0] (on V)", law[0]), check_scalar_law("law[1] (on U)", law[1]))
        else:
            allowed = "a scalar law, or for layer='both' a pair (law_on_V, law_on_U)"
            raise invalid("law", allowed, law)
        self.per_sample_masks = check_bool("per_sample", per_sample)
        self._freeze()

    def __repr__(self):
        return f"WeightNoise({self.scalar_law!r}, layer={self.layer!r}, per_sample={self.per_sample_masks!r})"

    @property
    def per_sample(self):
        return self.per_sample_masks

    def with_per_sample(self, per_sample: bool) -> Strategy:
        """The same law drawn per sample or shared by a mini-batch.  Where the law is the one the
        fields give (``law`` not overridden), the result is named: a Bernoulli law gives
        ``DropConnect(p, layer, per_sample)``; otherwise the law of a subclass is kept as it is."""
        per_sample = check_bool("per_sample", per_sample)
        if per_sample == self.per_sample:
            return self
        if type(self).law is not WeightNoise.law:
            return Resampled(self, per_sample)
        if isinstance(self.scalar_law, Bernoulli):
            return DropConnect(self.scalar_law.p, self.layer, per_sample)
        return WeightNoise(self.scalar_law, self.layer, per_sample)

    @property
    def laws_by_layer(self) -> dict:
        """``{"input": law_on_V or None, "output": law_on_U or None}``."""
        on_v, on_u = self.scalar_law if isinstance(self.scalar_law, tuple) else (self.scalar_law, self.scalar_law)
        return {"input": on_v if self.layer in ("input", "both") else None,
                "output": on_u if self.layer in ("output", "both") else None}

    def law(self, n_in, width, n_out):
        n_in, width, n_out = self._sizes(n_in, width, n_out)
        laws = self.laws_by_layer
        two = laws["input"] is not None and laws["output"] is not None and laws["input"] != laws["output"]
        out = inp = None
        if laws["output"] is not None:
            out = independent_mask(laws["output"], (n_out, width), "p_U" if two else "p")
        if laws["input"] is not None:
            inp = independent_mask(laws["input"], (n_in, width), "p_V" if two else "p")
        return MaskLaw(n_in, width, n_out, self.per_sample_masks, output=out, input=inp)


# --------------------------------------------------------------------------- the named catalogue

class Dropout(UnitNoise):
    r"""Dropout on the hidden units: one inverted Bernoulli per unit, new per sample
    (``UnitNoise(Bernoulli(p))``).

    Its penalty, with :math:`\lambda = p / (1 - p)` and :math:`S = X X^\top / N`:

    .. math::

        R(U, V) = \lambda \sum_j \|u_j\|^2 \, v_j^\top S v_j .

    References
    ----------
    .. [1] N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever and R. Salakhutdinov,
       "Dropout: a simple way to prevent neural networks from overfitting", JMLR 15, 2014.
    .. [2] P\. Mianjy, R. Arora and R. Vidal, "On the implicit bias of dropout", ICML 2018.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, seed=0)
    >>> S = pt.second_moment(X)
    >>> R = pt.expected_penalty(pt.Dropout(0.5), U, V, S)
    >>> lam = pt.noise_strength(0.5)  # p / (1 - p)
    >>> bool(np.isclose(R, lam * np.sum((U * U).sum(0) * np.einsum("ij,ik,kj->j", V, S, V))))
    True
    >>> bool(np.isclose(R, pt.expected_penalty(pt.UnitNoise(pt.Bernoulli(0.5)), U, V, S)))
    True
    """

    fields = ("p",)

    def __init__(self, p=0.5):
        self.p = check_probability("p", p)
        super().__init__(Bernoulli(self.p))

    __repr__ = Strategy.__repr__


class GaussianDropout(UnitNoise):
    r"""Gaussian dropout on the hidden units: one :math:`N(1, p/(1-p))` per unit, new per
    sample (``UnitNoise(Gaussian(p))``).

    References
    ----------
    .. [1] N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever and R. Salakhutdinov,
       "Dropout: a simple way to prevent neural networks from overfitting", JMLR 15, 2014
       (section 10, multiplicative Gaussian noise).

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, seed=0)
    >>> S = pt.second_moment(X)

    Same variance as Dropout, so the same penalty; the laws differ in their higher moments,
    which the gradient noise sees:

    >>> bool(np.isclose(pt.expected_penalty(pt.GaussianDropout(0.5), U, V, S),
    ...                 pt.expected_penalty(pt.Dropout(0.5), U, V, S)))
    True
    >>> bool(pt.gradient_noise(pt.GaussianDropout(0.5), U, V, X, Y).trace
    ...      != pt.gradient_noise(pt.Dropout(0.5), U, V, X, Y).trace)
    True
    """

    fields = ("p",)

    def __init__(self, p=0.5):
        self.p = check_probability("p", p)
        super().__init__(Gaussian(self.p))

    __repr__ = Strategy.__repr__


class DropBlock(UnitNoise):
    r"""DropBlock over hidden units: one inverted Bernoulli per block of ``block_size``
    contiguous units (``block_size`` divides the width), new per sample
    (``UnitNoise(Bernoulli(p), block_size)``).

    References
    ----------
    .. [1] G. Ghiasi, T.-Y. Lin and Q. V. Le, "DropBlock: a regularization method for
       convolutional networks", NeurIPS 2018.
    .. [2] A. Pal, C. Lane, R. Vidal and B. Haeffele, "On the regularization properties of
       structured dropout", CVPR 2020.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, seed=0)
    >>> S = pt.second_moment(X)

    Blocks of 2 units: :math:`\lambda \sum_g \|U_g V_g^\top S^{1/2}\|_F^2`:

    >>> R = pt.expected_penalty(pt.DropBlock(0.5, block_size=2), U, V, S)
    >>> blocks = [slice(0, 2), slice(2, 4)]
    >>> bool(np.isclose(R, sum(np.trace(U[:, g] @ V[:, g].T @ S @ V[:, g] @ U[:, g].T) for g in blocks)))
    True
    """

    fields = ("p", "block_size")

    def __init__(self, p=0.5, block_size=1):
        self.p = check_probability("p", p)
        super().__init__(Bernoulli(self.p), block_size)

    __repr__ = Strategy.__repr__


class NodeDropout(UnitNoise):
    """Dropout with its own drop probability ``p[j]`` for every hidden unit (Y-Drop style):
    ``UnitNoise([Bernoulli(p_j) for each unit])``.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, seed=0)
    >>> S = pt.second_moment(X)
    >>> p = (0.1, 0.2, 0.3, 0.5)  # one rate per hidden unit
    >>> R = pt.expected_penalty(pt.NodeDropout(p), U, V, S)
    >>> lam = np.array([pt.noise_strength(q) for q in p])
    >>> bool(np.isclose(R, np.sum(lam * (U * U).sum(0) * np.einsum("ij,ik,kj->j", V, S, V))))
    True
    """

    fields = ("p",)

    def __init__(self, p=(0.5,)):
        if isinstance(p, (str, bytes, Mapping, set, frozenset)) or not hasattr(p, "__len__") or (
                isinstance(p, np.ndarray) and p.ndim != 1):
            raise invalid("p", "a sequence of per-unit drop probabilities", p)
        if len(p) == 0:
            raise invalid("p", "a non-empty sequence of per-unit drop probabilities (got an empty one)", p)
        self.p = tuple(check_probability(f"p[{j}]", q) for j, q in enumerate(p))
        super().__init__([Bernoulli(q) for q in self.p])

    __repr__ = Strategy.__repr__


class DropConnect(WeightNoise):
    r"""DropConnect: one inverted Bernoulli per weight of ``U`` (``layer="output"``), of ``V``
    (``"input"``) or of both; one draw shared by the mini-batch unless ``per_sample=True``
    (``WeightNoise(Bernoulli(p), layer, per_sample)``).

    Its penalty does not depend on ``per_sample`` (the gradient noise does): with
    :math:`\lambda = p / (1 - p)`, :math:`\lambda \sum_j \|u_j\|^2 v_j^\top S v_j` on the output
    layer and :math:`\lambda \sum_j \|u_j\|^2 v_j^\top D v_j`, :math:`D = \operatorname{diag}(S)`,
    on the input layer.

    References
    ----------
    .. [1] L. Wan, M. Zeiler, S. Zhang, Y. LeCun and R. Fergus, "Regularization of neural
       networks using DropConnect", ICML 2013.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, seed=0)
    >>> S = pt.second_moment(X)

    Noise on the weights of the output layer has the penalty of Dropout on the units (one mask
    per batch by default, which changes the gradient noise, not the penalty):

    >>> bool(np.isclose(pt.expected_penalty(pt.DropConnect(0.5), U, V, S),
    ...                 pt.expected_penalty(pt.Dropout(0.5), U, V, S)))
    True
    """

    fields = ("p", "layer", "per_sample")

    def __init__(self, p=0.5, layer="output", per_sample=False):
        self.p = check_probability("p", p)
        super().__init__(Bernoulli(self.p), layer, per_sample)

    __repr__ = Strategy.__repr__


class PerNodeDrop(WeightNoise):
    r"""PerNodeDrop: per-sample DropConnect, one variable per weight and per sample, inverted
    Bernoulli (``stir="drop"``) or :math:`N(1, p/(1-p))` (``stir="gaussian"``)
    (``WeightNoise(Bernoulli(p) or Gaussian(p), layer, per_sample=True)``).

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, seed=0)
    >>> S = pt.second_moment(X)

    On the input layer its penalty sees :math:`D = \mathrm{diag}(\mathrm{diag}(S))`, not
    :math:`S`, and equals Dropout's when the inputs are uncorrelated:

    >>> D = np.diag(np.diag(S))
    >>> bool(np.isclose(pt.expected_penalty(pt.PerNodeDrop(0.5), U, V, S),
    ...                 pt.expected_penalty(pt.Dropout(0.5), U, V, D)))
    True
    """

    fields = ("p", "layer", "stir")

    def __init__(self, p=0.5, layer="input", stir="drop"):
        self.p = check_probability("p", p)
        self.stir = check_choice("stir", stir, STIRS)
        super().__init__(Bernoulli(self.p) if stir == "drop" else Gaussian(self.p), layer, True)

    __repr__ = Strategy.__repr__


class HiddenNoise(Strategy):
    r"""Any multiplicative hidden-unit noise of mean 1 with the given covariance matrix,
    new per sample.  ``covariance`` is numeric (square, symmetric, positive semi-definite)
    or a sympy matrix (square and symmetric) for symbolic derivations.  The law fixes the
    first two moments only: routes that need more (the gradient covariance) refuse it.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, seed=0)
    >>> S = pt.second_moment(X)

    Any covariance :math:`C` of the hidden mask: :math:`\langle C, (U^\top U) \circ (V^\top S
    V) \rangle`; :math:`C = \lambda I` is Dropout:

    >>> C = np.array([[1.0, 0.5, 0.0, 0.0], [0.5, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    >>> R = pt.expected_penalty(pt.HiddenNoise(C), U, V, S)
    >>> bool(np.isclose(R, np.sum(C * (U.T @ U) * (V.T @ S @ V))))
    True
    >>> bool(np.isclose(pt.expected_penalty(pt.HiddenNoise(np.eye(4)), U, V, S),
    ...                 pt.expected_penalty(pt.Dropout(0.5), U, V, S)))
    True
    """

    fields = ("covariance",)

    def __init__(self, covariance=None):
        C = covariance
        if isinstance(C, sympy.MatrixBase):
            C = sympy.ImmutableMatrix(C)
            if not C.is_square:
                raise invalid("covariance", "a square matrix", f"a sympy matrix of shape {C.shape}")
            if C != C.T:
                raise InvalidParameterError("covariance must be symmetric; got a sympy matrix with C != C.T")
        else:
            C = np.array(as_real_array("covariance", C), dtype=np.float64)
            if C.ndim != 2 or C.shape[0] != C.shape[1] or C.shape[0] == 0:
                raise InvalidParameterError(f"covariance must be a non-empty square matrix; got shape {C.shape}")
            scale = max(1.0, float(np.abs(C).max()))
            if np.abs(C - C.T).max() > 1e-12 * scale:
                raise InvalidParameterError(
                    f"covariance must be symmetric; got max |C - C^T| = {np.abs(C - C.T).max():.3g}")
            C = (C + C.T) / 2
            w_min = float(np.linalg.eigvalsh(C).min())
            if w_min < -1e-10 * scale:
                raise InvalidParameterError(
                    f"covariance must be positive semi-definite; got smallest eigenvalue {w_min:.3g}")
            C.setflags(write=False)
        self.covariance = C
        self._freeze()

    def __eq__(self, other):
        if type(other) is not HiddenNoise:
            return False
        a, b = self.covariance, other.covariance
        if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            return a.shape == b.shape and bool(np.array_equal(a, b))
        return a == b

    def __hash__(self):
        C = self.covariance
        return hash(("HiddenNoise", C.tobytes() if isinstance(C, np.ndarray) else C))

    @property
    def min_width(self):
        return self.covariance.shape[0]

    @property
    def per_sample(self):
        return True

    def check_width(self, width):
        width = check_positive_int("width", width)
        if width != self.covariance.shape[0]:
            raise InvalidParameterError(
                f"width must equal the covariance size {self.covariance.shape[0]} for HiddenNoise; got width={width}"
            )
        return width

    def law(self, n_in, width, n_out):
        n_in, width, n_out = self._sizes(n_in, width, n_out)
        return MaskLaw(n_in, width, n_out, True, hidden=CovarianceMask(self.covariance))


#: The command-line names of the built-in strategies, each with its class
#: (:func:`strategy_from_name` builds one from its name).
STRATEGY_NAMES = {
    "dropout": Dropout,
    "gaussian-dropout": GaussianDropout,
    "dropblock": DropBlock,
    "node-dropout": NodeDropout,
    "dropconnect": DropConnect,
    "pernodedrop": PerNodeDrop,
}


def strategy_from_name(name: str, **params) -> Strategy:
    """Build a strategy from its command-line name (see ``STRATEGY_NAMES``) and parameters.

    A parameter that the strategy does not have is refused, naming the parameters it has.

    Examples
    --------
    >>> import pnd_theory as pt
    >>> sorted(pt.STRATEGY_NAMES)
    ['dropblock', 'dropconnect', 'dropout', 'gaussian-dropout', 'node-dropout', 'pernodedrop']
    >>> pt.strategy_from_name("dropout", p=0.5) == pt.Dropout(0.5)
    True
    >>> pt.strategy_from_name("dropout", layer="input")
    Traceback (most recent call last):
    ...
    pnd_theory...InvalidParameterError: layer does not apply to strategy 'dropout'; it takes p
    """
    cls = STRATEGY_NAMES[check_choice("strategy", name, tuple(STRATEGY_NAMES))]
    unknown = sorted(set(params) - set(cls.fields))
    if unknown:
        raise InvalidParameterError(
            f"{unknown[0]} does not apply to strategy {name!r}; it takes {', '.join(cls.fields)}")
    return cls(**params)
