r"""Explicit against implicit effects of the mask noise: the three trainings side by side.

.. math::

    \text{masks:}\ \theta \leftarrow \theta - \eta\, g_M, \qquad
    \text{penalty:}\ \theta \leftarrow \theta - \eta\, \nabla(L + R), \qquad
    \text{penalty+matched:}\ \theta \leftarrow \theta - \eta\, \big(\nabla(L + R) + \xi\big),\
    \xi \sim N(0, \Sigma_M(\theta)),

with :math:`g_M` the gradient with real sampled masks, :math:`E g_M = \nabla(L + R)` and
:math:`\mathrm{Cov}\, g_M = \Sigma_M` in closed form (:func:`pnd_theory.gradient_covariance`).  The
penalty route keeps only the *explicit* effect of the noise, the change of the objective;
the difference between it and the masks is the *implicit* effect, the update noise (Wei,
Kakade and Ma, ICML 2020).  Per-sample masks (PerNodeDrop) and one mask per mini-batch
(DropConnect) of the same law have the same :math:`L + R` and so the same penalty route and
the same optimum; what differs is :math:`\Sigma_M` (the theory page), hence only the implicit part.

:func:`noise_mode_spread` measures, for one strategy and one way of driving the updates
(:func:`pnd_theory.train` with ``noise=``), the stationary spread of the product
:math:`A = U V^\top` under plain SGD at a constant step, started at the closed-form optimum:

.. math::

    \mathrm{spread} = \frac1{S T} \sum_{s, t} \|A_s(t) - \bar A\|_F^2
        + \frac1S \sum_{ij} \widehat{\mathrm{Var}}_s(\bar A_s)_{ij}, \qquad
    \text{excess} = \frac1{S T} \sum_{s, t} (L + R)(U_s(t), V_s(t)) - (L + R)^\star,

the spread estimated as :func:`pnd_theory.stationary_spread` does (one estimator,
:func:`pnd_theory.studies.stationary.spread_over_seeds`), with standard errors over the
independent seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._validation import (InvalidParameterError, as_numpy_arrays, check_choice, check_count, check_data,
                           check_memory, check_positive_int, check_real, check_seed)
from ..regularizers.minimizers import global_minimizer
from ..routes.penalty import expected_loss
from ..laws.strategies import validate_strategy
from .stationary import spread_over_seeds
from .training import NOISE_MODES, train

__all__ = ["NoiseModeSpread", "noise_mode_spread"]


@dataclass(eq=False)
class NoiseModeSpread:
    r"""Stationary spread of the product under one way of driving the updates.

    Attributes
    ----------
    strategy, noise, lr, steps
        The settings (``steps``: SGD steps between two snapshots).
    products : numpy.ndarray (seeds, snapshots, n_out, n_in)
        The snapshots :math:`A_s(t)`.
    objectives : numpy.ndarray (seeds, snapshots)
        :math:`(L + R)(U_s(t), V_s(t))`.
    optimum : MinimizerResult
        The closed-form optimum (:func:`pnd_theory.global_minimizer`).
    """

    strategy: object
    noise: str
    lr: float
    steps: int
    products: np.ndarray = field(repr=False)
    objectives: np.ndarray = field(repr=False)
    optimum: object = field(repr=False)

    @property
    def mean_product(self) -> np.ndarray:
        r""":math:`\bar A`, the end point of the trainings (mean over seeds and snapshots)."""
        return self.products.mean(axis=(0, 1))

    @property
    def spread(self) -> float:
        r"""The stationary spread of the snapshots, estimated as :func:`pnd_theory.stationary_spread`
        does (the same estimator)."""
        return spread_over_seeds(self.products)[0]

    @property
    def spread_se(self) -> float:
        """Standard error of :attr:`spread`: the jackknife over the independent seeds (snapshots of
        one seed are correlated and are not counted as independent draws)."""
        return spread_over_seeds(self.products)[1]

    @property
    def excess(self) -> float:
        r"""Mean :math:`L + R` of the snapshots above the optimum's."""
        return float(self.objectives.mean() - self.optimum.objective)

    @property
    def excess_se(self) -> float:
        """Standard error of :attr:`excess` from the seeds' mean objectives (independent seeds)."""
        per_seed = self.objectives.mean(1)
        return float(per_seed.std(ddof=1) / math.sqrt(per_seed.size))

    @property
    def offset(self) -> float:
        r""":math:`\|\bar A - A^\star\|_F`: how far the mean end point sits from the optimum."""
        return float(np.linalg.norm(self.mean_product - self.optimum.product))

    @property
    def singular_values(self) -> np.ndarray:
        """Of :attr:`mean_product`, descending."""
        return np.linalg.svd(self.mean_product, compute_uv=False)

    def to_dict(self) -> dict:
        return {"strategy": repr(self.strategy), "noise": self.noise, "lr": self.lr, "steps": self.steps,
                "spread": self.spread, "spread_se": self.spread_se, "excess": self.excess,
                "excess_se": self.excess_se, "offset": self.offset,
                "singular_values": [float(v) for v in self.singular_values],
                "optimum_singular_values": [float(v) for v in self.optimum.singular_values],
                "optimum_objective": float(self.optimum.objective)}


