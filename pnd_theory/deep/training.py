r"""Training a deep linear network with real sampled masks (torch, CPU or GPU).

.. math::

    \min_{W_1, \dots, W_L} E_{\text{mask}}\Big[\frac1N \sum_k \|y_k - f_M(x_k)\|^2\Big]
        = \frac1N \|Y - \bar W X\|_F^2 + R(W)

by Adam on the mini-batch loss with every mask drawn afresh at every step from its law (per
sample or per batch, as the law says); the closed form is used only to record the objective
of the iterates.  The learning rate is held for the first part of the run and then decays
linearly to zero (:func:`pnd_theory.studies.training.lr_multiplier`), so that the last iterate carries
little of the mask noise.  The product :math:`\bar W = W_L \cdots W_1` is also averaged over the
final ``average`` fraction of the steps: it is invariant under the rescalings of hidden units
along which the noise moves the weights freely, so its average is meaningful where an average
of the weights would not be.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from .._validation import (as_numpy_arrays, check_bool, check_count, check_data, check_dtype, check_positive_int,
                           check_real, check_seed, diverged, resolve_device)
from ..studies.training import lr_multiplier, objective_rise
from .closed import penalty_of_deep_law
from .network import check_layer_sizes, check_problem, check_widths, deep_law, product


@dataclass(frozen=True, eq=False)
class DeepTrainingResult:
    r"""Result of :func:`train`.

    Attributes
    ----------
    weights : list of numpy.ndarray
        The last iterate :math:`W_1, \dots, W_L`.
    objective : float
        Closed-form expected loss of the last iterate.
    product : numpy.ndarray
        :math:`\bar W` of the last iterate.
    average_product : numpy.ndarray
        :math:`\bar W` averaged over the final ``average`` fraction of the steps.
    singular_values, average_singular_values : numpy.ndarray
        Of ``product`` and of ``average_product``, descending.
    history : dict
        ``"step"``, ``"objective"`` (closed form of the iterates) and ``"batch_loss"``.
    """

    weights: list = field(repr=False)
    objective: float
    product: np.ndarray
    average_product: np.ndarray
    singular_values: np.ndarray
    average_singular_values: np.ndarray
    history: dict = field(repr=False)


def train(X, Y, widths, hidden=None, weight_noise=None, epochs=3000, lr=0.01, batch_size=None, seed=0,
          device=None, dtype=torch.float64, init_scale=1.0, hold=0.25, average=0.25, record_every=None,
          progress=False) -> DeepTrainingResult:
    r"""Train :math:`f(x) = W_L N_{L-1} W_{L-1} \cdots N_1 W_1 x` with real sampled masks.

    .. math::

        \min_W \frac1B \sum_{k \in \text{batch}} \|y_k - f_{M}(x_k)\|^2, \qquad
        M \text{ drawn afresh at every step}

    by Adam, every mask drawn afresh at every step from its law (per sample or per batch, as the
    law says); the expectation of this loss is :math:`\frac1N \|Y - \bar W X\|_F^2 + R(W)`
    (theory page, equation :eq:`deep-loss`).  The learning rate is held for the first ``hold``
    of the run, then decays linearly to zero; the product :math:`\bar W` (invariant under the
    rescalings of hidden units along which the noise moves the weights freely) is also averaged
    over the last ``average`` of the steps.  On small problems the end point lands on
    :func:`pnd_theory.deep.global_minimizer` (the tests hold it there).

    Parameters
    ----------
    X, Y : arrays ``(n_0, N)``, ``(n_L, N)``
    widths : sequence of int
        Hidden widths ``(n_1, ..., n_{L-1})``.
    hidden, weight_noise : list, optional
        As in :func:`pnd_theory.deep.expected_loss`.
    epochs : int
        Passes over the data.
    lr : float
        Adam's base learning rate.
    batch_size : int, optional
        Samples per step (the whole data set by default).
    seed : int
        Seeds the initial weights and the sample order (CPU) and the masks (on ``device``).
    device : str or torch.device, optional
        The CPU by default; ``"cuda"`` must be present.
    dtype : torch.dtype
    init_scale : float
        Initial :math:`W_l` entries are :math:`N(0, \text{init\_scale}^2 / n_{l-1})`.
    hold : float
        Fraction of the run at the base learning rate, in [0, 1).
    average : float
        Final fraction of the steps over which the product is averaged, in (0, 1].
    record_every : int, optional
        Steps between records of the history (about 200 records by default).
    progress : bool
        Show a progress bar.

    Returns
    -------
    DeepTrainingResult

    Examples
    --------
    Training with sampled masks ends near the global minimizer of the expected loss:

    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2, 10))
    >>> Y = np.outer([1.0, -1.0], [1.0, 0.5]) @ X + 0.1 * rng.normal(size=(2, 10))
    >>> hidden = [pt.Dropout(0.5), pt.Dropout(0.5)]
    >>> trained = pt.deep.train(X, Y, widths=[2, 2], hidden=hidden, epochs=400, lr=0.05)
    >>> best = pt.deep.global_minimizer(X, Y, widths=[2, 2], hidden=hidden, starts=1)
    >>> bool(trained.objective < 1.02 * best.objective)
    True
    >>> bool(np.allclose(trained.average_singular_values, best.singular_values, atol=0.02))
    True
    """
    widths = check_widths(widths)
    epochs = check_count("epochs", epochs)
    lr = check_real("lr", lr, "a positive learning rate", low=0.0, low_open=True)
    seed = check_seed(seed)
    dtype = check_dtype(dtype)
    device = resolve_device(device)
    init_scale = check_real("init_scale", init_scale, "a positive real number", low=0.0, low_open=True)
    hold = check_real("hold", hold, "a fraction in [0, 1)", low=0.0, high=1.0, high_open=True)
    average = check_real("average", average, "a fraction in (0, 1]", low=0.0, high=1.0, low_open=True)
    progress = check_bool("progress", progress)
    Xn, Yn = (as_numpy_arrays(X=X, Y=Y)[k] for k in ("X", "Y"))
    check_data(Xn, Yn, None, None)
    sizes = (Xn.shape[0],) + widths + (Yn.shape[0],)
    check_layer_sizes(sizes, Xn.shape[1])
    check_problem([np.zeros((sizes[l + 1], sizes[l])) for l in range(len(sizes) - 1)], Xn, Yn)
    law = deep_law(sizes, hidden, weight_noise)
    N = Xn.shape[1]
    batch_size = N if batch_size is None else check_positive_int("batch_size", batch_size)
    if batch_size > N:
        batch_size = N
    steps_per_epoch = math.ceil(N / batch_size)
    total = epochs * steps_per_epoch
    record_every = max(1, total // 200) if record_every is None else check_positive_int("record_every", record_every)
    cpu = torch.Generator().manual_seed(seed)
    masks_gen = torch.Generator(device=device).manual_seed(seed + 1)
    Xt = torch.as_tensor(Xn, dtype=dtype, device=device)
    Yt = torch.as_tensor(Yn, dtype=dtype, device=device)
    S = Xt @ Xt.T / N
    Ws = [(init_scale / math.sqrt(sizes[l]) * torch.randn((sizes[l + 1], sizes[l]), generator=cpu,
                                                           dtype=torch.float64)).to(device=device, dtype=dtype)
          .requires_grad_(True) for l in range(len(sizes) - 1)]
    optimizer = torch.optim.Adam(Ws, lr=lr)
    start_average = int(total * (1.0 - average))
    acc = torch.zeros((sizes[-1], sizes[0]), dtype=torch.float64, device=device)
    count = 0
    history = {"step": [], "objective": [], "batch_loss": []}
    steps = range(total)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="training (deep)", unit="step")
    order = torch.arange(N)
    for step in steps:
        k = step % steps_per_epoch
        if k == 0 and batch_size < N:
            order = torch.randperm(N, generator=cpu)
        idx = order[k * batch_size:(k + 1) * batch_size].to(device)
        Xb, Yb = Xt[:, idx], Yt[:, idx]
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_multiplier("hold-linear", step / total, hold)
        masks = law.sample(1, Xb.shape[1], masks_gen, device, dtype)
        residual = Yb.T - law.predict(Ws, Xb, masks)[0]
        loss = (residual * residual).sum(1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if not math.isfinite(float(loss.detach())):
            raise diverged("training", lr, step)
        with torch.no_grad():
            if step >= start_average:
                acc += product(Ws).to(torch.float64)
                count += 1
            if step % record_every == 0 or step == total - 1:
                history["step"].append(step + 1)
                history["batch_loss"].append(float(loss.detach()))
                history["objective"].append(_objective(law, Ws, Xt, Yt, S))
    weights = [W.detach().cpu().numpy().astype(np.float64) for W in Ws]
    A = product(weights)
    A_avg = (acc / max(count, 1)).cpu().numpy()
    objective = history["objective"][-1]
    if not (np.isfinite(objective) and np.isfinite(A).all() and np.isfinite(A_avg).all()):
        raise diverged("training", lr, total)
    rise = objective_rise(objective, Yn)
    if rise:
        warnings.warn(f"pt.deep.train(lr={lr:g}, epochs={epochs}) did not converge: {rise}; lower lr or train longer",
                      RuntimeWarning, stacklevel=2)
    return DeepTrainingResult(weights, history["objective"][-1], A, A_avg, np.linalg.svd(A, compute_uv=False),
                              np.linalg.svd(A_avg, compute_uv=False), history)


def _objective(law, Ws, X, Y, S):
    Wd = [W.detach().to(torch.float64) for W in Ws]
    H = X.to(torch.float64)
    for W in Wd:
        H = W @ H
    r = Y.to(torch.float64) - H
    return float((r * r).sum() / X.shape[1] + penalty_of_deep_law(law, Wd, S.to(torch.float64)))
