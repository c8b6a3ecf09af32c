r"""Gradient noise of the mini-batch loss: what per-sample masks change.

For a fixed batch :math:`(x_k, y_k)_{k=1}^B` the mini-batch loss and its gradient with
respect to :math:`\theta = (\mathrm{vec}\,U, \mathrm{vec}\,V)` (both row-major) are

.. math::

    \ell = \frac1B \sum_k \|y_k - f_{M_k}(x_k)\|^2, \qquad
    g = \nabla_\theta \ell = \frac1B \sum_k g_k(M_k),

with :math:`M_k = M` for all :math:`k` when one mask is shared by the batch (framework
DropConnect) and independent :math:`M_k` when masks are drawn per sample (PerNodeDrop,
Dropout).  The expected gradient is the same in both cases, :math:`E[g] = \nabla(L + R)` on
the batch; the mask-induced covariance is not:

.. math::

    \mathrm{Cov}[g] = \frac1{B^2} \sum_k C_{kk}\ \text{(per sample)}, \qquad
    \mathrm{Cov}[g] = \frac1{B^2} \sum_{k,l} C_{kl}\ \text{(shared)}, \qquad
    C_{kl} = \mathrm{Cov}_M[g_k(M), g_l(M)].

**Structure used by the closed form.**  Write every mask entry as :math:`1 + e` with
:math:`e` centred.  When only one component of the mask is random and its variables are
independent (hidden-unit noise, or weight noise on one layer), every coordinate of
:math:`g_k` is a sum of products of two affine forms in the centred variables,

.. math::

    g_{k,a} = \sum_t (A_{kat} + \alpha_{kat}^\top e)(B_{kat} + \beta_{kat}^\top e),

for instance, with output-layer weight noise :math:`M_U = 1 + E` and :math:`a_k = V^\top x_k`,
:math:`\bar r_k = U a_k - y_k`,

.. math::

    \partial_{U_{oj}} \ell_k = 2 a_{kj} (1 + E_{oj})
        \big(\bar r_{ko} + \textstyle\sum_m U_{om} a_{km} E_{om}\big), \qquad
    \partial_{V_{ij}} \ell_k = 2 x_{ki} \textstyle\sum_o U_{oj} (1 + E_{oj})
        \big(\bar r_{ko} + \sum_m U_{om} a_{km} E_{om}\big),

and with input-layer weight noise :math:`M_V = 1 + E`, :math:`\delta_{kj} = \sum_i V_{ij}
x_{ki} E_{ij}`, :math:`\bar c_k = U^\top \bar r_k`, :math:`H = U^\top U`,

.. math::

    \partial_{U_{oj}} \ell_k = 2 (\bar r_{ko} + \textstyle\sum_m U_{om} \delta_{km})
        (a_{kj} + \delta_{kj}), \qquad
    \partial_{V_{ij}} \ell_k = 2 x_{ki} (1 + E_{ij})
        (\bar c_{kj} + \textstyle\sum_m H_{jm} \delta_{km}).

So :math:`g = c + b^\top e + e^\top Q e` is quadratic in :math:`e` (each variable to degree at
most 2), and for independent centred variables with variances :math:`\lambda_v`, third
moments :math:`\kappa_v` and fourth cumulants :math:`\chi_v = \mu_{4,v} - 3\lambda_v^2`

.. math::

    E[g_a] = c_a + \sum_v \lambda_v Q_{a,vv}, \qquad
    \mathrm{Cov}(g_a, g'_b) = \sum_v \lambda_v b_{av} b'_{bv}
      + \sum_v \kappa_v (b_{av} Q'_{b,vv} + b'_{bv} Q_{a,vv})
      + \sum_v \chi_v Q_{a,vv} Q'_{b,vv}
      + 2 \sum_{v,w} \lambda_v \lambda_w Q_{a,vw} Q'_{b,vw},

exact for any such law: a Gaussian mask (:math:`\kappa = 0`, :math:`\chi = 0`) and an
inverted Bernoulli mask of the same variance (:math:`\kappa = \lambda(\lambda - 1)`,
:math:`\chi = \lambda(\lambda^2 - 4\lambda + 1)`) give the same expected loss but different
gradient covariances.  The moments are read from the law
(:func:`~pnd_theory.laws.strategies.scalar_moment`); the closed form and the enumeration never
branch on the strategy, only on which mask component is random (only the torch-layer Monte
Carlo maps strategies to layers).

**Scaling.**  For weight noise the trace of :math:`C_{kl}` is a sum of products of
per-sample factors; for the output layer, with :math:`w_{koj} = U_{oj} a_{kj}` and
:math:`W_{kl,o} = \sum_m \lambda_{om} U_{om}^2 a_{km} a_{lm}`,

.. math::

    \mathrm{tr}\,C_{kl} = 4 \sum_{oj} \big(a_{kj} a_{lj} + x_k^\top x_l\, U_{oj}^2\big)
      \Big[(1 + \lambda_{oj}) W_{kl,o} + \lambda_{oj} (\bar r_{ko} + w_{koj})(\bar r_{lo} + w_{loj})
      + \kappa_{oj} (\bar r_{ko} w_{loj} + \bar r_{lo} w_{koj} + 2 w_{koj} w_{loj})
      + (\chi_{oj} + \lambda_{oj}^2 - \lambda_{oj}) w_{koj} w_{loj}\Big]

(the input layer has a similar sum, in :func:`_weight_trace_terms`).  Summed over
:math:`k, l` the samples contract first, so the per-batch trace costs :math:`O(N)`, not
:math:`O(N^2)`, and no dense coefficient array is formed.

**Exact enumeration** (any law of independent variables, several components included):
each variable is replaced by a discrete law with the same moments up to order 4 (a
Bernoulli variable is its own two-point law; :math:`N(1, \lambda)` becomes the 3-point
Gauss-Hermite rule :math:`1 - \sqrt{3\lambda}, 1, 1 + \sqrt{3\lambda}` with weights
1/6, 2/3, 1/6, exact to order 5), and the gradient of every sample is computed by torch
autograd through :meth:`MaskLaw.predict` for every configuration.

**Monte Carlo** (:func:`monte_carlo_gradient_noise`) uses real autograd gradients, either of
:class:`~pnd_theory.nn.network.LinearNetwork`'s mini-batch loss or of a two-layer network
built from the torch layers (:class:`~pnd_theory.nn.PerNodeDropLinear`,
:class:`~pnd_theory.nn.DropConnectLinear`), with :math:`V^\top` as the first layer's weight
and :math:`U` as the second's.

**Batch size** (:func:`gradient_noise_vs_batch_size`): with :math:`\bar T_1 = \frac1N
\sum_k \mathrm{tr}\, C_{kk}` and :math:`\bar T_\infty = \frac1{N^2}\sum_{k,l}
\mathrm{tr}\, C_{kl}` (the mask-induced trace of the full-data gradient with one shared
mask), batches of :math:`B` samples drawn uniformly with replacement give

.. math::

    E\,\mathrm{tr\,Cov}_{\text{per sample}} = \frac{\bar T_1}{B}, \qquad
    E\,\mathrm{tr\,Cov}_{\text{shared}} = \bar T_\infty + \frac{\bar T_1 - \bar T_\infty}{B},

so the ratio is :math:`1 + (B - 1)\rho` with :math:`\rho = \bar T_\infty / \bar T_1`, the
average correlation of the mask noise of two samples: how similar the samples of a batch
are decides the gap.

**Local reparameterization** (``local_reparameterization=True``): the Gaussian PerNodeDrop
layer's fast path :math:`z = W x + \sqrt{\lambda (W \circ W)(x \circ x)}\,\varepsilon` has the
exact layer's forward law but a different gradient: :math:`\partial z_j / \partial W_{ji} =
x_i + \sqrt\lambda\, \varepsilon_j W_{ji} x_i^2 / \sigma_j` with one :math:`\varepsilon_j`
per unit, instead of :math:`M_{ji} x_i` with independent :math:`M_{ji}`.  Its gradient is
again a sum of products of affine forms, now in the standard normals :math:`\varepsilon`,
and the same formula gives its covariance in closed form.

The routes live in one module each: :mod:`.closed_form` (moments up to order 4),
:mod:`.enumeration` (exact, small sizes), :mod:`.monte_carlo` (autograd over real masks),
:mod:`.batch_size` (the law of the batch size) and :mod:`.covariance` (the entry point that
chooses between the first two); the SGD experiment is :func:`pnd_theory.stationary_spread`.
"""

from .batch_size import gradient_noise_vs_batch_size, monte_carlo_gradient_noise_vs_batch_size
from .covariance import gradient_noise, mask_sharing_pair
from .monte_carlo import monte_carlo_gradient_noise
from .results import BatchSizeNoise, GradientNoise, MonteCarloBatchSizeNoise, MonteCarloGradientNoise, StationarySpread

__all__ = [
    "GradientNoise",
    "BatchSizeNoise",
    "MonteCarloGradientNoise",
    "MonteCarloBatchSizeNoise",
    "StationarySpread",
    "gradient_noise",
    "gradient_noise_vs_batch_size",
    "monte_carlo_gradient_noise",
    "monte_carlo_gradient_noise_vs_batch_size",
    "mask_sharing_pair",
]
