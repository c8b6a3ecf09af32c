r"""Expected loss by exact enumeration over every mask configuration.

.. math::

    E[\text{loss}] = \sum_{\text{configurations } c} P(c)\;
        \frac1N \sum_k \|y_k - f_c(x_k)\|^2 .

Why this is exact for every law, continuous ones included: the loss is a polynomial of degree
at most 2 in every mask variable (each variable enters the prediction linearly).  Its
expectation therefore depends on each independent variable only through its moments up to
order 2, and a finite law with the same moments gives the same expectation to rounding.  Each
variable is replaced by its law's support of order :data:`LOSS_ORDER` (a finite law's own
support; the Gauss quadrature of a continuous one, e.g. :math:`1 \pm \sqrt\lambda` for
:math:`N(1, \lambda)`; independent signs :math:`z` for a
:class:`~pnd_theory.laws.strategies.HiddenNoise` mask :math:`\xi = 1 + L z`).  Supports may have any
number of points: configurations are enumerated in mixed radix.  Per-sample laws are
enumerated for one sample at a time: by linearity the expectation of the mean over samples is
the mean of the per-sample expectations, so one enumeration over a single mask serves all
samples.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import InvalidParameterError, as_problem, check_positive_int, warn_if_beyond_floats
from ..laws.strategies import validate_strategy

MAX_CONFIGURATIONS = 2**20

#: moment order that the loss needs of each variable (a support of order 2 has two points for
#: a continuous law, which also matches its third moment)
LOSS_ORDER = 2


def enumerate_masks(law, max_configurations=MAX_CONFIGURATIONS, chunk=4096, order=LOSS_ORDER):
    """Yield ``(probabilities, masks)`` over all configurations of ``law``, in chunks.

    Every variable takes the values of its law's support of ``order``; ``masks`` maps each random
    component to a float64 tensor of shape ``(chunk, 1, *component_shape)`` (one mask for all
    samples); the probabilities of all chunks sum to 1.
    """
    law.check_order(order, "exact enumeration")
    comps = law.components
    values, probs = [], []
    for c in comps.values():
        v, p = c.support(order)
        values += list(v)
        probs += list(p)
    n = len(values)
    sizes = np.array([len(v) for v in values], dtype=np.int64)
    total = 1
    for k in sizes.tolist():
        total *= int(k)
    if total > max_configurations:
        desc = f"2^{n} = {total}" if np.all(sizes == 2) else f"{total}"
        raise InvalidParameterError(
            f"max_configurations must cover the {desc} mask configurations of this law; got "
            f"max_configurations={max_configurations}: use smaller sizes or monte_carlo_loss")
    width = int(sizes.max(initial=1))
    values_t = torch.zeros((n, width), dtype=torch.float64)
    probs_t = torch.zeros((n, width), dtype=torch.float64)
    for r, (v, p) in enumerate(zip(values, probs)):
        values_t[r, :len(v)] = torch.as_tensor(v, dtype=torch.float64)
        probs_t[r, :len(p)] = torch.as_tensor(p, dtype=torch.float64)
    radix = torch.as_tensor(sizes)
    place = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.int64), radix[:-1]]), 0) if n else radix
    rows = torch.arange(n)
    splits = np.cumsum([0] + [c.n_variables for c in comps.values()])
    for start in range(0, total, chunk):
        idx = torch.arange(start, min(start + chunk, total))
        digits = (idx[:, None] // place) % radix
        z = values_t[rows, digits]
        weight = probs_t[rows, digits].prod(dim=1)
        masks = {
            name: c.entries(z[:, splits[i]:splits[i + 1]]).unsqueeze(1)
            for i, (name, c) in enumerate(comps.items())
        }
        yield weight, masks


def exact_expected_loss_of_law(law, U, V, X, Y, max_configurations=MAX_CONFIGURATIONS):
    """:func:`exact_expected_loss` for a :class:`~pnd_theory.laws.MaskLaw` and torch tensors of one
    device and dtype; returns a 0-d tensor (differentiable through ``U`` and ``V``)."""
    total = U.new_zeros(())
    for weight, masks in enumerate_masks(law, max_configurations):
        masks = {k: m.to(device=U.device, dtype=U.dtype) for k, m in masks.items()}
        residual = Y.T - law.predict(U, V, X, masks)
        total = total + (weight.to(device=U.device, dtype=U.dtype) * (residual * residual).sum(-1).mean(-1)).sum()
    return total


def exact_expected_loss(strategy, U, V, X, Y, max_configurations=MAX_CONFIGURATIONS) -> float:
    r"""Expected loss by summing over all mask configurations (small sizes only).

    .. math::

        E[\text{loss}] = \sum_c P(c)\, \frac1N \sum_k \|y_k - f_c(x_k)\|^2

    Every mask variable takes the values of a finite support with its law's first two moments
    (a finite law's own, the Gauss quadrature of a continuous law, signs for a
    :class:`HiddenNoise`); the loss is of degree at most 2 in each variable, so the sum is exact
    for every law (theory page, :ref:`theory-laws`).

    Parameters
    ----------
    strategy : Strategy
    U, V, X, Y : arrays
        Shapes ``(n_out, d)``, ``(n_in, d)``, ``(n_in, N)``, ``(n_out, N)``.
    max_configurations : int
        Refuse (:class:`InvalidParameterError`) when the law has more configurations than this
        (default :math:`2^{20}`), before any work.

    Returns
    -------
    float, or a 0-d torch tensor for torch inputs (on their device, differentiable)

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> exact = pt.exact_expected_loss(pt.Dropout(0.5), U, V, X, Y)  # the 2**4 masks of each sample
    >>> bool(np.isclose(exact, pt.expected_loss(pt.Dropout(0.5), U, V, X, Y)))
    True

    A Gaussian mask is enumerated through the Gauss points matching its moments up to order 2:

    >>> bool(np.isclose(pt.exact_expected_loss(pt.GaussianDropout(0.5), U, V, X, Y), exact))
    True
    """
    validate_strategy(strategy)
    max_configurations = check_positive_int("max_configurations", max_configurations)
    xp, U, V, X, Y = as_problem(U, V, X, Y)
    law = strategy.law(V.shape[0], V.shape[1], U.shape[0])
    if xp is np:
        value = exact_expected_loss_of_law(law, *(torch.as_tensor(a) for a in (U, V, X, Y)), max_configurations)
    else:
        value = exact_expected_loss_of_law(law, U, V, X, Y, max_configurations)
    warn_if_beyond_floats(value, "exact_expected_loss", "the expected loss of these U, V, X, Y")
    return float(value) if xp is np else value