def noise_mode_spread(strategy, X, Y, width, noise, lr, steps, *, snapshots=20, seeds=2, burn_in=None,
                      matched_every=1) -> NoiseModeSpread:
    r"""Stationary spread and end point of constant-step SGD driven by ``noise``.

    ``noise`` is ``"masks"`` (real sampled masks), ``"penalty"`` (the gradient of :math:`L + R`
    in closed form: the explicit effect only) or ``"penalty+matched"`` (that gradient plus
    Gaussian noise of the masks' gradient covariance), as in :func:`pnd_theory.train`; the
    difference between masks and penalty is the implicit effect (theory page,
    :ref:`theory-explicit-implicit`).

    Each seed starts at the balanced factors of the closed-form optimum, runs ``burn_in``
    steps, then takes ``snapshots`` snapshots ``steps`` SGD steps apart (full batches, no
    momentum), all through :func:`pnd_theory.train` with ``schedule="constant"``.

    Parameters
    ----------
    strategy : Strategy
    X, Y : arrays (n_in, N), (n_out, N)
    width : int
    noise : {"masks", "penalty", "penalty+matched"}
    lr : float
        The constant step.
    steps : int
        Steps between two snapshots (take it well above the correlation time :math:`1/(\eta\mu)`).
    snapshots, seeds : int, keyword-only
        Snapshots per seed, and the number of seeds (at least 2: the standard errors are over seeds).
    burn_in : int, optional, keyword-only
        Steps before the first snapshot (default ``steps``).
    matched_every : int, keyword-only
        Passed to :func:`pnd_theory.train`.

    Returns
    -------
    NoiseModeSpread

    Examples
    --------
    A short run (two seeds of 150 steps, about a second): far too short to resolve the spread to
    the prediction of :func:`pnd_theory.linearized_spread`, but of its order, and the end point
    stays at the optimum:

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> _, _, X, Y = pt.random_problem(n_in=3, width=2, n_out=2, n_samples=32, seed=1)
    >>> run = pt.noise_mode_spread(pt.Dropout(0.3), X, Y, 2, "masks", 0.01, 20, snapshots=5, burn_in=50)
    >>> run.products.shape, run.mean_product.shape
    ((2, 5, 2, 3), (2, 3))
    >>> predicted = pt.linearized_spread(pt.Dropout(0.3), X, Y, 2, 0.01).spread
    >>> bool(0 < run.spread < 3 * predicted)
    True
    >>> bool(np.abs(run.mean_product - run.optimum.product).max() < 0.05)
    True
    """
    validate_strategy(strategy)
    arrays = as_numpy_arrays(X=X, Y=Y)
    X, Y = np.asarray(arrays["X"], dtype=float), np.asarray(arrays["Y"], dtype=float)
    check_data(X, Y, None, None)
    width = check_positive_int("width", width)
    noise = check_choice("noise", noise, NOISE_MODES)
    lr = check_real("lr", lr, "a positive finite real number", low=0.0, low_open=True)
    steps = check_count("steps", steps)
    snapshots = check_count("snapshots", snapshots)
    seeds = check_count("seeds", seeds)
    if seeds < 2:
        raise InvalidParameterError(f"seeds must be at least 2 (standard errors over seeds), got {seeds}")
    burn_in = steps if burn_in is None else check_count("burn_in", burn_in)
    matched_every = check_positive_int("matched_every", matched_every)
    check_memory(f"seeds={seeds}, snapshots={snapshots}, n_out={Y.shape[0]}, n_in={X.shape[0]}",
                 2 * seeds * snapshots * (Y.shape[0] * X.shape[0] + 1), "snapshots of the product U V^T")
    optimum = global_minimizer(strategy, X, Y, width)
    U0, V0 = optimum.factors()
    products = np.empty((seeds, snapshots, Y.shape[0], X.shape[0]))
    objectives = np.empty((seeds, snapshots))
    common = dict(lr=lr, schedule="constant", average=0.0, optimizer="sgd", momentum=0.0, progress=False,
                  noise=noise, matched_every=matched_every)
    for s in range(seeds):
        seed = int(np.random.SeedSequence([s, 0]).generate_state(1)[0])
        run = train(strategy, X, Y, width, epochs=burn_in, seed=check_seed(seed), record_every=burn_in,
                    U_init=U0, V_init=V0, **common)
        U, V = run.U, run.V
        for t in range(snapshots):
            seed = int(np.random.SeedSequence([s, t + 1]).generate_state(1)[0])
            run = train(strategy, X, Y, width, epochs=steps, seed=seed, record_every=steps, U_init=U, V_init=V,
                        **common)
            U, V = run.U, run.V
            products[s, t] = U @ V.T
            objectives[s, t] = expected_loss(strategy, U, V, X, Y)
    return NoiseModeSpread(strategy=strategy, noise=noise, lr=lr, steps=steps, products=products,
                           objectives=objectives, optimum=optimum)
