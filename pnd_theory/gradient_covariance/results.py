"""Result objects of the gradient-noise routes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._display import ResultDisplay

@dataclass(frozen=True)
class GradientNoise(ResultDisplay):
    r"""Mask-induced mean and covariance of the mini-batch gradient (:func:`gradient_noise`).

    Parameters are ordered as ``U`` flattened row-major, then ``V`` flattened row-major.

    Attributes
    ----------
    trace : float
        :math:`\mathrm{tr\,Cov}[g]` for the strategy's own mask sharing.
    covariance : ndarray (P, P) or None
        :math:`\mathrm{Cov}[g]` (``None`` when not formed: see ``full_covariance``).
    mean : ndarray (P,)
        :math:`E[g] = \nabla_\theta (L + R)` on the batch.
    trace_U, trace_V : float
        The parts of ``trace`` from the ``U`` and the ``V`` coordinates.
    trace_per_sample, trace_per_batch : float
        The trace if the same mask law were drawn per sample,
        :math:`\frac1{B^2}\sum_k \mathrm{tr}\,C_{kk}`, or shared by the batch,
        :math:`\frac1{B^2}\sum_{kl} \mathrm{tr}\,C_{kl}` (``None`` for the local
        reparameterization, which has no shared version).  ``trace`` is one of them.
    per_sample : bool
        Whether the strategy draws its masks per sample (``law.per_sample``).
    batch_size : int
    method : str
        ``"closed_form"`` or ``"enumeration"``.
    local_reparameterization : bool
    shapes : tuple
        ``(U.shape, V.shape)``, to split a parameter vector with :meth:`split`.
    """

    trace: float
    covariance: np.ndarray | None = field(repr=False)
    mean: np.ndarray = field(repr=False)
    trace_U: float
    trace_V: float
    trace_per_sample: float
    trace_per_batch: float | None
    per_sample: bool
    batch_size: int
    method: str
    local_reparameterization: bool
    shapes: tuple = field(repr=False)

    @property
    def n_parameters(self) -> int:
        return int(self.mean.size)

    def split(self, vector):
        """``(G_U, G_V)`` of shapes ``U.shape`` and ``V.shape`` from a parameter vector."""
        (n_out, d), (n_in, _) = self.shapes
        vector = np.asarray(vector)
        return vector[: n_out * d].reshape(n_out, d), vector[n_out * d:].reshape(n_in, d)


@dataclass(frozen=True)
class BatchSizeNoise(ResultDisplay):
    r"""Expected mask-induced gradient-covariance trace against the batch size
    (:func:`gradient_noise_vs_batch_size`).

    Attributes
    ----------
    batch_sizes : ndarray of int
    per_sample : ndarray
        Per-sample masks: :math:`\bar T_1 / B` (random batches), or the exact trace of the
        first ``B`` columns.
    per_batch : ndarray or None
        One mask shared by the batch: :math:`\bar T_\infty + (\bar T_1 - \bar T_\infty)/B`
        (with replacement), :math:`\bar T_1/B + (1 - 1/B)\,\bar T_{\ne}` (without), or the
        exact trace of the first ``B`` columns.  ``None`` for the local reparameterization.
    trace : ndarray
        The one of the two that matches the strategy's own sharing.
    single_sample_trace : float
        :math:`\bar T_1 = \frac1N \sum_k \mathrm{tr}\,C_{kk}` (the trace at ``B = 1``).
    full_data_trace : float or None
        :math:`\bar T_\infty = \frac1{N^2} \sum_{kl} \mathrm{tr}\,C_{kl}`: the mask-induced
        trace of the full-data gradient with one shared mask; the limit of ``per_batch`` as
        ``B`` grows (with replacement), and its value at ``B = N`` (without).
    pair_trace : float or None
        :math:`\bar T_{\ne} = \frac1{N(N-1)} \sum_{k \ne l} \mathrm{tr}\,C_{kl}`
        (``None`` when ``N = 1``).
    correlation : float or None
        :math:`\rho = \bar T_\infty / \bar T_1`; ``per_batch / per_sample = 1 + (B - 1)\rho``
        with replacement.
    sampling : str
    per_sample_law : bool
    """

    batch_sizes: np.ndarray
    per_sample: np.ndarray
    per_batch: np.ndarray | None
    trace: np.ndarray
    single_sample_trace: float
    full_data_trace: float | None
    pair_trace: float | None
    correlation: float | None
    sampling: str
    per_sample_law: bool

    _plot_function = "plot_batch_size_noise"

    @property
    def ratio(self):
        """``per_batch / per_sample`` at every batch size (``None`` without ``per_batch``)."""
        return None if self.per_batch is None else self.per_batch / self.per_sample


@dataclass(frozen=True)
class MonteCarloGradientNoise(ResultDisplay):
    r"""Monte Carlo estimate of the mask-induced gradient covariance from real autograd
    gradients (:func:`monte_carlo_gradient_noise`).

    Attributes
    ----------
    trace, trace_se : float
        Unbiased estimate of :math:`\mathrm{tr\,Cov}[g]` (mean over ``groups`` independent
        groups of draws, each with the unbiased sample variance) and its standard error
        (standard deviation of the group estimates over :math:`\sqrt{\text{groups}}`).
    mean, mean_se : ndarray (P,)
        Sample mean gradient and its standard error.
    covariance : ndarray (P, P)
        Unbiased sample covariance over all draws.
    draws : int
    via : str
    """

    trace: float
    trace_se: float
    mean: np.ndarray = field(repr=False)
    mean_se: np.ndarray = field(repr=False)
    covariance: np.ndarray = field(repr=False)
    draws: int
    via: str


@dataclass(frozen=True)
class StationarySpread(ResultDisplay):
    r"""Spread of :math:`A = U V^\top` at the end of constant-learning-rate training over
    several seeds (:func:`stationary_spread`).

    Attributes
    ----------
    spread, spread_se : float
        :math:`\frac1S \sum_s \overline{\|A_s(t) - \bar A\|_F^2}` (time-averaged over the
        recorded end of each run, :math:`\bar A` the mean over seeds and time) plus the
        estimated :math:`E\|\bar A - E A\|_F^2` from the seeds' means, unbiased for the trace of
        the stationary covariance, and its jackknife standard error over the seeds.
    mean_product : ndarray (n_out, n_in)
        :math:`\bar A`.
    products : ndarray (S, n_out, n_in)
        Each seed's time-averaged product.
    optimum : ndarray or None
        The closed-form optimum :math:`A^*` when one was computed.
    distance_to_optimum, distance_se : float or None
        :math:`\|\bar A - A^*\|_F` and a standard error for it (from the seeds' spread of
        time-averaged products).
    spread_about_optimum, spread_about_optimum_se : float or None
        :math:`\frac1S\sum_s \overline{\|A_s(t) - A^*\|_F^2}` and its standard error.
    seeds : tuple
    """

    spread: float
    spread_se: float
    mean_product: np.ndarray
    products: np.ndarray = field(repr=False)
    optimum: np.ndarray | None = field(repr=False)
    distance_to_optimum: float | None
    distance_se: float | None
    spread_about_optimum: float | None
    spread_about_optimum_se: float | None
    seeds: tuple


@dataclass(frozen=True)
class MonteCarloBatchSizeNoise(ResultDisplay):
    r"""Monte Carlo counterpart of :class:`BatchSizeNoise` for one strategy
    (:func:`monte_carlo_gradient_noise_vs_batch_size`): ``trace`` and ``trace_se`` at every
    batch size, from real autograd gradients."""

    batch_sizes: np.ndarray
    trace: np.ndarray
    trace_se: np.ndarray
    sampling: str
    via: str
    _plot_function = "plot_monte_carlo_batch_size"
