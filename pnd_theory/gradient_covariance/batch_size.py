r"""How the mask-induced gradient noise falls with the batch size: per-sample masks as
:math:`T_1 / B`, shared masks as :math:`T_\infty + (T_1 - T_\infty) / B`."""

from __future__ import annotations

import math
import numbers

import numpy as np
from tqdm.auto import tqdm

from .._validation import (InvalidParameterError, check_bool, check_choice, check_count, check_memory,
                           check_positive_int, check_seed, invalid, resolve_device)
from ..laws.strategies import validate_strategy
from .closed_form import _ClosedForm
from .common import (MAX_CONFIGURATIONS, SAMPLINGS, VIAS, _check_local_reparameterization, _check_method, _numpy_problem,
                     _reject_covariance_only, _single_independent_component)
from .covariance import gradient_noise
from .enumeration import _enumerate_sample_gradients, _weighted_cov
from .monte_carlo import _gradient_draws, _mean_se
from .results import BatchSizeNoise, MonteCarloBatchSizeNoise

def _sample_traces(strategy, law, U, V, X, Y, local_layer, method, max_configurations):
    r"""``(tr C_kk for every sample k, tr Cov of the full-data gradient with one shared mask)``."""
    N = X.shape[1]
    if method == "closed_form":
        dU, dV, tU, tV = _ClosedForm(strategy, law, U, V, local_layer).traces(X, Y)
        return dU + dV, (tU + tV) / (N * N)
    weight, g = _enumerate_sample_gradients(law, U, V, X, Y, max_configurations)
    tr_kk = np.array([np.trace(_weighted_cov(weight, g[:, k])[1]) for k in range(N)])
    return tr_kk, float(np.trace(_weighted_cov(weight, g.mean(1))[1]))


def _check_batch_sizes(batch_sizes, N, sampling, per_sample=0):
    """The batch sizes as an int64 array (each below 2^62); where batches are drawn,
    ``per_sample`` floats a sample of a batch holds at most (its data, its masks) bound the largest
    one by the machine's memory."""
    if isinstance(batch_sizes, (numbers.Integral, np.integer)) and not isinstance(batch_sizes, bool):
        batch_sizes = [batch_sizes]
    try:
        sizes = list(batch_sizes)
    except TypeError:
        raise InvalidParameterError(f"batch_sizes must be a sequence of positive integers, got {batch_sizes!r}") from None
    if not sizes:
        raise InvalidParameterError("batch_sizes must hold at least one batch size, got an empty sequence")
    sizes = [check_positive_int(f"batch_sizes[{i}]", int(b) if isinstance(b, np.integer) else b)
             for i, b in enumerate(sizes)]
    if sampling != "with_replacement" and max(sizes) > N:
        raise InvalidParameterError(
            f"batch_sizes must not exceed the number of samples N={N} with sampling={sampling!r}; got {max(sizes)}"
        )
    if max(sizes) >= 2**62:
        raise invalid("batch_sizes", "positive integers below 2^62", max(sizes))
    check_memory(f"batch_sizes (largest {max(sizes)})", 4 * max(sizes) * per_sample, "batches of data and masks")
    return np.asarray(sizes, dtype=np.int64)


