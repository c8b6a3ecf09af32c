r"""Where Y-Drop ends in the linear network: the self-consistent optimum, and training to it.

.. math::

    p^\star = T(p^\star), \qquad
    T(p) = \text{rule}\big(\mathcal{I}(U_p, V_p)\big), \qquad
    (U_p, V_p) \in \arg\min_{U, V}\; L(U, V) + \sum_i \frac{p_i}{1 - p_i}\,\|u_i\|^2\, v_i^\top S v_i,

the rates that the Y-Drop rule (:mod:`pnd_theory.nn.ydrop`) returns at the optimum of per-unit
dropout ``NodeDropout`` with those very rates (:func:`pnd_theory.global_minimizer`,
:func:`pnd_theory.balanced_factors`).

**The self-consistent rates are uniform.**  At any optimum of ``NodeDropout(p)`` the unit
contributions :math:`c_i = \|u_i\|\,\|S^{1/2} v_i\|` are ordered against the rates: if
:math:`p_i > p_j` and :math:`c_i > c_j`, exchanging the two units' columns keeps the product
:math:`U V^\top` and lowers the penalty by
:math:`(\lambda_i - \lambda_j)(c_i^2 - c_j^2) > 0`.  The importance of the rule is
:math:`\mathcal{I}_i = c_i`, and the rule's rates increase with the importance; so at a
self-consistent point :math:`p_i > p_j` would give :math:`c_i \le c_j` and then
:math:`p_i \le p_j`.  Hence all rates are equal, the optimum is that of ``Dropout``, whose
contributions are all equal at its optimum (equalization, on the theory page), the standardised
importances vanish, and the rate is the mean rate :math:`p` itself:
:math:`p^\star = (p, \dots, p)`, with the product, :math:`\Theta`, rank and spectrum of
``Dropout(p)``.  The same holds for any importance that is a function of :math:`c_i` alone.

**Per importance measure** (``measure``, :func:`pnd_theory.nn.ydrop.unit_importance`).  The
argument needs the importance to be an increasing function of :math:`c_i` alone; only the root
mean square (``"rms"``, :math:`\mathcal{I}_i = c_i`) is.  The mean absolute conductance
(``"mean_abs"``, :math:`\|u_i\|_1 \frac1N \sum_k |v_i^\top x_k|`) and the absolute mean conductance
(``"abs_mean"``, :math:`|\mathbf 1^\top u_i|\, |v_i^\top \bar x|`) depend on the directions of the
factors, so at the Dropout optimum, where the :math:`c_i` are equal, they are not, the rule
spreads the rates, and uniform rates are **not** a fixed point: on the test problem of
``tests/test_ydrop.py`` (:math:`p = 0.5`, width 4) one application of :math:`T` to the uniform
rates spreads them over 0.52 (``"mean_abs"``) and 0.45 (``"abs_mean"``, max minus min), and the
damped iteration finds no fixed point at all (residual 0.28 and 0.25 after the continuation,
``converged=False``); with ``"rms"`` the same problem ends at the uniform rates.  Since the two
measures see the factors' directions, :math:`T` under them is not even a function of the optimum's
product alone: it can differ between equally optimal factorizations (not measured here).

**Finding it without assuming it.**  :func:`ydrop_fixed_point` iterates
:math:`p \leftarrow p + \alpha (T(p) - p)` from any start, with the step :math:`\alpha` halved
until the residual :math:`\|T(p) - p\|_\infty` falls (backtracking), and continues in the
guard :math:`\epsilon` of the rule from a large value (where :math:`T` is a contraction) down
to the requested one: near the uniform rates the rule standardises differences of the
importances by their own spread, so at :math:`\epsilon = 10^{-6}` the map :math:`T` has a gain
of order :math:`c / \epsilon` there, and plain iteration falls into a two-cycle that swaps the
rates of the units.  Convergence test: :math:`\|T(p) - p\|_\infty \le` ``tol`` + ``resolution`` at the
requested :math:`\epsilon`, where the resolution is the error of :math:`T` itself in floating point:
the rule divides differences of importances by :math:`\operatorname{std}\mathcal{I} + \epsilon`, so an
error :math:`\delta` of the importances moves the rates by up to
:math:`\frac{1 - p}{4 \operatorname{mean}\kappa} \cdot 2\delta / (\operatorname{std}\mathcal{I} + \epsilon)`
(:math:`\sigma' \le 1/4`, the keep factor :math:`(1 - p)/\operatorname{mean}\kappa`, and the shift of the mean
:math:`\delta` as well); with :math:`\delta = 2^{-42} \max\mathcal{I}` (:math:`10^{3}` units of rounding
of the importances, which come out of a minimizer's factors: measured errors were about 90 units)
this is about :math:`5 \times 10^{-8}` at :math:`\epsilon = 10^{-6}` and importances of order 0.3.  At
exactly uniform rates the importances are equal but for that rounding, which :math:`1/\epsilon` amplifies
above a ``tol`` of :math:`10^{-9}`: without the resolution such an answer was reported as not converged.

**Training.**  :func:`train_ydrop` trains the linear network with the torch layer
:class:`pnd_theory.nn.ydrop.YDrop` on its hidden units (rates refreshed from every batch's
conductance, running average ``beta``), and returns the end point, to be held against the
self-consistent optimum.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from .._validation import (InvalidParameterError, as_numpy_arrays, as_real_array, check_bool, check_choice,
                           check_count, check_data, check_positive_int, check_problem_sizes, check_real, check_seed,
                           diverged, invalid)
from ..regularizers.minimizers import global_minimizer
from ..routes.penalty import expected_loss
from ..laws.strategies import NodeDropout
from .training import lr_multiplier, objective_rise
from ..nn.ydrop import (DEFAULT_EPS, DEFAULT_RATE_RANGE, IMPORTANCE_MEASURES, YDrop, _check_rule, unit_importance,
                        ydrop_rates)

__all__ = ["ydrop_map", "ydrop_fixed_point", "YDropFixedPoint", "train_ydrop", "YDropTraining", "map_resolution"]


def _problem(X, Y, width):
    arrays = as_numpy_arrays(X=X, Y=Y)
    X, Y = np.asarray(arrays["X"], dtype=float), np.asarray(arrays["Y"], dtype=float)
    check_data(X, Y, None, None)
    width = check_positive_int("width", width)
    if width < 2:
        raise invalid("width", "at least 2 (the rule standardises importances across units)", width)
    check_problem_sizes(X.shape[0], width, Y.shape[0], X.shape[1])
    return X, Y, width


def _check_rates(rates, width, rate_range):
    r = as_real_array("rates", rates).reshape(-1)
    if r.size != width:
        raise invalid("rates", f"{width} finite drop rates", rates)
    low, high = rate_range
    if np.any(r < low) or np.any(r > high):
        raise invalid("rates", f"drop rates in rate_range [{low}, {high}]", rates)
    return r


def ydrop_map(rates, X, Y, width, p=0.5, *, eps=DEFAULT_EPS, rate_range=DEFAULT_RATE_RANGE, measure="rms"):
    r"""One application of the self-consistency map.

    .. math::

        T(p) = \text{rule}\big(\mathcal{I}(U_p, V_p)\big), \qquad
        (U_p, V_p) = \text{balanced factors of } \arg\min_A L(A) + \Theta_{\mathrm{NodeDropout}(p)}(A)

    Parameters
    ----------
    rates : array (width,)
        Drop rates within ``rate_range``.
    X, Y : arrays (n_in, N), (n_out, N)
    width : int
    p, eps, rate_range
        Of the rule (:func:`pnd_theory.nn.ydrop.ydrop_rates`).
    measure : {"rms", "mean_abs", "abs_mean"}
        The importance (:func:`pnd_theory.nn.ydrop.unit_importance`).

    Returns
    -------
    (new_rates, minimizer, (U, V))
        ``T(rates)``, the :class:`~pnd_theory.MinimizerResult` of ``NodeDropout(rates)`` and
        its balanced factors.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> _, _, X, Y = pt.random_problem(n_in=3, width=4, n_out=3, n_samples=16, seed=0)
    >>> rates = [0.3, 0.4, 0.6, 0.7]
    >>> new, minimizer, (U, V) = pt.ydrop_map(rates, X, Y, 4)

    The new rates are the rule applied to the importances of the minimizer's factors, with mean
    ``p``; the minimizer is that of NodeDropout at the old rates:

    >>> bool(np.allclose(new, pt.ydrop_rates(pt.unit_importance(U, V, X), 0.5))), round(float(new.mean()), 6)
    (True, 0.5)
    >>> bool(np.isclose(minimizer.objective, pt.global_minimizer(pt.NodeDropout(rates), X, Y, 4).objective))
    True
    """
    X, Y, width = _problem(X, Y, width)
    p, eps, rate_range = _check_rule(p, eps, rate_range)
    rates = _check_rates(rates, width, rate_range)
    return _map(rates, X, Y, width, p, eps, rate_range, check_choice("measure", measure, IMPORTANCE_MEASURES))


def _map(rates, X, Y, width, p, eps, rate_range, measure="rms"):
    minimizer = global_minimizer(NodeDropout(tuple(float(r) for r in rates)), X, Y, width)
    U, V = minimizer.factors()
    new = ydrop_rates(unit_importance(U, V, X, measure=measure), p, eps=eps, rate_range=rate_range)
    return new, minimizer, (U, V)


#: relative error assumed for importances computed from a minimizer's factors (module docstring)
IMPORTANCE_ROUNDING = 2.0**-42


def map_resolution(importance, p, eps):
    r"""Error of the rule's rates caused by an error :math:`\delta = 2^{-42} \max \mathcal{I}` of the importances:
    :math:`\frac{1 - p}{4\, \operatorname{mean}\kappa} \cdot \frac{2 \delta}{\operatorname{std}\mathcal{I} + \epsilon}`
    (module docstring)."""
    imp = np.asarray(importance, dtype=float)
    z = (imp - imp.mean()) / (imp.std(ddof=1) + eps)
    kappa = 1.0 - 1.0 / (1.0 + np.exp(-z))
    delta = IMPORTANCE_ROUNDING * float(np.max(np.abs(imp)))
    return float((1.0 - p) / (4.0 * kappa.mean()) * 2.0 * delta / (imp.std(ddof=1) + eps))


@dataclass(eq=False)
class YDropFixedPoint:
    r"""The self-consistent Y-Drop optimum (:func:`ydrop_fixed_point`).

    Attributes
    ----------
    rates : numpy.ndarray (width,)
        :math:`p^\star`.
    residual : float
        :math:`\|T(p^\star) - p^\star\|_\infty` at the requested :math:`\epsilon`.
    converged : bool
        ``residual <= tol + resolution``.
    resolution : float
        The error of :math:`T` in floating point at the end point (:func:`map_resolution`).
    measure : str
        The importance measure.
    minimizer : MinimizerResult
        The optimum of ``NodeDropout(p_star)``: ``.product``, ``.objective``,
        ``.penalty`` (:math:`\Theta`), ``.singular_values``, ``.rank``.
    U, V : numpy.ndarray
        Its balanced factors.
    iterations : int
        Applications of :math:`T` over all stages.
    history : list of dict
        Per continuation stage: ``eps``, ``iterations``, ``residual``.
    p, eps, width
        The settings.
    """

    rates: np.ndarray
    residual: float
    converged: bool
    minimizer: object = field(repr=False)
    U: np.ndarray = field(repr=False)
    V: np.ndarray = field(repr=False)
    iterations: int
    history: list = field(repr=False)
    p: float
    eps: float
    width: int
    resolution: float = 0.0
    measure: str = "rms"

    @property
    def objective(self) -> float:
        """:math:`L + \\Theta` at the optimum of ``NodeDropout(rates)``."""
        return float(self.minimizer.objective)


def ydrop_fixed_point(X, Y, width, p=0.5, *, eps=DEFAULT_EPS, rate_range=DEFAULT_RATE_RANGE, rates0=None,
                      tol=1e-9, max_iter=200, eps_start=10.0, eps_factor=0.1, measure="rms") -> YDropFixedPoint:
    r"""The self-consistent Y-Drop rates :math:`p^\star = T(p^\star)`, by damped iteration with
    continuation in the rule's guard :math:`\epsilon`; :math:`T(p)` is the rule's rates
    (:func:`pnd_theory.ydrop_rates`) at the optimum of ``NodeDropout`` with the rates :math:`p`.

    .. math::

        p \leftarrow p + \alpha\,(T(p) - p), \quad \alpha \in \{1/2, 1/4, \dots\}
        \text{ the first that lowers } \|T(p) - p\|_\infty; \qquad
        \epsilon = \epsilon_0, \epsilon_0 f, \epsilon_0 f^2, \dots, \epsilon

    Parameters
    ----------
    X, Y : arrays (n_in, N), (n_out, N)
    width : int
        At least 2.
    p : float
        Mean drop rate of the rule.
    eps, rate_range : keyword-only
        Of the rule; ``eps`` is where the continuation ends.
    rates0 : array (width,), optional
        The start (default: rates spread evenly over ``[p - 0.2, p + 0.2]`` within the range).
    tol : float
        Convergence test :math:`\|T(p) - p\|_\infty \le` ``tol`` (at every stage).
    max_iter : int
        Applications of :math:`T` per stage.
    eps_start, eps_factor : float
        The continuation: first guard and the factor between stages (in (0, 1)).
    measure : {"rms", "mean_abs", "abs_mean"}
        The importance (only ``"rms"`` has the uniform fixed point: theory page,
        :ref:`theory-ydrop`).

    Returns
    -------
    YDropFixedPoint

    Examples
    --------
    With the ``"rms"`` importance the fixed point is the uniform rate ``p`` (:ref:`theory-ydrop`),
    found from the default uneven start:

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> _, _, X, Y = pt.random_problem(n_in=3, width=3, n_out=3, n_samples=16, seed=0)
    >>> fixed = pt.ydrop_fixed_point(X, Y, 3, 0.5, tol=1e-6)
    >>> fixed.converged, bool(np.allclose(fixed.rates, 0.5, atol=1e-5))
    (True, True)
    >>> bool(np.abs(pt.ydrop_map(fixed.rates, X, Y, 3)[0] - fixed.rates).max() <= 1e-6 + fixed.resolution)
    True
    """
    X, Y, width = _problem(X, Y, width)
    p, eps, rate_range = _check_rule(p, eps, rate_range)
    tol = check_real("tol", tol, "a positive finite real number", low=0.0, low_open=True)
    max_iter = check_count("max_iter", max_iter)
    eps_start = check_real("eps_start", eps_start, "a positive finite real number", low=0.0, low_open=True)
    eps_factor = check_real("eps_factor", eps_factor, "a real number in (0, 1)", low=0.0, high=1.0,
                            low_open=True, high_open=True)
    measure = check_choice("measure", measure, IMPORTANCE_MEASURES)
    low, high = rate_range
    if rates0 is None:
        rates = np.clip(np.linspace(p - 0.2, p + 0.2, width), low, high)
    else:
        rates = _check_rates(rates0, width, rate_range)
    n_stages = max(0, math.ceil(math.log(eps_start / eps) / math.log(1.0 / eps_factor) - 1e-9))
    stages = [eps_start * eps_factor ** k for k in range(n_stages)] + [eps]
    history, total = [], 0
    new, minimizer, factors = _map(rates, X, Y, width, p, stages[0], rate_range, measure)
    total += 1
    for index, stage_eps in enumerate(stages):
        if index > 0:  # the previous stage's end point, seen with this stage's guard
            new, minimizer, factors = _map(rates, X, Y, width, p, stage_eps, rate_range, measure)
            total += 1
        residual = float(np.max(np.abs(new - rates)))
        iterations = 0
        while residual > tol and iterations < max_iter:  # the resolution is judged at the end only
            alpha, accepted = 0.5, False
            while alpha > 1e-12:
                trial = np.clip(rates + alpha * (new - rates), low, high)
                t_new, t_min, t_fac = _map(trial, X, Y, width, p, stage_eps, rate_range, measure)
                total += 1
                t_res = float(np.max(np.abs(t_new - trial)))
                if t_res < residual:
                    rates, new, minimizer, factors, residual, accepted = trial, t_new, t_min, t_fac, t_res, True
                    break
                alpha *= 0.5
            iterations += 1
            if not accepted:
                break
        history.append({"eps": stage_eps, "iterations": iterations, "residual": residual})
    U, V = factors
    resolution = map_resolution(unit_importance(U, V, X, measure=measure), p, eps)
    return YDropFixedPoint(rates=rates, residual=residual, converged=residual <= tol + resolution, minimizer=minimizer,
                           U=U, V=V, iterations=total, history=history, p=p, eps=eps, width=width,
                           resolution=resolution, measure=measure)


@dataclass(eq=False)
class YDropTraining:
    r"""The end point of :func:`train_ydrop`.

    Attributes
    ----------
    U, V : numpy.ndarray
        The last iterate (the step decays to zero).
    rates : numpy.ndarray (width,)
        The running rates averaged over the last ``average`` fraction of the steps.
    objective : float
        :math:`L + R_{\mathrm{NodeDropout}(\text{rates})}(U, V)` (:func:`pnd_theory.expected_loss`).
    rate_history : numpy.ndarray (records, width)
        The running rates along the run.
    steps : int
    seed : int
    """

    U: np.ndarray
    V: np.ndarray
    rates: np.ndarray
    objective: float
    rate_history: np.ndarray = field(repr=False)
    steps: int
    seed: int

    @property
    def product(self) -> np.ndarray:
        return self.U @ self.V.T


def train_ydrop(X, Y, width, p=0.5, *, beta=0.999, epochs=3000, lr=0.01, seed=0, init_scale=0.1, hold=0.5,
                average=0.5, eps=DEFAULT_EPS, rate_range=DEFAULT_RATE_RANGE, progress=False,
                measure="rms") -> YDropTraining:
    r"""Train :math:`f(x) = U\,\mathrm{diag}(m)\,V^\top x` with the Y-Drop layer on the hidden units.

    .. math::

        \min_{U, V} \frac1N \sum_k \|y_k - U (m_k \circ V^\top x_k)\|^2, \qquad
        m_{k,i} = \frac{B_{k,i}}{1 - \bar p_i},\ B_{k,i} \sim \mathrm{Bernoulli}(1 - \bar p_i),

    by Adam on full batches, the running rates :math:`\bar p` refreshed at every step from the
    batch's conductance (:class:`pnd_theory.nn.ydrop.YDrop` with ``output_weight=U``).  The step is
    held for the first ``hold`` of the run, then decays linearly to zero.

    Parameters
    ----------
    X, Y : arrays (n_in, N), (n_out, N)
    width : int
    p, beta, eps, rate_range
        Of the layer.
    epochs : int
        Full-batch steps.
    lr : float
        Adam's step.
    seed : int
        Seeds the start and the masks.
    init_scale : float
        Initial entries :math:`N(0, (\text{init\_scale}/\sqrt{d})^2)`.
    hold, average : float
        Held fraction of the run; fraction of the final steps over which the rates are averaged.
    progress : bool
        Show a progress bar.
    measure : {"rms", "mean_abs", "abs_mean"}
        The layer's importance measure.

    Returns
    -------
    YDropTraining

    Examples
    --------
    A short run (200 steps) keeps the mean rate at ``p``, the rates near the uniform fixed point,
    and ends within a few percent of the expected loss at that fixed point:

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> _, _, X, Y = pt.random_problem(n_in=3, width=4, n_out=3, n_samples=16, seed=0)
    >>> run = pt.train_ydrop(X, Y, 4, 0.5, epochs=200, seed=0)
    >>> run.U.shape, run.V.shape, round(float(run.rates.mean()), 6)
    ((3, 4), (3, 4), 0.5)
    >>> bool(np.abs(run.rates - 0.5).max() < 0.05)
    True
    >>> best = pt.ydrop_map([0.5] * 4, X, Y, 4)[1].objective
    >>> bool(best <= run.objective < 1.05 * best)
    True
    """
    X, Y, width = _problem(X, Y, width)
    p, eps, rate_range = _check_rule(p, eps, rate_range)
    epochs = check_count("epochs", epochs)
    lr = check_real("lr", lr, "a positive finite real number", low=0.0, low_open=True)
    seed = check_seed(seed)
    init_scale = check_real("init_scale", init_scale, "a positive finite real number", low=0.0, low_open=True)
    hold = check_real("hold", hold, "a real number in [0, 1)", low=0.0, high=1.0, high_open=True)
    average = check_real("average", average, "a real number in (0, 1]", low=0.0, high=1.0, low_open=True)
    progress = check_bool("progress", progress)
    n_in, n_out = X.shape[0], Y.shape[0]
    gen = torch.Generator().manual_seed(seed)
    std = init_scale / math.sqrt(width)
    U = torch.nn.Parameter(std * torch.randn(n_out, width, generator=gen, dtype=torch.float64))
    V = torch.nn.Parameter(std * torch.randn(n_in, width, generator=gen, dtype=torch.float64))
    layer = YDrop(width, p, beta, eps=eps, rate_range=rate_range, generator=gen, measure=measure).train()
    x, y = torch.as_tensor(X.T), torch.as_tensor(Y.T)
    opt = torch.optim.Adam([U, V], lr=lr)
    average_from = epochs - max(1, int(round(average * epochs)))
    rate_sum = torch.zeros(width, dtype=torch.float64)
    history = []
    record = max(1, epochs // 200)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=epochs, desc="train Y-Drop", unit="step", mininterval=0.5)
    for step in range(epochs):
        for group in opt.param_groups:
            group["lr"] = lr * lr_multiplier("hold-linear", step / epochs, hold)
        try:
            hidden = layer(x @ V, output_weight=U)
        except InvalidParameterError:  # the layer's arguments were checked: weights or importances overflowed
            raise diverged("Y-Drop training", lr, step) from None
        loss = ((y - hidden @ U.T) ** 2).sum(dim=1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= average_from:
            rate_sum += layer.rates
        if step % record == 0 or step == epochs - 1:
            history.append(layer.rates.numpy().copy())
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if not bool(torch.isfinite(loss)):
        raise diverged("Y-Drop training", lr, epochs)
    rates = (rate_sum / (epochs - average_from)).numpy()
    U_np, V_np = U.detach().numpy().copy(), V.detach().numpy().copy()
    objective = expected_loss(NodeDropout(tuple(float(r) for r in rates)), U_np, V_np, X, Y)
    rise = objective_rise(objective, Y)
    if rise:
        warnings.warn(f"train_ydrop(lr={lr:g}, epochs={epochs}) did not converge: {rise}; lower lr or train longer",
                      RuntimeWarning, stacklevel=2)
    return YDropTraining(U=U_np, V=V_np, rates=rates, objective=float(objective), rate_history=np.asarray(history),
                         steps=epochs, seed=seed)
