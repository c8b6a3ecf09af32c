r"""Deep linear networks: the same routes at any depth.

.. math::

    f(x) = W_L N_{L-1} W_{L-1} \cdots N_1 W_1 x, \qquad
    E[\text{loss}] = \frac1N \|Y - W_L \cdots W_1 X\|_F^2 + R(W_1, \dots, W_L)

``weights = [W_1, ..., W_L]`` in forward order, :math:`W_l` of shape ``(n_l, n_{l-1})`` (the
``nn.Linear`` convention).  The noise is described by two keywords that every function takes:

* ``hidden``: one entry per hidden layer, a hidden-unit strategy (``pt.Dropout(p)``,
  ``pt.GaussianDropout(p)``, ``pt.DropBlock(p, b)``, ``pt.NodeDropout(p)``,
  ``pt.UnitNoise(law)``, ``pt.HiddenNoise(C)``) or None;
* ``weight_noise``: one entry per matrix, None, a scalar law (``pt.Bernoulli(p)``,
  ``pt.Gaussian(p)``, any :class:`~pnd_theory.ScalarLaw`: a fresh value per sample and
  connection, PerNodeDrop at that layer) or ``(law, "shared")`` (one draw per batch,
  DropConnect).

Both default to no noise.  The routes, each independent of the others:

* :func:`expected_loss`, :func:`expected_penalty`: closed form by propagating the second
  moment of the activations (numpy or torch, differentiable);
* :func:`exact_expected_loss`: enumeration over every mask configuration;
* :func:`monte_carlo_loss`: real sampled masks (CPU or GPU);
* :func:`derive`: the sympy penalty expanded over paths, its LaTeX, a numeric function and a
  compact form naming the :math:`\ell_2`-path regularizer and the other terms.

Beyond the loss: :func:`induced_penalty` (the regularizer induced on the map, numerically,
against the squared-nuclear-norm envelope :func:`envelope_coefficient`),
:func:`equalized_factors`, :func:`global_minimizer` and :func:`train` (torch, sampled masks).
At depth 2, ``weights = [V.T, U]``, every route gives what the single-layer API gives.

References
----------
.. [1] P. Mianjy and R. Arora, "On dropout and nuclear norm regularization", ICML 2019.

Examples
--------
The closed form against enumeration, and depth 2 against the single-layer API:

>>> import numpy as np
>>> import pnd_theory as pt
>>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
>>> weights, S = [V.T, U], pt.second_moment(X)
>>> R = pt.deep.expected_penalty(weights, S, hidden=[pt.Dropout(0.5)])
>>> exact = pt.deep.exact_expected_loss(weights, X, Y, hidden=[pt.Dropout(0.5)])
>>> bool(np.isclose(R, exact - pt.deep.plain_loss(weights, X, Y)))
True
>>> bool(np.isclose(R, pt.expected_penalty(pt.Dropout(0.5), U, V, S)))
True
"""

from .closed import expected_loss, expected_penalty, mean_map, plain_loss
from .network import DeepLaw, deep_law
from .routes import exact_expected_loss, monte_carlo_loss
from .symbolic import DeepCompactForm, DeepDerivation, derive
from .induced import (DeepMinimizerResult, InducedResult, envelope_coefficient, equalized_factors, global_minimizer,
                      induced_penalty)
from .training import DeepTrainingResult, train

__all__ = [
    "expected_loss", "expected_penalty", "plain_loss", "mean_map", "exact_expected_loss", "monte_carlo_loss",
    "derive", "DeepDerivation", "DeepCompactForm", "induced_penalty", "InducedResult", "envelope_coefficient",
    "equalized_factors", "global_minimizer", "DeepMinimizerResult", "train", "DeepTrainingResult", "DeepLaw",
    "deep_law",
]