def gradient_noise_vs_batch_size(strategy, U, V, X, Y, batch_sizes, *, sampling="with_replacement", method="auto",
                                 local_reparameterization=False,
                                 max_configurations=MAX_CONFIGURATIONS) -> BatchSizeNoise:
    r"""Expected trace of the mask-induced gradient covariance against the batch size ``B``,
    for per-sample and for shared masks.

    .. math::

        \text{per sample: } \frac{\bar T_1}{B}, \qquad
        \text{shared: } \bar T_\infty + \frac{\bar T_1 - \bar T_\infty}{B}
        \ \text{(with replacement)}, \qquad
        \frac{\bar T_1}{B} + \Big(1 - \frac1B\Big) \bar T_{\ne}\ \text{(without)},

    with :math:`\bar T_1 = \frac1N \sum_k \mathrm{tr}\,C_{kk}`, :math:`\bar T_\infty =
    \frac1{N^2}\sum_{kl}\mathrm{tr}\,C_{kl}`, :math:`\bar T_{\ne} = \frac1{N(N-1)}\sum_{k\ne l}
    \mathrm{tr}\,C_{kl}` and :math:`C_{kl} = \mathrm{Cov}_M[g_k(M), g_l(M)]` (module
    docstring).  Per-sample noise falls like :math:`1/B`; shared noise tends to
    :math:`\bar T_\infty`, the mask-induced trace of the full-data gradient, and the ratio is
    :math:`1 + (B-1)\rho`, :math:`\rho = \bar T_\infty/\bar T_1`.

    Parameters
    ----------
    strategy : Strategy
    U, V : arrays (n_out, d), (n_in, d)
    X, Y : arrays (n_in, N), (n_out, N)
        The data set the batches are drawn from.
    batch_sizes : sequence of int
    sampling : {"with_replacement", "without_replacement", "first"}
        Batches of ``B`` indices drawn uniformly with or without replacement (the expected
        trace over batches, in closed form), or the first ``B`` columns of ``X`` (the exact
        trace of that one batch; :func:`gradient_noise` per batch size).
    method : {"auto", "closed_form", "enumeration"}
        As in :func:`gradient_noise`.
    local_reparameterization : bool
        The Gaussian PerNodeDrop fast path (per sample only: ``per_batch`` is ``None``).
    max_configurations : int

    Returns
    -------
    BatchSizeNoise

    Examples
    --------
    Per-sample masks: the trace falls like :math:`\bar T_1 / B`; shared masks tend to
    :math:`\bar T_\infty`.

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> r = pt.gradient_noise_vs_batch_size(pt.Dropout(0.5), U, V, X, Y, [1, 2, 4])
    >>> bool(np.allclose(r.per_sample, r.single_sample_trace / np.array([1, 2, 4])))
    True
    >>> T1, Tinf = r.single_sample_trace, r.full_data_trace
    >>> bool(np.allclose(r.per_batch, Tinf + (T1 - Tinf) / np.array([1, 2, 4])))
    True
    """
    validate_strategy(strategy)
    sampling = check_choice("sampling", sampling, SAMPLINGS)
    method = _check_method(method)
    local_reparameterization = check_bool("local_reparameterization", local_reparameterization)
    max_configurations = check_positive_int("max_configurations", max_configurations)
    U, V, X, Y = _numpy_problem(U, V, X, Y, "X", "Y")
    N = X.shape[1]
    sizes = _check_batch_sizes(batch_sizes, N, sampling)  # the closed form in B holds no batch
    law = strategy.law(V.shape[0], V.shape[1], U.shape[0])
    _reject_covariance_only(law)
    local_layer = _check_local_reparameterization(strategy, law, local_reparameterization)
    if method == "auto":
        method = "closed_form" if (local_layer is not None or _single_independent_component(law) is not None) \
            else "enumeration"
    per_sample_law = bool(law.per_sample) or local_layer is not None
    tr_kk, T_all = _sample_traces(strategy, law, U, V, X, Y, local_layer, method, max_configurations)
    T1 = float(tr_kk.mean())
    T_pair = (N * T_all - T1) / (N - 1) if N > 1 else None
    Bf = sizes.astype(np.float64)
    if sampling == "first":
        ps, pb = [], []
        for B in sizes:
            r = gradient_noise(strategy, U, V, X[:, :B], Y[:, :B], method=method, full_covariance=False,
                               local_reparameterization=local_reparameterization,
                               max_configurations=max_configurations)
            ps.append(r.trace_per_sample)
            pb.append(r.trace_per_batch)
        per_sample = np.array(ps)
        per_batch = None if local_layer is not None else np.array(pb, dtype=np.float64)
    else:
        per_sample = T1 / Bf
        if sampling == "with_replacement":
            per_batch = T_all + (T1 - T_all) / Bf
        else:
            per_batch = T1 / Bf + (1 - 1 / Bf) * (T_pair if T_pair is not None else 0.0)
        if local_layer is not None:
            per_batch = None
    correlation = None if (local_layer is not None or T1 == 0) else T_all / T1
    if not (np.isfinite(T1) and np.isfinite(T_all)):
        # traces past the float range (the computation of the traces warned): every sum of them is
        # +inf too, where inf - inf would give NaN; their ratio is not determined
        per_sample, per_batch = (None if x is None else np.where(np.isnan(x), np.inf, x) for x in (per_sample, per_batch))
        T_pair = None if T_pair is None else np.inf
        correlation = None
    return BatchSizeNoise(
        batch_sizes=sizes, per_sample=per_sample, per_batch=per_batch,
        trace=per_sample if per_sample_law else per_batch,
        single_sample_trace=T1, full_data_trace=None if local_layer is not None else T_all,
        pair_trace=None if local_layer is not None else T_pair,
        correlation=correlation,
        sampling=sampling, per_sample_law=per_sample_law,
    )


