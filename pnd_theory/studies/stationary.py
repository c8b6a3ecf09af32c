r"""Stationary spread of the iterates under constant-step SGD with real sampled masks: the
experiment that shows the mask-induced gradient noise at work on the trained product."""

from __future__ import annotations

import math
import numbers

import numpy as np
from tqdm.auto import tqdm

from .._validation import (InvalidParameterError, as_numpy_arrays, check_bool, check_choice, check_count, check_data,
                           check_memory, check_positive_int, check_problem_sizes, check_seed)
from ..gradient_covariance.results import StationarySpread
from ..regularizers.minimizers import global_minimizer
from ..laws.strategies import validate_strategy
from .training import train

def _seed_list(seeds):
    if isinstance(seeds, (numbers.Integral, np.integer)) and not isinstance(seeds, bool):
        n = check_count("seeds", int(seeds))
        if n < 2:
            raise InvalidParameterError(f"seeds must be at least 2 (a standard error over seeds), got {n}")
        return tuple(range(n))
    try:
        if isinstance(seeds, (str, bytes)):
            raise TypeError
        out = tuple(seeds)
    except TypeError:
        raise InvalidParameterError(f"seeds must be a number of seeds or a sequence of seeds, got {seeds!r}") from None
    if len(out) < 2:
        raise InvalidParameterError(f"seeds must hold at least 2 seeds (a standard error over seeds), got {len(out)}")
    for i, s in enumerate(out):
        check_seed(s, f"seeds[{i}]")
    if len(set(out)) != len(out):
        raise InvalidParameterError(f"seeds must be distinct, got {out!r}")
    return tuple(int(s) for s in out)


def spread_over_seeds(products):
    r"""The stationary spread from snapshots ``products`` (seeds, snapshots, ...) and its standard error.

    .. math::

        \widehat{\mathrm{spread}} = \frac1{ST} \sum_{s, t} \|A_s(t) - \bar A\|_F^2
            + \frac1S \sum_{ij} \widehat{\mathrm{Var}}_s\big(\bar A_s\big)_{ij},

    :math:`\bar A_s` the mean of seed :math:`s`'s snapshots.  The second term puts back what
    estimating :math:`\bar A` takes away (:math:`E\|\bar A - E A\|_F^2`, from the
    independent seed means, however correlated the snapshots of one seed are), so that the
    estimate is unbiased for :math:`\mathrm{tr}\,\mathrm{Cov}(A)` of stationary snapshots.  The
    standard error is the jackknife over seeds (the seeds are independent; the snapshots of
    one seed need not be).  At least two seeds are needed.
    """
    products = np.asarray(products, dtype=float)
    S = products.shape[0]
    if S < 2:
        raise InvalidParameterError(f"seeds must be at least 2 (a standard error over seeds), got {S}")

    def estimate(p):
        seed_means = p.mean(1)
        mean = seed_means.mean(0)
        raw = ((p - mean) ** 2).reshape(p.shape[0], p.shape[1], -1).sum(-1).mean()
        return raw + seed_means.reshape(p.shape[0], -1).var(0, ddof=1).sum() / p.shape[0]

    spread = float(estimate(products))
    if S == 2:  # a jackknife needs two seeds left: the seed means' half difference bounds instead
        per_seed = ((products - products.mean((0, 1))) ** 2).reshape(S, products.shape[1], -1).sum(-1).mean(1)
        return spread, float(per_seed.std(ddof=1) / math.sqrt(S))
    leave = np.array([estimate(np.delete(products, s, axis=0)) for s in range(S)])
    return spread, float(math.sqrt((S - 1) / S * ((leave - leave.mean()) ** 2).sum()))


def _derived_seed(seed, part):
    """An independent training seed for part ``part`` of the run of seed ``seed``."""
    return int(np.random.SeedSequence([seed, part]).generate_state(1)[0])


