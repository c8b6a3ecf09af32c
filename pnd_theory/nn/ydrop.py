r"""Y-Drop: hidden-unit dropout whose per-unit rates follow the units' conductance.

.. math::

    \mathcal{I}_i = \Big(\frac1N \sum_{k=1}^N \sum_{c=1}^{n_{out}} Y_{ci}(x_k)^2\Big)^{1/2}
        = \|u_i\|\,\big(v_i^\top S v_i\big)^{1/2}, \qquad
    Y_{ci}(x) = U_{ci}\, v_i^\top x,

    z_i = \frac{\mathcal{I}_i - \operatorname{mean}_j \mathcal{I}_j}{\operatorname{std}_j \mathcal{I}_j
        + \epsilon}, \qquad
    \kappa_i = 1 - \sigma(z_i), \qquad
    p_i = 1 - \operatorname{clip}\Big((1 - p)\,\frac{\kappa_i}{\operatorname{mean}_j \kappa_j},
        \ 1 - p_{\max},\ 1 - p_{\min}\Big),

and the rates in use are refreshed at every step as a running average
:math:`\bar p \leftarrow \beta \bar p + (1 - \beta)\, p(\mathcal{I}_{\text{batch}})`.

**The rule** (Georgiou, Paraskevopoulos and Potamianos, 2024, "Y-Drop: A Conductance based
Dropout for fully connected layers"; the continuous logistic mapping, the mask type
``"sigmoid"`` of the public implementation described below).  The conductance :math:`Y_{ci}(x)` of hidden unit :math:`i` for output
:math:`c` is the path integral of the output's gradient along the unit's activation from a
baseline; in the linear network with baseline 0 it is exactly :math:`U_{ci} v_i^\top x`.  The
importances are standardised across the units of the layer (mean 0, standard deviation 1,
:math:`\epsilon = 10^{-6}` against a zero spread), a logistic function turns them into keep
probabilities that *fall* with importance, and one common factor restores the mean keep
probability :math:`1 - p` of plain dropout at rate :math:`p`: important units are dropped more
often, the mean rate stays :math:`p`.  The probabilities are refreshed from every mini-batch
and an exponential running average of them is kept (here :math:`\beta = 0.999` by default; the
public implementation below puts weight 0.01 on the new value, :math:`\beta = 0.99`), which
rescales the kept units and, in one of its modes, also draws the masks.  Here
the running average does both, so each step is per-unit dropout ``NodeDropout`` with the
averaged rates and inverted scaling: every mask has mean 1.  ``beta = 0`` refreshes the rates
from each batch alone.

**Choices stated.**  The importance of a unit aggregates its conductance over outputs and
samples; three aggregations are offered (``measure``):

* ``"rms"`` (default), the root mean square
  :math:`\big(\frac1N \sum_k \sum_c Y_{ci}(x_k)^2\big)^{1/2} = \|u_i\|\,\|S^{1/2} v_i\|`: the unit's
  contribution :math:`c_i` that the dropout penalty weighs;
* ``"mean_abs"``, the mean absolute conductance
  :math:`\frac1N \sum_k \sum_c |Y_{ci}(x_k)| = \|u_i\|_1\, \frac1N \sum_k |v_i^\top x_k|`;
* ``"abs_mean"``, the absolute mean conductance
  :math:`\big|\frac1N \sum_k \sum_c Y_{ci}(x_k)\big| = |\mathbf 1^\top u_i|\, |v_i^\top \bar x|`
  (zero for centred inputs).

Flipping a unit, :math:`(u_i, v_i) \to (-u_i, -v_i)`, a symmetry of the network, leaves every
conductance :math:`Y_{ci} = U_{ci} v_i^\top x` unchanged (both factors change sign), so every
aggregation, signed or not, is unchanged by it; so is rescaling :math:`(a u_i, v_i / a)`.  What
separates them is everything else: only the root mean square depends on the factors through
:math:`c_i` alone, so only it is the same for all factorizations with the same contributions; the
other two depend on the directions of :math:`u_i` and :math:`v_i` against the coordinate axes and
the mean input.  Consequence for the linear network (:mod:`pnd_theory.studies.ydrop_fixed_point`):
uniform rates are a fixed point of the rule with ``"rms"``, not with the other two.

**What the public code found does.**  The public repository ``ntua-el20160/Y-drop-DeiT``
(GitHub), which implements Y-Drop for CNNs, MLPs and DeiT, computes per batch the layer
conductance (a Gauss-Legendre path integral from a zero baseline) of each sample's *predicted
class* only, and aggregates it with the **signed mean over samples**, averaged over
``update_batches`` batches (``simplecnn.py``, ``calculate_scores``: ``score.mean(dim=0)``); its
rule (``updated_transformer/dynamic_dropout.py``, ``MyDropout.update_dropout_masks``, mask type
``"sigmoid"``) negates the score, standardises it, takes ``sigmoid(logit(1 - p) + scaler * z)``
as keep probability, clamps it into ``[0.3, 1 - min_dropout]``, and keeps an exponential running
average of it with weight ``elasticity`` (0.01) on the new value.  That aggregation is none of the
three above: it is ``"abs_mean"`` without the absolute value and with one output per sample.
Whether that repository is the paper authors' own could not be established from the code.
The authors clip the keep probabilities into :math:`[0, 1]` in the paper; here into
:math:`[1 - p_{\max}, 1 - p_{\min}]` (default :math:`[0.05, 1]`), so that no unit is dropped
always and every mask variance :math:`p_i / (1 - p_i)` is finite.

The masks are drawn by :func:`pnd_theory.laws._sampling.sample_mask` (one draw per sample and unit).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from .._backend import max_abs
from .._validation import (as_arrays, as_real_array, check_choice, check_generator, check_positive_int,
                           check_probability, check_real, invalid, is_tensor)
from ..laws._sampling import generator_for, sample_mask

__all__ = ["YDrop", "conductance", "unit_importance", "ydrop_rates", "DEFAULT_EPS", "DEFAULT_RATE_RANGE",
           "IMPORTANCE_MEASURES"]

#: the authors' guard against a zero spread of the importances
DEFAULT_EPS = 1e-6
#: aggregations of the conductance into a unit's importance (module docstring)
IMPORTANCE_MEASURES = ("rms", "mean_abs", "abs_mean")
#: drop rates are clipped into this range (the authors clip keep probabilities into [0, 1])
DEFAULT_RATE_RANGE = (0.0, 0.95)


def _check_factor_shapes(U, V, X=None, hidden=None):
    """Checked ``(U, V, X, hidden)`` of one backend (torch if any is a tensor), real and finite,
    with at least one output, unit and sample."""
    if hidden is not None:
        xp, a = as_arrays(U=U, hidden=hidden)
    else:
        xp, a = as_arrays(U=U, V=V, X=X)
    U = a["U"]
    if 0 in U.shape:
        raise invalid("U", "a matrix (n_out, d) with at least one output and one unit", tuple(U.shape))
    d = U.shape[1]
    if hidden is not None:
        hidden = a["hidden"]
        if hidden.shape[1] != d or hidden.shape[0] == 0:
            raise invalid("hidden", f"an array (N, d={d}) with at least one sample", tuple(hidden.shape))
        return xp, U, None, None, hidden
    V, X = a["V"], a["X"]
    if V.shape[1] != d or V.shape[0] == 0:
        raise invalid("V", f"a matrix (n_in, d={d}) with n_in >= 1", tuple(V.shape))
    if X.shape[0] != V.shape[0] or X.shape[1] == 0:
        raise invalid("X", f"an array (n_in={V.shape[0]}, N) with N >= 1, samples as columns", tuple(X.shape))
    return xp, U, V, X, None


def conductance(U, V, X):
    r"""Conductance of every hidden unit for every output on every sample, baseline 0.

    .. math::

        Y_{ci}(x_k) = U_{ci}\, v_i^\top x_k

    Parameters
    ----------
    U : array (n_out, d)
    V : array (n_in, d)
    X : array (n_in, N)
        Samples as columns.  numpy in, numpy out; torch in, torch out.

    Returns
    -------
    array (N, n_out, d)

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> C = pt.conductance(U, V, X)
    >>> C.shape, bool(np.allclose(C.sum(axis=2), (U @ V.T @ X).T))  # completeness: sums to f(x)
    ((8, 2, 4), True)
    """
    _, U, V, X, _ = _check_factor_shapes(U, V, X)
    H = X.T @ V  # (N, d): v_i^T x_k
    return U[None, :, :] * H[:, None, :]


def unit_importance(U, V, X=None, *, hidden=None, measure="rms"):
    r"""Importance of every hidden unit: its conductance aggregated over outputs and samples.

    .. math::

        \text{rms:}\ \Big(\frac1N \sum_k \sum_c Y_{ci}(x_k)^2\Big)^{1/2}
            = \|u_i\|\,\Big(\frac1N \sum_k h_{ki}^2\Big)^{1/2}, \quad
        \text{mean\_abs:}\ \frac1N \sum_k \sum_c |Y_{ci}(x_k)| = \|u_i\|_1\, \frac1N \sum_k |h_{ki}|, \quad
        \text{abs\_mean:}\ \Big|\frac1N \sum_k \sum_c Y_{ci}(x_k)\Big| = \Big|\sum_c U_{ci}\Big|\,
            \Big|\frac1N \sum_k h_{ki}\Big|

    with :math:`h_{ki} = v_i^\top x_k`.  Only the root mean square depends on the factors
    through the unit's contribution alone, so only it leaves uniform rates a fixed point of the
    rule (:ref:`theory-ydrop` of the theory page).

    Parameters
    ----------
    U : array (n_out, d)
    V : array (n_in, d), optional
        Not needed when ``hidden`` is given.
    X : array (n_in, N), optional
        Samples as columns.
    hidden : array (N, d), optional, keyword-only
        The activations :math:`v_i^\top x_k` themselves (samples as rows), as a layer sees them.
    measure : {"rms", "mean_abs", "abs_mean"}, keyword-only
        The aggregation (default the root mean square).

    Returns
    -------
    array (d,)
        numpy for numpy inputs, torch for torch inputs.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> rms = np.sqrt((pt.conductance(U, V, X) ** 2).sum(axis=1).mean(axis=0))
    >>> bool(np.allclose(pt.unit_importance(U, V, X), rms))
    True
    """
    measure = check_choice("measure", measure, IMPORTANCE_MEASURES)
    if hidden is None:
        if V is None or X is None:
            raise invalid("X", "given with V when hidden is not", X)
        xp, U, V, X, _ = _check_factor_shapes(U, V, X)
        hidden = X.T @ V
    else:
        xp, U, _, _, hidden = _check_factor_shapes(U, None, hidden=hidden)
    # both factors are homogeneous of degree 1: computed on the scaled arrays, no overflow
    # where the importance itself is representable
    su, sh = max_abs(xp, U), max_abs(xp, hidden)
    Un, Hn = U / (su or 1.0), hidden / (sh or 1.0)
    lib = torch if xp is torch else np
    if measure == "rms":
        norms = lib.sqrt((Un ** 2).sum(0)) * lib.sqrt((Hn ** 2).mean(0))
    elif measure == "mean_abs":
        norms = lib.abs(Un).sum(0) * lib.abs(Hn).mean(0)
    else:
        norms = lib.abs(Un.sum(0)) * lib.abs(Hn.mean(0))
    return norms * su * sh


def _check_rule(p, eps, rate_range):
    p = check_probability("p", p)
    eps = check_real("eps", eps, "a positive finite real number", low=0.0, low_open=True)
    try:
        low, high = (float(v) for v in rate_range)
    except (TypeError, ValueError):
        raise invalid("rate_range", "a pair (p_min, p_max) with 0 <= p_min <= p <= p_max < 1", rate_range) from None
    if not (0.0 <= low <= p <= high < 1.0):
        raise invalid("rate_range", f"a pair (p_min, p_max) with 0 <= p_min <= p={p} <= p_max < 1", rate_range)
    return p, eps, (low, high)


def ydrop_rates(importance, p=0.5, *, eps=DEFAULT_EPS, rate_range=DEFAULT_RATE_RANGE):
    r"""Drop rates of the Y-Drop rule from the units' importances.

    .. math::

        z_i = \frac{\mathcal{I}_i - \operatorname{mean}\mathcal{I}}{\operatorname{std}\mathcal{I} + \epsilon},
        \quad \kappa_i = 1 - \sigma(z_i), \quad
        p_i = 1 - \operatorname{clip}\Big(\frac{(1 - p)\,\kappa_i}{\operatorname{mean}\kappa},
            1 - p_{\max}, 1 - p_{\min}\Big)

    (``std`` with Bessel's correction, as ``torch.std``).  Equal importances give every unit
    the rate ``p``; the rates fall as the importance falls, and their mean is ``p`` unless the
    clip binds.

    Parameters
    ----------
    importance : array (d,)
        Non-negative importances (:func:`unit_importance`), at least 2 units.
    p : float
        The mean drop rate, in [0, 1).
    eps : float, keyword-only
        Added to the spread (the authors' :math:`10^{-6}`).
    rate_range : (float, float), keyword-only
        ``(p_min, p_max)`` with ``0 <= p_min <= p <= p_max < 1``.

    Returns
    -------
    array (d,)
        numpy for numpy input, torch for torch input.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> pt.ydrop_rates(np.ones(4), p=0.5)  # equal importances: every unit at p
    array([0.5, 0.5, 0.5, 0.5])
    >>> rates = pt.ydrop_rates(np.array([0.2, 0.3, 0.8, 2.5]), p=0.5)
    >>> bool(np.all(np.diff(rates) > 0)), round(float(rates.mean()), 6)  # important units dropped more
    (True, 0.5)
    """
    p, eps, (low, high) = _check_rule(p, eps, rate_range)
    torch_in = is_tensor(importance)
    imp = torch.as_tensor(as_real_array("importance", importance, keep_tensor=True))
    if imp.ndim != 1 or imp.numel() < 2:
        raise invalid("importance", "a 1-D array of at least 2 unit importances", tuple(imp.shape))
    # z is invariant to scaling the importances but for eps: computed on imp / max |imp|, so
    # that importances near the largest float standardise without overflow
    m = max_abs(torch, imp) or 1.0
    centred, spread = imp / m - (imp / m).mean(), (imp / m).std() + eps / m
    z = torch.where(spread > 0, centred / torch.where(spread > 0, spread, 1.0), 0.0 * centred)
    kappa = 1.0 - torch.sigmoid(z)
    keep = torch.clamp((1.0 - p) * kappa / kappa.mean(), 1.0 - high, 1.0 - low)
    rates = 1.0 - keep
    return rates if torch_in else rates.numpy()


class YDrop(nn.Module):
    r"""Y-Drop on ``width`` hidden units: per-unit dropout whose rates follow the conductance.

    .. math::

        h_{k,i} \mapsto h_{k,i}\, \frac{B_{k,i}}{1 - \bar p_i}, \quad
        B_{k,i} \sim \mathrm{Bernoulli}(1 - \bar p_i), \qquad
        \bar p \leftarrow \beta\,\bar p + (1 - \beta)\,p(\mathcal{I})

    with :math:`p(\mathcal{I})` the rule of :func:`pnd_theory.ydrop_rates` (importances
    standardised across the units, turned by a logistic function into keep probabilities that
    fall with importance, scaled to the mean keep probability :math:`1 - p`; :ref:`theory-ydrop`
    of the theory page).  In
    training mode :meth:`forward` refreshes the running rates from the importances it is given
    (or computes them from ``output_weight``), then draws a mask per sample and unit with the
    running rates; in evaluation mode it is the identity.  Starts from the uniform rates ``p``.

    Parameters
    ----------
    width : int
        Number of hidden units (at least 2).
    p : float
        Mean drop rate, in [0, 1).
    beta : float
        Weight of the past in the running average of the rates, in [0, 1); 0 refreshes the
        rates from each batch alone.  The public implementation ``ntua-el20160/Y-drop-DeiT``
        (GitHub) uses 0.99 (weight 0.01 on the new rates).
    eps, rate_range
        Of the rule (:func:`ydrop_rates`).
    generator : torch.Generator, optional
        Source of the masks.
    measure : {"rms", "mean_abs", "abs_mean"}
        Aggregation of the conductance when the importances are computed from ``output_weight``
        (:func:`unit_importance`).

    Attributes
    ----------
    rates : torch.Tensor (width,)
        The running drop rates :math:`\bar p` (a buffer).

    Examples
    --------
    With ``beta = 0`` the rates are the rule's for the importances given, and important units
    are dropped more often; in evaluation mode the layer is the identity:

    >>> import numpy as np
    >>> import torch
    >>> import pnd_theory as pt
    >>> layer = pt.nn.YDrop(4, p=0.5, beta=0.0, generator=torch.Generator().manual_seed(0))
    >>> importance = np.array([0.2, 0.3, 0.8, 2.5])
    >>> h = layer(torch.ones(3, 4, dtype=torch.float64), importance=importance)
    >>> bool(np.allclose(layer.rates.numpy(), pt.ydrop_rates(importance, p=0.5)))
    True
    >>> bool(np.all(np.diff(layer.rates.numpy()) > 0)), layer.eval()(h) is h
    (True, True)
    """

    def __init__(self, width, p=0.5, beta=0.999, *, eps=DEFAULT_EPS, rate_range=DEFAULT_RATE_RANGE,
                 generator=None, measure="rms"):
        super().__init__()
        width = check_positive_int("width", width)
        if width < 2:
            raise invalid("width", "at least 2 (the rule standardises importances across units)", width)
        self.p, self.eps, self.rate_range = _check_rule(p, eps, rate_range)
        self.beta = check_real("beta", beta, "a real number in [0, 1)", low=0.0, high=1.0, high_open=True)
        self.generator = check_generator(generator)
        self.measure = check_choice("measure", measure, IMPORTANCE_MEASURES)
        self.register_buffer("rates", torch.full((width,), self.p, dtype=torch.float64))

    @property
    def width(self) -> int:
        return self.rates.numel()

    def rule(self, importance: Tensor) -> Tensor:
        """The rates of the rule for these importances (:func:`ydrop_rates` with this layer's settings)."""
        return ydrop_rates(importance, self.p, eps=self.eps, rate_range=self.rate_range)

    @torch.no_grad()
    def update(self, importance) -> Tensor:
        r"""Refresh the running rates: :math:`\bar p \leftarrow \beta \bar p + (1 - \beta) p(\mathcal{I})`."""
        imp = torch.as_tensor(importance).detach().to(torch.float64).reshape(-1).cpu()
        if imp.numel() != self.width:
            raise invalid("importance", f"a vector of {self.width} unit importances", tuple(imp.shape))
        new = self.rule(imp).to(self.rates.device)
        self.rates.mul_(self.beta).add_((1.0 - self.beta) * new)
        return self.rates

    def forward(self, input: Tensor, importance=None, output_weight=None) -> Tensor:
        r"""Mask ``input`` of shape ``(batch, width)``.

        In training mode, first refresh the rates from ``importance`` or, if
        ``output_weight`` (the next layer's weight :math:`U`, ``(n_out, width)``) is given,
        from :func:`unit_importance` of this batch; neither keeps the rates.
        """
        if not torch.is_tensor(input) or input.ndim != 2 or input.shape[1] != self.width:
            raise invalid("input", f"a torch tensor of shape (batch, {self.width})",
                          tuple(input.shape) if torch.is_tensor(input) else type(input).__name__)
        if not self.training:
            return input
        if importance is None and output_weight is not None:
            importance = unit_importance(output_weight.detach(), None, hidden=input.detach(), measure=self.measure)
        if importance is not None:
            self.update(importance)
        gen = generator_for(self.generator, input.device)
        rates = self.rates.to(device=input.device, dtype=input.dtype)
        return input * sample_mask(input.shape, rates, "drop", generator=gen, device=input.device, dtype=input.dtype)

    def extra_repr(self) -> str:
        return (f"width={self.width}, p={self.p}, beta={self.beta}, eps={self.eps}, rate_range={self.rate_range}, "
                f"measure={self.measure!r}")