def monte_carlo_gradient_noise_vs_batch_size(strategy, U, V, X, Y, batch_sizes, *, batches=8, draws=200, seed=0,
                                             sampling="with_replacement", via="network",
                                             local_reparameterization=False, device=None,
                                             progress=True) -> MonteCarloBatchSizeNoise:
    r"""Monte Carlo estimate of :math:`E_{\text{batch}}\,\mathrm{tr\,Cov}_M[g]` against ``B``
    from real autograd gradients.

    .. math::

        \widehat T(B) = \frac1R \sum_{r=1}^R \mathrm{tr}\,\widehat{\mathrm{Cov}}_M[g \mid
        \text{batch}_r], \qquad \mathrm{se} = \mathrm{sd}_r / \sqrt R,

    with ``R = batches`` batches of ``B`` indices drawn as ``sampling`` says and, for each,
    ``draws`` mask draws (unbiased sample variances).  With ``sampling="first"`` the batch is
    the first ``B`` columns and the ``R`` groups of draws share it.  The strategy's own mask
    sharing is used (see :func:`mask_sharing_pair` to compare the two).

    Parameters
    ----------
    strategy : Strategy
    U, V, X, Y : arrays
    batch_sizes : sequence of int
    batches : int
        Number :math:`R` of independent batches (at least 2).
    draws : int
        Mask draws per batch (at least 2).
    seed : int
    sampling : {"with_replacement", "without_replacement", "first"}
    via : {"network", "layers"}
        As in :func:`monte_carlo_gradient_noise`.
    local_reparameterization : bool
    device : str or torch.device, optional
    progress : bool
        Show a progress bar (tqdm) over the batches.

    Returns
    -------
    MonteCarloBatchSizeNoise

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> mc = pt.monte_carlo_gradient_noise_vs_batch_size(pt.Dropout(0.5), U, V, X, Y, [1, 4], batches=4,
    ...                                                  draws=100, seed=0, progress=False)
    >>> mc.trace.shape, bool(mc.trace[1] < mc.trace[0])  # per-sample noise falls with B
    ((2,), True)
    """
    validate_strategy(strategy)
    batches = check_count("batches", batches)
    draws = check_count("draws", draws)
    if batches < 2 or draws < 2:
        raise InvalidParameterError(f"batches and draws must be at least 2 to give a standard error; got batches={batches}, "
                         f"draws={draws}")
    seed = check_seed(seed)
    sampling = check_choice("sampling", sampling, SAMPLINGS)
    via = check_choice("via", via, VIAS)
    local_reparameterization = check_bool("local_reparameterization", local_reparameterization)
    U, V, X, Y = _numpy_problem(U, V, X, Y, "X", "Y")
    N = X.shape[1]
    sizes = _check_batch_sizes(batch_sizes, N, sampling, X.shape[0] + Y.shape[0] + U.size + V.size)
    law = strategy.law(V.shape[0], V.shape[1], U.shape[0])
    _check_local_reparameterization(strategy, law, local_reparameterization)
    if local_reparameterization and via != "layers":
        raise InvalidParameterError("local_reparameterization=True exists only in the torch layer: use via='layers'")
    device = resolve_device(device)
    rng = np.random.default_rng(seed)
    means, ses = [], []
    bar = tqdm(total=len(sizes) * batches, desc="gradient noise vs B", unit="batch",
               disable=not check_bool("progress", progress))
    for B in sizes:
        est = []
        for r in range(batches):
            if sampling == "with_replacement":
                idx = rng.integers(0, N, size=B)
            elif sampling == "without_replacement":
                idx = rng.choice(N, size=B, replace=False)
            else:
                idx = np.arange(B)
            g = _gradient_draws(strategy, U, V, X[:, idx], Y[:, idx], draws, int(rng.integers(2**62)), via,
                                local_reparameterization, device)
            with np.errstate(over="ignore", invalid="ignore"):
                est.append(g.var(axis=0, ddof=1).sum())
            bar.update()
        mean, se = _mean_se(est, f"monte_carlo_gradient_noise_vs_batch_size at B={B}")
        means.append(mean)
        ses.append(se)
    bar.close()
    return MonteCarloBatchSizeNoise(sizes, np.array(means), np.array(ses), sampling, via)