def stationary_spread(strategy, X, Y, width, lr, steps, seeds=8, *, batch_size=None, burn_in=None, snapshots=10,
                      momentum=0.0, init="optimum", optimum=True, device=None, progress=True) -> StationarySpread:
    r"""Spread of :math:`A = U V^\top` under constant-learning-rate SGD with real sampled masks.

    .. math::

        \mathrm{spread} = \frac1S \sum_{s=1}^S \frac1T \sum_{t=1}^T \|A_s(t) - \bar A\|_F^2
            + \frac1S \sum_{ij} \widehat{\mathrm{Var}}_s(\bar A_s)_{ij},
        \qquad \bar A = \frac1{ST}\sum_{s,t} A_s(t),

    with :math:`A_s(t)` the product after ``burn_in + t * steps`` steps of
    :func:`pnd_theory.train` (``schedule="constant"``, no averaging) for seed ``s``.  Near the
    optimum the stationary covariance of the iterates solves a Lyapunov equation driven by the
    gradient covariance, so at a fixed step it grows with the mask-induced gradient noise:
    shared masks (``DropConnect``) spread more than per-sample masks (``PerNodeDrop``) of the
    same law, although both have the same expected loss and the same optimum
    (the theory page).  The second term (:func:`spread_over_seeds`) makes the estimate unbiased
    for the trace of the stationary covariance; its standard error is the jackknife over seeds.

    Parameters
    ----------
    strategy : Strategy
    X, Y : arrays (n_in, N), (n_out, N)
    width : int
    lr : float
        The constant learning rate.
    steps : int
        SGD steps between two snapshots (rounded up to whole epochs of
        ``ceil(N / batch_size)`` steps).
    seeds : int or sequence of int
        Number of seeds (``0 .. seeds - 1``) or the seeds themselves (at least 2).
    batch_size : int, optional
        The full data set by default.
    burn_in : int, optional
        Steps before the first snapshot (default ``steps``).
    snapshots : int
        Snapshots :math:`T` per seed.
    momentum : float
        SGD momentum (0: plain SGD).
    init : {"optimum", "random"}
        Start at the balanced factors of the closed-form optimum
        (:func:`pnd_theory.global_minimizer`), or at :func:`train`'s small random start.
    optimum : bool
        Compute :math:`A^*` and the distance of :math:`\bar A` to it.
    device : str or torch.device, optional
        Passed to :func:`train`.
    progress : bool
        Show a progress bar (tqdm) over the training runs.

    Returns
    -------
    StationarySpread
        ``.spread``, ``.spread_se`` (jackknife over seeds), ``.mean_product``, ``.distance_to_optimum``,
        ``.distance_se`` (the distance expected from the seeds' spread alone when the mean is
        unbiased), ``.spread_about_optimum``.

    Examples
    --------
    A short run (two seeds of 150 steps, about a second): the same runs as
    :func:`pnd_theory.noise_mode_spread` with ``noise="masks"`` started at the optimum, so the same
    estimate; a spread of the order of :func:`pnd_theory.linearized_spread`'s prediction (the test
    suite resolves it within 3 standard errors with longer runs):

    >>> import pnd_theory as pt
    >>> _, _, X, Y = pt.random_problem(n_in=3, width=2, n_out=2, n_samples=32, seed=1)
    >>> run = pt.stationary_spread(pt.Dropout(0.3), X, Y, 2, 0.01, 20, seeds=2, snapshots=5, burn_in=50,
    ...                            progress=False)
    >>> run.mean_product.shape
    (2, 3)
    >>> other = pt.noise_mode_spread(pt.Dropout(0.3), X, Y, 2, "masks", 0.01, 20, snapshots=5, burn_in=50)
    >>> bool(abs(run.spread - other.spread) < 1e-12)
    True
    >>> predicted = pt.linearized_spread(pt.Dropout(0.3), X, Y, 2, 0.01).spread
    >>> bool(0 < run.spread < 3 * predicted), bool(run.distance_to_optimum < 0.05)
    (True, True)
    """

    validate_strategy(strategy)
    steps = check_count("steps", steps)
    snapshots = check_count("snapshots", snapshots)
    seeds = _seed_list(seeds)
    init = check_choice("init", init, ("optimum", "random"))
    optimum = check_bool("optimum", optimum)
    if burn_in is None:
        burn_in = steps
    burn_in = check_count("burn_in", burn_in)
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise InvalidParameterError(f"lr must be a positive real number, got {lr!r} of type {type(lr).__name__}")
    if not (math.isfinite(lr) and lr > 0):
        raise InvalidParameterError(f"lr must be a positive finite number, got {lr!r}")
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise InvalidParameterError(f"momentum must be a real number in [0, 1), got {momentum!r}")
    if not (0 <= momentum < 1):
        raise InvalidParameterError(f"momentum must be a number in [0, 1), got {momentum!r}")
    a = as_numpy_arrays(X=X, Y=Y)
    check_data(a["X"], a["Y"], None, None)
    Xn, Yn = a["X"], a["Y"]
    N = Xn.shape[1]
    width = check_positive_int("width", width)
    check_problem_sizes(Xn.shape[0], width, Yn.shape[0], N)
    check_memory(f"seeds={len(seeds)}, snapshots={snapshots}, n_out={Yn.shape[0]}, n_in={Xn.shape[0]}",
                 2 * len(seeds) * snapshots * Yn.shape[0] * Xn.shape[0], "snapshots of the product U V^T")
    bs = N if batch_size is None else check_positive_int("batch_size", batch_size)
    if bs > N:
        raise InvalidParameterError(f"batch_size must be at most the number of samples N = {N}, got {batch_size}")
    per_epoch = -(-N // bs)
    snap_epochs = -(-steps // per_epoch)
    burn_epochs = -(-burn_in // per_epoch)
    A_star = None
    U0 = V0 = None
    if optimum or init == "optimum":
        minimum = global_minimizer(strategy, Xn, Yn, width)
        A_star = minimum.product
        if init == "optimum":
            U0, V0 = minimum.factors()
    common = dict(lr=float(lr), batch_size=bs, device=device, progress=False, schedule="constant", average=0.0,
                  optimizer="sgd", momentum=float(momentum))
    products = np.empty((len(seeds), snapshots) + (Yn.shape[0], Xn.shape[0]))
    bar = tqdm(total=len(seeds) * (snapshots + 1), desc="stationary_spread", unit="run",
               disable=not check_bool("progress", progress))
    for i, seed in enumerate(seeds):
        res = train(strategy, Xn, Yn, width, epochs=burn_epochs, seed=_derived_seed(seed, 0),
                    record_every=burn_epochs * per_epoch, U_init=U0, V_init=V0, **common)
        U, V = res.last_U, res.last_V
        bar.update()
        for t in range(snapshots):
            res = train(strategy, Xn, Yn, width, epochs=snap_epochs, seed=_derived_seed(seed, t + 1),
                        record_every=snap_epochs * per_epoch, U_init=U, V_init=V, **common)
            U, V = res.last_U, res.last_V
            products[i, t] = U @ V.T
            bar.update()
    bar.close()
    S = len(seeds)
    mean_product = products.mean((0, 1))
    spread, spread_se = spread_over_seeds(products)
    seed_means = products.mean(1)
    dist = dist_se = about = about_se = None
    if optimum:
        dist = float(np.linalg.norm(mean_product - A_star))
        dist_se = float(math.sqrt(seed_means.var(0, ddof=1).sum() / S))
        about_seed = ((products - A_star) ** 2).sum((-1, -2)).mean(1)
        about, about_se = float(about_seed.mean()), float(about_seed.std(ddof=1) / math.sqrt(S))
    return StationarySpread(
        spread=spread, spread_se=spread_se,
        mean_product=mean_product, products=seed_means, optimum=A_star, distance_to_optimum=dist,
        distance_se=dist_se, spread_about_optimum=about, spread_about_optimum_se=about_se, seeds=seeds,
    )
