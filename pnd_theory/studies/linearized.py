r"""The two-layer network's stationary spread under masks, from the SGD dynamics linearized at
the global minimizer.

With both layers trained there is no closed form for the iterates' law (the step is not affine
in :math:`\theta = (\mathrm{vec}\,U, \mathrm{vec}\,V)`), but near the global minimizer
:math:`\theta^*` of the expected loss (:func:`pnd_theory.global_minimizer`, balanced factors)
one full-batch SGD step with fresh masks is, to first order in :math:`\delta = \theta - \theta^*`,

.. math::

    \delta_{t+1} = (I - \eta H)\,\delta_t - \eta\, \varepsilon_t, \qquad
    H = \nabla^2 (L + R)(\theta^*), \qquad
    \mathrm{Cov}\,\varepsilon_t = \Sigma = \mathrm{Cov}_M\, \nabla_\theta \hat L_M(\theta^*),

:math:`\varepsilon_t` the mask-induced gradient noise at the optimum (mean zero there,
:func:`pnd_theory.gradient_noise`).  Its stationary covariance solves the Stein equation
:math:`P = (I - \eta H) P (I - \eta H) + \eta^2 \Sigma`, in the eigenbasis
:math:`H = Q\,\mathrm{diag}(h)\,Q^\top`

.. math::

    (Q^\top P Q)_{ij} = \frac{\eta\, (Q^\top \Sigma Q)_{ij}}{h_i + h_j - \eta\, h_i h_j},

and the spread of the product :math:`A = U V^\top` is :math:`\mathrm{tr}(J P J^\top)`,
:math:`J = \partial\,\mathrm{vec}\,A / \partial \theta` at :math:`\theta^*`.  The prediction is
:math:`\eta` times a constant plus :math:`O(\eta^2)` (the terms the linearization drops are of
higher order in :math:`\delta`, whose size is :math:`O(\sqrt\eta)`).

:math:`H` is singular: rescaling a unit (:math:`u_j \to c\,u_j`, :math:`v_j \to v_j / c`)
changes no masked network, so every sampled gradient is orthogonal to those directions and the
noise has no part there; the null space carries no spread and the product does not move along
it to first order.  Noise in a null direction of :math:`H` (a flat valley of minimizers that
the masks push along) has no stationary law and is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .._display import ResultDisplay
from .._validation import InvalidParameterError, as_numpy_arrays, check_data, check_positive_int, check_real
from ..gradient_covariance.covariance import gradient_noise
from ..laws.strategies import validate_strategy
from ..regularizers.minimizers import global_minimizer
from ..routes.penalty import expected_loss

__all__ = ["LinearizedSpread", "linearized_spread"]

#: the noise's share in the null space of H above which no stationary law is claimed
_NULL_NOISE = 1e-8


@dataclass(eq=False)
class LinearizedSpread(ResultDisplay):
    r"""Stationary spread of full-batch SGD with masks, linearized at the global minimizer
    (:func:`linearized_spread`).

    Attributes
    ----------
    spread : float
        :math:`\mathrm{tr}\,\mathrm{Cov}(A)`, :math:`A = U V^\top`, the quantity that
        :func:`pnd_theory.stationary_spread` and :func:`pnd_theory.noise_mode_spread` estimate.
    spread_per_lr : float
        The leading coefficient: ``spread`` is ``spread_per_lr * lr`` to first order.
    covariance : ndarray (P, P)
        Stationary covariance of :math:`\theta = (\mathrm{vec}\,U, \mathrm{vec}\,V)` (C order).
    product_covariance : ndarray (n_out * n_in, n_out * n_in)
        :math:`J P J^\top`, the covariance of :math:`\mathrm{vec}\,A`.
    hessian, noise : ndarray (P, P)
        :math:`H` and :math:`\Sigma` at the optimum.
    curvatures : ndarray (P,)
        The eigenvalues :math:`h` of :math:`H`, ascending.
    max_stable_lr : float
        :math:`2 / h_{\max}`, beyond which the linearized dynamics diverge.
    lr : float
    per_sample : bool
        Whether the masks are drawn per sample.
    optimum : MinimizerResult
    """

    spread: float
    spread_per_lr: float
    covariance: np.ndarray = field(repr=False)
    product_covariance: np.ndarray = field(repr=False)
    hessian: np.ndarray = field(repr=False)
    noise: np.ndarray = field(repr=False)
    curvatures: np.ndarray = field(repr=False)
    max_stable_lr: float
    lr: float
    per_sample: bool
    optimum: object = field(repr=False)

    def _display_items(self):
        return [("spread", self.spread), ("spread_per_lr", self.spread_per_lr), ("lr", self.lr),
                ("max_stable_lr", self.max_stable_lr), ("per_sample", self.per_sample),
                ("smallest_curvature", float(self.curvatures[self.curvatures > 0][0]))]


def _hessian_and_jacobian(strategy, U, V, X, Y):
    r""":math:`\nabla^2 (L + R)` at ``(U, V)`` and :math:`\partial\,\mathrm{vec}(U V^\top) / \partial \theta`."""
    theta = torch.as_tensor(np.concatenate([U.ravel(), V.ravel()]), dtype=torch.float64)
    Xt, Yt = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(Y, dtype=torch.float64)

    def split(t):
        return t[:U.size].reshape(U.shape), t[U.size:].reshape(V.shape)

    def objective(t):
        return expected_loss(strategy, *split(t), Xt, Yt)

    def product(t):
        Ut, Vt = split(t)
        return (Ut @ Vt.T).reshape(-1)

    H = torch.autograd.functional.hessian(objective, theta).numpy()
    J = torch.autograd.functional.jacobian(product, theta).numpy()
    return (H + H.T) / 2, J


def linearized_spread(strategy, X, Y, width, lr) -> LinearizedSpread:
    r"""Predicted stationary spread of :math:`A = U V^\top` under full-batch constant-step SGD
    with masks, from the dynamics linearized at the global minimizer.

    To first order in :math:`\delta = \theta - \theta^*`, one step is
    :math:`\delta_{t+1} = (I - \eta H)\,\delta_t - \eta\,\varepsilon_t`, with
    :math:`H = Q\,\mathrm{diag}(h)\,Q^\top` the Hessian of :math:`L + R` and :math:`\Sigma` the
    covariance of the mask-induced gradient noise :math:`\varepsilon_t`; the stationary
    covariance :math:`P` of :math:`\delta` and the spread of the product are

    .. math::

        (Q^\top P Q)_{ij} = \frac{\eta\, (Q^\top \Sigma Q)_{ij}}{h_i + h_j - \eta h_i h_j}, \qquad
        \mathrm{spread} = \mathrm{tr}(J P J^\top),

    accurate to first order in ``lr``: compare with :func:`pnd_theory.stationary_spread` and
    :func:`pnd_theory.noise_mode_spread` (``noise="masks"``) at a small step, full batches,
    started at the same optimum.

    Parameters
    ----------
    strategy : Strategy
        A strategy with a closed-form global minimizer and an exact gradient covariance
        (:func:`pnd_theory.global_minimizer`, :func:`pnd_theory.gradient_noise`).
    X, Y : arrays (n_in, N), (n_out, N)
    width : int
    lr : float
        The constant step :math:`\eta`, below ``max_stable_lr``.

    Returns
    -------
    LinearizedSpread

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> _, _, X, Y = pt.random_problem(n_in=3, width=2, n_out=2, n_samples=32, seed=1)
    >>> res = pt.linearized_spread(pt.Dropout(0.3), X, Y, 2, 0.01)

    The covariance solves the Stein equation :math:`P = (I - \eta H) P (I - \eta H) + \eta^2 \Sigma`,
    and the spread is :math:`\mathrm{tr}(J P J^\top)`:

    >>> A = np.eye(len(res.curvatures)) - 0.01 * res.hessian
    >>> P = res.covariance
    >>> bool(np.abs(A @ P @ A + 0.01 ** 2 * res.noise - P).max() < 1e-12 * np.abs(P).max())
    True
    >>> bool(np.isclose(res.spread, np.trace(res.product_covariance)))
    True

    Per-batch masks of the same law (DropConnect on ``U``) are predicted to spread more:

    >>> pt.linearized_spread(pt.DropConnect(0.3, "output"), X, Y, 2, 0.01).spread > 3 * res.spread
    True
    """
    validate_strategy(strategy)
    arrays = as_numpy_arrays(X=X, Y=Y)
    X, Y = np.asarray(arrays["X"], dtype=float), np.asarray(arrays["Y"], dtype=float)
    check_data(X, Y, None, None)
    width = check_positive_int("width", width)
    lr = check_real("lr", lr, "a positive finite real number", low=0.0, low_open=True)
    optimum = global_minimizer(strategy, X, Y, width)
    U, V = optimum.factors()
    H, J = _hessian_and_jacobian(strategy, U, V, X, Y)
    noise = gradient_noise(strategy, U, V, X, Y, full_covariance=True)
    Sigma = (noise.covariance + noise.covariance.T) / 2
    h, Q = np.linalg.eigh(H)
    scale = max(abs(h[-1]), 1e-300)
    if h[0] < -1e-8 * scale:
        raise InvalidParameterError(
            f"the expected loss must be convex at the global minimizer for a linearized stationary law; its "
            f"Hessian has eigenvalue {h[0]:.3g} (largest {h[-1]:.3g}) for {strategy!r} at width {width}")
    live = h > 1e-8 * scale
    S = Q.T @ Sigma @ Q
    null_share = float(np.trace(S[~live][:, ~live])) / max(float(np.trace(S)), 1e-300)
    if null_share > _NULL_NOISE:
        raise InvalidParameterError(
            f"the masks push along a flat direction of the expected loss at the minimizer ({null_share:.3g} of the "
            f"gradient noise lies in the null space of the Hessian) for {strategy!r} at width {width}: the "
            f"linearized dynamics have no stationary law")
    lr_max = 2.0 / scale
    if lr >= lr_max:
        raise InvalidParameterError(
            f"lr must be below {lr_max:.6g} (2 / the largest curvature at the minimizer for these X and Y), beyond "
            f"which the linearized dynamics diverge; got {lr!r}")
    pair = live[:, None] & live[None, :]
    hi, hj = h[:, None], h[None, :]
    Pe = np.where(pair, lr * S / np.where(pair, hi + hj - lr * hi * hj, 1.0), 0.0)
    lead = np.where(pair, S / np.where(pair, hi + hj, 1.0), 0.0)
    P = Q @ Pe @ Q.T
    JQ = J @ Q
    cov_A = JQ @ Pe @ JQ.T
    return LinearizedSpread(spread=float(np.trace(cov_A)), spread_per_lr=float(np.einsum("ai,ij,aj->", JQ, lead, JQ)),
                            covariance=(P + P.T) / 2, product_covariance=(cov_A + cov_A.T) / 2, hessian=H,
                            noise=Sigma, curvatures=h, max_stable_lr=lr_max, lr=lr, per_sample=noise.per_sample,
                            optimum=optimum)
