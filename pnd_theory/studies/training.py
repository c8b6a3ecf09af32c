r"""Monte Carlo training of the linear network with real sampled masks.

.. math::

    \min_{U, V}\; E_{\text{mask}}\Big[\frac1N \sum_{k=1}^N \|y_k - f(x_k)\|^2\Big]
        = L(U, V) + R(U, V), \qquad
    f(x) = (U \circ M_U)\,\mathrm{diag}(\xi)\,(V \circ M_V)^\top x,

by stochastic gradient descent on the mini-batch loss
:math:`\frac1B \sum_{k \in \text{batch}} \|y_k - f(x_k)\|^2` with masks drawn afresh at every
step from the strategy's law (:class:`pnd_theory.nn.LinearNetwork`).  The closed-form penalty
is never part of the training loss: it is only used to *record* the deterministic objective
:math:`L + R` of the iterates (:func:`pnd_theory.expected_loss`), which is what the end point
is held against (:func:`pnd_theory.global_minimizer`).

Landing on the optimum.  The mask noise makes the gradient a noisy but unbiased estimate of
:math:`\nabla(L + R)`; with a constant step the iterates fluctuate around the optimum with a
spread that grows with the step.  :func:`train` therefore holds the learning rate for the
first part of the run (to reach the optimum and let the slow directions settle), then decays
it linearly to zero, and averages the iterates over the final part (tail averaging).

Averaging the factors is not averaging the product, and is only meaningful in a fixed gauge.
Rescaling a hidden unit, :math:`(u_j, v_j) \to (c\,u_j, v_j / c)`, leaves the network unchanged
for every mask of every strategy (each mask entry multiplies one weight or one whole unit), so
the noise moves the iterates freely along these orbits, and the average of two rescaled copies
of one network is a different network.  Each iterate is put in the balanced gauge
:math:`\|u_j\| = \|v_j\|` before it enters the average.  A second family of flat directions
has no gauge: the factorizations of one product with equal unit contributions
:math:`\|u_j\|\,\|S^{1/2} v_j\|` form a continuum when :math:`d \ge 3`, and with a large
constant step the iterates diffuse along it, so that the average of the factors falls off
it (measured with shared DropConnect masks and a constant step: the average of the factors
missed the singular values by 1.6 to 1.9% where the average of the products was within
0.6%).  The average therefore covers only the
second half of the decay, where the step is small and the drift negligible; there the
balanced average of the factors matched the average of the products to within the noise.
With a large step on a wide network the drift can still show: Dropout at width 16 with
``lr=0.03`` for 4000 epochs gave an average whose smallest singular value fell 15% short,
while the last iterate (``TrainingResult.last_U``, ``last_V``) stayed within 0.1%; rotating
every iterate onto a reference (orthogonal Procrustes) cured the singular values but broke
the units' equalization and raised :math:`L + R` tenfold.  Use ``average=0`` or the last
iterate in that regime.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from .._backend import max_abs, namespace
from .._validation import (MAX_COUNT, Constraint, DivergenceError, Flag, InvalidParameterError, OneOf, PositiveInt,
                           RealIn, Seed, as_arrays, check_arguments, check_data, check_dtype, check_problem_sizes,
                           diverged, invalid, resolve_device)
from ..nn.network import DEFAULT_INIT_SCALE, LinearNetwork, _initial_factor, check_init_scale
from .._display import ResultDisplay
from ..gradient_covariance import gradient_noise
from ..routes.penalty import loss_of_law
from ..laws.strategies import validate_strategy
from .._threads import limit_threads, threads_for

__all__ = ["train", "TrainingResult", "TrainingHistory", "SCHEDULES", "OPTIMIZERS", "lr_multiplier"]

#: named learning-rate schedules (see :func:`lr_multiplier`)
SCHEDULES = ("hold-linear", "linear", "cosine", "constant")
OPTIMIZERS = ("sgd", "adam")
#: what drives the updates (see :func:`train`, ``noise``)
NOISE_MODES = ("masks", "penalty", "penalty+matched")


def lr_multiplier(schedule, fraction: float, hold: float = 0.25) -> float:
    r"""Factor applied to the base learning rate at ``fraction`` :math:`= t / T` of the run.

    * ``"hold-linear"``: 1 for :math:`t/T < h` (``hold``), then linear from 1 to 0 at the end;
    * ``"linear"``: :math:`1 - t/T`;
    * ``"cosine"``: :math:`\tfrac12 (1 + \cos(\pi t / T))`;
    * ``"constant"``: 1;
    * a callable: ``schedule(fraction)``.
    """
    if callable(schedule):
        return float(schedule(fraction))
    if schedule == "hold-linear":
        return 1.0 if fraction < hold else (1.0 - fraction) / (1.0 - hold)
    if schedule == "linear":
        return 1.0 - fraction
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * fraction))
    return 1.0


@dataclass
class TrainingHistory(ResultDisplay):
    r"""What :func:`train` recorded every ``record_every`` steps (and at the last step).

    Attributes
    ----------
    step : numpy.ndarray of int
        Index of the recorded step (1 = after the first update).
    batch_loss : numpy.ndarray
        The stochastic mini-batch loss :math:`\frac1B \sum_k \|y_k - f(x_k)\|^2` with
        sampled masks at the recorded step (before its update).
    mean_batch_loss : numpy.ndarray
        The mean of the mini-batch losses since the previous record (an unbiased estimate of
        the average expected loss over those steps; smoother than ``batch_loss``).
    objective : numpy.ndarray
        The deterministic objective :math:`L(U, V) + R(U, V)` of the current parameters
        (after the update), :func:`pnd_theory.expected_loss` on the full data set.
    singular_values : numpy.ndarray (records, min(n_out, n_in))
        Of :math:`U V^\top` after the update, descending.
    lr : numpy.ndarray
        The learning rate used at the recorded step.
    """

    step: np.ndarray
    batch_loss: np.ndarray
    mean_batch_loss: np.ndarray
    objective: np.ndarray
    singular_values: np.ndarray
    lr: np.ndarray

    def __len__(self):
        return len(self.step)

    def to_dict(self) -> dict:
        """Plain lists and floats, ready for ``json.dump``."""
        return {
            "step": [int(s) for s in self.step],
            "batch_loss": [float(v) for v in self.batch_loss],
            "mean_batch_loss": [float(v) for v in self.mean_batch_loss],
            "objective": [float(v) for v in self.objective],
            "singular_values": [[float(v) for v in row] for row in self.singular_values],
            "lr": [float(v) for v in self.lr],
        }


@dataclass(eq=False)
class TrainingResult(ResultDisplay):
    r"""The end point of :func:`train` and its history.

    Attributes
    ----------
    U : numpy.ndarray (n_out, width)
    V : numpy.ndarray (n_in, width)
        The returned factors (the tail average when averaging, else the last iterate), in the
        package's conventions.
    objective : float
        :math:`L(U, V) + R(U, V)` of the returned factors (:func:`pnd_theory.expected_loss`).
    singular_values : numpy.ndarray
        Of :math:`U V^\top`, descending.
    history : TrainingHistory
        The iterates along the run (not the average).
    network : LinearNetwork
        A network holding the returned factors, in evaluation mode, on the training device.
    last_U, last_V : numpy.ndarray
        The last iterate (equal to ``U``, ``V`` without averaging).
    last_objective : float
        :math:`L + R` of the last iterate.
    averaged_steps : int
        Number of iterates in the tail average (0: no averaging).
    steps : int
        Number of parameter updates.
    strategy, width, seed, device
        The settings of the run (``device`` as a string).
    """

    U: np.ndarray
    V: np.ndarray
    objective: float
    singular_values: np.ndarray
    history: TrainingHistory
    network: LinearNetwork = field(repr=False)
    last_U: np.ndarray = field(repr=False)
    last_V: np.ndarray = field(repr=False)
    last_objective: float
    averaged_steps: int
    steps: int
    strategy: object
    width: int
    seed: int
    device: str
    _plot_function = "plot_training"

    @property
    def product(self) -> np.ndarray:
        r""":math:`A = U V^\top` of the returned factors, shape ``(n_out, n_in)``."""
        return self.U @ self.V.T

    def to_dict(self) -> dict:
        """Settings, end point and history as plain lists and floats (for JSON)."""
        return {
            "strategy": repr(self.strategy),
            "width": self.width,
            "seed": self.seed,
            "device": self.device,
            "steps": self.steps,
            "averaged_steps": self.averaged_steps,
            "objective": float(self.objective),
            "last_objective": float(self.last_objective),
            "singular_values": [float(v) for v in self.singular_values],
            "U": self.U.tolist(),
            "V": self.V.tolist(),
            "history": self.history.to_dict(),
        }


# --------------------------------------------------------------------------- validation

def _training_device(device) -> torch.device:
    """``None``: the GPU when one is present, else the CPU; a requested CUDA device must exist."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise InvalidParameterError(f"device must be None, a string such as 'cpu' or 'cuda', or a torch.device; got {device!r}")
    try:
        return resolve_device(device)
    except RuntimeError as err:  # torch.device("nonsense")
        raise InvalidParameterError(f"device {device!r} is not a valid torch device: {err}") from None


def _balanced(U, V):
    r"""The same network in the balanced gauge :math:`\|u_j\| = \|v_j\|` (unit by unit)."""
    nu = U.norm(dim=0)
    nv = V.norm(dim=0)
    c = torch.where((nu > 0) & (nv > 0), torch.sqrt(nv / torch.where(nu > 0, nu, 1.0)), torch.ones_like(nu))
    return U * c, V / c


def _covariance_root(strategy, U, V, x_rows, y_rows):
    r"""A root :math:`R` with :math:`R R^\top = \Sigma`, the closed-form mask-induced covariance of
    the batch gradient (parameters ``U`` then ``V``, row-major), by a symmetric eigendecomposition."""
    def arr(t):
        return t.detach().to("cpu", torch.float64).numpy()
    cov = gradient_noise(strategy, arr(U), arr(V), arr(x_rows).T, arr(y_rows).T, full_covariance=True).covariance
    w, Q = np.linalg.eigh(cov)
    return torch.as_tensor(Q * np.sqrt(np.clip(w, 0.0, None)))


def _add_gradient_noise(U, V, root, generator):
    r"""Add :math:`\xi = R z`, :math:`z \sim N(0, I)`, to the gradients of ``U`` and ``V``."""
    xi = root @ torch.randn(root.shape[1], generator=generator, dtype=torch.float64)
    n = U.numel()
    U.grad.add_(xi[:n].reshape(U.shape).to(U.grad))
    V.grad.add_(xi[n:].reshape(V.shape).to(V.grad))


# --------------------------------------------------------------------------- training

def train(strategy, X, Y, width, epochs=4000, lr=0.003, batch_size=None, seed=0, device=None,
          dtype=torch.float64, progress=True, record_every=None, init_scale=DEFAULT_INIT_SCALE,
          schedule="hold-linear", *, hold=0.25, average=0.375, optimizer="adam", momentum=0.9,
          U_init=None, V_init=None, noise="masks", matched_every=1, threads=None) -> TrainingResult:
    r"""Train :math:`f(x) = U\,\mathrm{diag}(\text{mask})\,V^\top x` with real sampled masks.

    .. math::

        \min_{U, V}\; E_{\text{mask}}\Big[\frac1N \sum_k \|y_k - f(x_k)\|^2\Big]
            = L(U, V) + R(U, V)

    by Adam (or SGD with momentum) on the mini-batch loss
    :math:`\frac1B \sum_{k \in \text{batch}} \|y_k - f(x_k)\|^2`, the masks drawn afresh at
    every step (one per sample for per-sample laws, one per mini-batch for per-batch laws such
    as ``DropConnect(per_sample=False)``); the closed-form penalty is never part of the
    training loss.  The step follows ``schedule``; the returned factors are the average of
    the iterates over the last ``average`` fraction of the steps, each in the balanced gauge
    :math:`\|u_j\| = \|v_j\|` (a unit's rescaling :math:`(c\,u_j, v_j / c)` leaves the network
    unchanged for every mask, so the noise moves the iterates freely along it; averages are
    taken in one gauge).  With the width condition (theory page, :ref:`theory-induced`)
    the end point lands on :func:`pnd_theory.global_minimizer`.

    Parameters
    ----------
    strategy : Strategy
        Any pnd_theory strategy with a numeric law.
    X : array (n_in, N)
        Inputs, samples as columns (numpy or torch).
    Y : array (n_out, N)
        Targets, samples as columns.
    width : int
        Number of hidden units :math:`d`.
    epochs : int
        Passes over the data; the number of steps is ``epochs * ceil(N / batch_size)``.
    lr : float
        Base learning rate (> 0).  With Adam (the default) it is roughly the size of a step
        of each weight, whatever the scale of the data; with SGD the step scales with the
        gradient, and ``lr`` must be chosen for the data (about 0.002 with ``momentum=0.9``
        for inputs and targets of order one).
    batch_size : int, optional
        Samples per step, at most ``N``; the full data set by default (with per-sample masks
        the mask noise of the gradient then averages over all ``N`` samples).  With smaller
        batches each epoch visits the samples in a new random order, and the last batch of an
        epoch may be smaller.
    seed : int
        Seeds the initial weights and the order of the samples (a CPU generator) and the
        masks (a generator on ``device``): one seed gives one result on one device.
    device : str or torch.device, optional
        ``None``: the GPU when one is present, else the CPU.  ``"cuda"`` must be present.
    dtype : torch.dtype
        ``torch.float64`` (default) or ``torch.float32``.
    progress : bool
        Show a progress bar (tqdm) with the current objective :math:`L + R`.
    record_every : int, optional
        Record the history every this many steps (and at the last step); about 200 records
        by default.
    init_scale : float
        Initial weights are :math:`N(0, (\text{init\_scale}/\sqrt{d})^2)` entries (a small
        start near the origin), unless ``U_init``/``V_init`` are given.
    schedule : {"hold-linear", "linear", "cosine", "constant"} or callable
        Learning-rate multiplier as a function of the fraction of the run done
        (:func:`lr_multiplier`); ``"hold-linear"`` holds ``lr`` for the first ``hold`` of the
        run, then decays it linearly to zero.
    hold : float, keyword-only
        The held fraction of ``"hold-linear"``, in [0, 1).
    average : float, keyword-only
        Fraction of the final steps over which the iterates are averaged, in [0, 1); 0 returns
        the last iterate.  The default averages over the second half of the decay of
        ``"hold-linear"``: there the step is small enough for the iterates not to drift along
        the flat directions of :math:`L + R` (the factorizations of one product with equal
        unit contributions, a continuum when :math:`d \ge 3`), yet the average
        spans many correlation times of the mask noise.
    optimizer : {"adam", "sgd"}, keyword-only
        ``"adam"`` (default; ``torch.optim.Adam`` with its default betas) or ``"sgd"``
        (``torch.optim.SGD`` with ``momentum``).
    momentum : float, keyword-only
        Momentum of SGD, in [0, 1); unused by Adam.
    U_init : array (n_out, width), optional, keyword-only
    V_init : array (n_in, width), optional, keyword-only
        Initial factors.
    noise : {"masks", "penalty", "penalty+matched"}, keyword-only
        What drives the updates, to separate the explicit from the implicit effect of the
        noise (Wei, Kakade and Ma, ICML 2020).  ``"masks"``: real sampled masks (the default,
        as above).  ``"penalty"``: no mask; the deterministic batch objective
        :math:`L + R` in closed form (:func:`pnd_theory.expected_loss` on the batch, through
        autograd), so only the explicit penalty acts.  ``"penalty+matched"``: the same
        gradient plus Gaussian noise :math:`\xi \sim N(0, \Sigma)` whose covariance
        :math:`\Sigma` is the closed-form mask-induced covariance of the step's gradient at
        the current factors on the batch (:func:`pnd_theory.gradient_noise`): the masks'
        first two moments of the update without the masks.  In both penalty modes
        ``history.batch_loss`` records the batch's :math:`L + R`.
    matched_every : int, keyword-only
        With ``"penalty+matched"``, recompute :math:`\Sigma` every this many steps (1: at
        every step; larger values reuse it while the factors move little, for speed).
    threads : int, optional, keyword-only
        CPU threads for the run (torch, BLAS and the mask kernels; restored afterwards).
        None: one thread when a step has fewer than about four million multiply-adds, where
        more threads only slow the small products down, else torch's current count.

    Returns
    -------
    TrainingResult
        ``.U``, ``.V`` (numpy), ``.objective``, ``.singular_values``, ``.history``
        (:class:`TrainingHistory`, with ``to_dict()``), ``.network``, ``.product``.

    Raises
    ------
    DivergenceError
        (an ``InvalidParameterError`` naming ``lr``, and a ``FloatingPointError``) If the loss becomes non-finite (the learning rate is too large for the data; data whose
        squares overflow float64 are refused before training, naming ``X`` or ``Y``).

    Warns
    -----
    RuntimeWarning
        When the run ends far from a stationary point of :math:`L + R` (relative gradient over
        ``STATIONARITY_TOLERANCE``) or with an objective ``OBJECTIVE_RISE`` times that of zero
        factors or of the best recorded iterate, with the numbers.

    Notes
    -----
    Why these defaults.  On the problems of the test suite (``n_in = n_out = 4``, ``N = 512``,
    full batch, 4000 to 8000 steps) the gap is set by the slowest direction of the noisy
    dynamics, the equalization of the unit contributions :math:`\|u_j\|\,\|S^{1/2} v_j\|`
    (the theory page): its curvature is proportional to the noise strength while its noise is
    not small.  It needs a long phase at the full step (a fast decay after a short hold
    left it unequalized and missed the objective by up to 2%), and the decay must end near zero
    for the last fluctuations to die out.  Adam with ``lr = 3e-3`` landed as well as the best
    tuned SGD on per-sample laws and better on shared masks, and its step does not depend on
    the scale of the data.  Shared masks (DropConnect, one mask per mini-batch) do not average
    over the batch (the theory page): at the optimum their gradient noise has about ten times
    the standard deviation of that of per-sample masks over 512 samples, and they need about
    twice as many steps to land within 1% on the singular values.

    Examples
    --------
    >>> import numpy as np
    >>> import pnd_theory as pt
    >>> U, V, X, Y = pt.random_problem(n_in=3, width=4, n_out=2, n_samples=8, seed=0)
    >>> result = pt.train(pt.Dropout(0.5), X, Y, width=4, epochs=200, progress=False, seed=0)
    >>> result.U.shape, result.V.shape
    ((2, 4), (3, 4))

    Training with sampled masks ends near the global minimum of the expected loss:

    >>> best = pt.global_minimizer(pt.Dropout(0.5), X, Y, width=4).objective
    >>> bool(best <= result.objective < 1.2 * best)
    True
    """
    a = _checked_arguments(dict(locals()))
    run = _build(a)
    restore_threads = limit_threads(threads_for(a["threads"], 3 * a["batch_size"] * a["width"] * (run.n_in + run.n_out)))
    try:
        _loop(run, a)
    finally:
        restore_threads()
        if run.bar is not None:
            run.bar.close()
    return _result(run, a)


# --------------------------------------------------------------------------- train, in stages

class _Checked(Constraint):
    """A constraint checked by one of the package's checkers ``fn(value, name)``."""

    def __init__(self, fn, violations, optional=False):
        self.fn, self.violations, self.optional = fn, violations, optional

    def check(self, name, value):
        return self.fn(value, name)


#: the constraints of :func:`train`'s arguments, checked in one place (the bad-argument tests
#: read this table); ``batch_size``, ``record_every`` and ``width`` are checked against the data
#: and the strategy after it
TRAIN_PARAMETERS = {
    "width": PositiveInt(), "epochs": PositiveInt(), "lr": RealIn(0.0, math.inf, low_open=True),
    "batch_size": PositiveInt(optional=True), "seed": Seed(),
    "device": _Checked(lambda v, name: _training_device(v), violations=(3, "nonsense"), optional=True),
    "dtype": _Checked(check_dtype, violations=(torch.int64, "float64")), "progress": Flag(),
    "record_every": PositiveInt(optional=True),
    "init_scale": _Checked(lambda v, name: check_init_scale(v), violations=(0.0, -1.0, math.nan)),
    "schedule": OneOf(SCHEDULES, callable_ok=True), "hold": RealIn(0.0, 1.0, high_open=True),
    "average": RealIn(0.0, 1.0, high_open=True), "optimizer": OneOf(OPTIMIZERS),
    "momentum": RealIn(0.0, 1.0, high_open=True), "noise": OneOf(NOISE_MODES), "matched_every": PositiveInt(),
    "threads": _Checked(lambda v, name: threads_for(v, 0), violations=(0, 1.5), optional=True),
}


#: the most steps a run may be asked for (beyond it, a count is refused rather than run for ages)
MAX_STEPS = MAX_COUNT


def _checked_arguments(arguments: dict) -> dict:
    """Stage 1: every argument checked, once; the data as arrays; derived sizes."""
    a = check_arguments(TRAIN_PARAMETERS, arguments)
    validate_strategy(a["strategy"])
    # the data are values here: tensors that require grad are read without their graph
    _, arrays = as_arrays(**{k: a[k].detach() if isinstance(a[k], torch.Tensor) else a[k] for k in ("X", "Y")})
    check_data(arrays["X"], arrays["Y"], None, None)
    a["X"], a["Y"] = arrays["X"], arrays["Y"]
    for name in ("X", "Y"):  # the loss sums squares over samples: they must stay finite float64
        top = max_abs(namespace(a[name]), a[name])
        if top > math.sqrt(1e300 / a["X"].shape[1]):
            raise invalid(name, f"data whose entries squared and summed over the {a['X'].shape[1]} samples are "
                          f"finite in float64 (largest entry {top:.3g}; scale the data)", "an array")
    n_in, N = a["X"].shape
    check_problem_sizes(n_in, a["width"], a["Y"].shape[0], N)  # before the law or the network allocates
    a["law"] = a["strategy"].law(n_in, a["width"], a["Y"].shape[0])  # validates the width (block size, rates)
    a["device"] = _training_device(a["device"])
    if a["batch_size"] is None:
        a["batch_size"] = N
    if a["batch_size"] > N:
        raise invalid("batch_size", f"at most the number of samples N = {N}", a["batch_size"])
    batches = -(-N // a["batch_size"])
    if a["epochs"] * batches > MAX_STEPS:
        raise invalid("epochs", f"at most {MAX_STEPS // batches} (at most {MAX_STEPS} steps of {batches} batches "
                      "per epoch)", a["epochs"])
    a["steps"] = a["epochs"] * batches
    if a["record_every"] is None:
        a["record_every"] = max(1, a["steps"] // 200)
    return a


class _Run:
    """Stage 2's state: the network, its optimizer, the data on the device, the records."""


def _build(a: dict) -> _Run:
    """Stage 2: data on the device, the network, the optimizer, the generators, the records."""
    run = _Run()
    device, dtype, seed = a["device"], a["dtype"], a["seed"]
    run.n_in, run.N = a["X"].shape
    run.n_out = a["Y"].shape[0]
    U_init = a["U_init"] if a["U_init"] is None else _initial_factor(
        "U_init", a["U_init"], (run.n_out, a["width"]), a["init_scale"], None, dtype, device)
    V_init = a["V_init"] if a["V_init"] is None else _initial_factor(
        "V_init", a["V_init"], (run.n_in, a["width"]), a["init_scale"], None, dtype, device)
    X_t = torch.as_tensor(a["X"]).to(device=device, dtype=dtype)
    Y_t = torch.as_tensor(a["Y"]).to(device=device, dtype=dtype)
    run.X_rows, run.Y_rows = X_t.T.contiguous(), Y_t.T.contiguous()  # samples as rows for the network
    run.X_64, run.Y_64 = X_t.to(torch.float64), Y_t.to(torch.float64)
    run.cpu_generator = torch.Generator().manual_seed(seed)
    run.noise_generator = torch.Generator().manual_seed(seed)  # the matched Gaussian noise
    mask_generator = torch.Generator(device=device).manual_seed(seed)
    run.net = LinearNetwork(run.n_in, a["width"], run.n_out, a["strategy"], device=device, dtype=dtype,
                            generator=mask_generator, U=U_init, V=V_init, init_scale=a["init_scale"],
                            init_generator=run.cpu_generator)
    run.net.train()
    params = [run.net.U, run.net.V]
    if a["optimizer"] == "sgd":
        run.opt = torch.optim.SGD(params, lr=a["lr"], momentum=a["momentum"])
    else:
        run.opt = torch.optim.Adam(params, lr=a["lr"])
    run.average_from = a["steps"] - int(round(a["average"] * a["steps"]))  # first averaged step (0-based)
    run.sum_U = torch.zeros_like(run.net.U.detach())
    run.sum_V = torch.zeros_like(run.net.V.detach())
    run.n_averaged = 0
    run.rec = {"step": [], "batch_loss": [], "mean_batch_loss": [], "objective": [], "singular_values": [], "lr": []}
    run.bar = None
    if a["progress"]:
        from tqdm.auto import tqdm

        run.bar = tqdm(total=a["steps"], desc=f"train {a['strategy']!r}", unit="step", mininterval=0.5)
    return run


def _objective(run: _Run, a: dict, U, V) -> float:
    """:math:`L + R` of the full data in float64, whatever the training dtype."""
    return float(loss_of_law(a["law"], U.to(torch.float64), V.to(torch.float64), run.X_64, run.Y_64))


def _loop(run: _Run, a: dict) -> None:
    """Stage 3: the steps."""
    net, opt, N, batch_size, steps = run.net, run.opt, run.N, a["batch_size"], a["steps"]
    loss_sum = torch.zeros((), device=a["device"], dtype=a["dtype"])
    losses_since = 0
    step = 0
    for _ in range(a["epochs"]):
        # full batch: every step sees all samples, each with fresh masks; no order to draw
        order = None if batch_size == N else torch.randperm(N, generator=run.cpu_generator).to(a["device"])
        for start in range(0, N, batch_size):
            factor = lr_multiplier(a["schedule"], step / steps, a["hold"])
            if not (math.isfinite(factor) and factor >= 0):
                raise InvalidParameterError(f"schedule must return a finite non-negative multiplier; got {factor!r} "
                                            f"at fraction {step / steps:.4g} of the run")
            step_lr = a["lr"] * factor
            for group in opt.param_groups:
                group["lr"] = step_lr
            if order is None:
                x_batch, y_batch = run.X_rows, run.Y_rows
            else:
                idx = order[start:start + batch_size]
                x_batch, y_batch = run.X_rows[idx], run.Y_rows[idx]
            if a["noise"] == "masks":
                loss = ((y_batch - net(x_batch)) ** 2).sum(dim=1).mean()
            else:  # the batch's closed-form L + R, no mask
                loss = loss_of_law(a["law"], net.U, net.V, x_batch.T, y_batch.T)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if a["noise"] == "penalty+matched":
                if step % a["matched_every"] == 0:
                    root = _covariance_root(a["strategy"], net.U, net.V, x_batch, y_batch)
                _add_gradient_noise(net.U, net.V, root, run.noise_generator)
            opt.step()
            loss_sum += loss.detach()
            losses_since += 1
            if step >= run.average_from:
                with torch.no_grad():
                    U_b, V_b = _balanced(net.U, net.V)
                    run.sum_U += U_b
                    run.sum_V += V_b
                run.n_averaged += 1
            step += 1
            if step % a["record_every"] == 0 or step == steps:
                _record(run, a, step, step_lr, float(loss.detach()), float(loss_sum) / losses_since)
                loss_sum.zero_()
                losses_since = 0
            if run.bar is not None:
                run.bar.update(1)


def _divergence(a: dict, step: int) -> DivergenceError:
    """The error of a run that stopped being finite: the learning rate (data whose squares
    overflow were refused before the run, in :func:`_checked_arguments`)."""
    return diverged("training (loss, weights, product and objective)", a["lr"], step)


def _record(run: _Run, a: dict, step: int, step_lr: float, batch_loss: float, mean_batch_loss: float) -> None:
    """One record of the history; a non-finite loss or weight stops the run."""
    net = run.net
    finite = bool(torch.isfinite(net.U).all() and torch.isfinite(net.V).all())
    if finite:
        with torch.no_grad():
            product = net.U.detach() @ net.V.detach().T
        finite = bool(torch.isfinite(product).all())
    if finite and math.isfinite(batch_loss):
        # singular values of the product divided by its largest entry (scaled back): no
        # overflow inside the SVD where the product itself is finite
        top = float(product.abs().max()) or 1.0
        sv = torch.linalg.svdvals(product / top) * top
        obj = _objective(run, a, net.U.detach(), net.V.detach())
        finite = bool(torch.isfinite(sv).all()) and math.isfinite(obj)
    if not (finite and math.isfinite(batch_loss)):
        raise _divergence(a, step)
    rec = run.rec
    rec["step"].append(step)
    rec["batch_loss"].append(batch_loss)
    rec["mean_batch_loss"].append(mean_batch_loss)
    rec["objective"].append(obj)
    rec["singular_values"].append(sv.cpu().numpy())
    rec["lr"].append(step_lr)
    if run.bar is not None:
        run.bar.set_postfix(objective=f"{obj:.6g}", refresh=False)


#: a run warns when the relative gradient of L + R at its end point exceeds this ...
STATIONARITY_TOLERANCE = 3.0
#: ... or when its objective exceeds this many times that of zero factors (an upper bound on
#: the optimum), or this many times the lowest objective along the run
OBJECTIVE_RISE = 10.0


def objective_rise(objective: float, Y) -> str | None:
    r"""The finding, in words, of an end objective ``OBJECTIVE_RISE`` times that of zero factors
    (:math:`\frac1N\|Y\|^2`, an upper bound on the optimum of any of these objectives), or None."""
    zero = float((np.asarray(Y, dtype=np.float64) ** 2).sum(axis=0).mean())
    if zero > 0 and objective > OBJECTIVE_RISE * zero:  # (targets whose squares underflow give no bound)
        return (f"its objective {objective:.6g} is {objective / zero:.3g} times that of zero factors "
                f"({zero:.6g}, an upper bound on the optimum)")
    return None


def _convergence(run: _Run, a: dict, U, V, objective: float) -> None:
    r"""Warn, with the numbers, when the run ended far from a stationary point of :math:`L + R`:
    the relative gradient :math:`\|\nabla(L+R)\|\,\|(U, V)\| / (L + R)` over
    ``STATIONARITY_TOLERANCE`` (a 1% change of the factors changes the objective by more than 3%;
    well-run trainings end below 0.5), or an objective ``OBJECTIVE_RISE`` times that of zero
    factors, :math:`\frac1N\|Y\|^2 \ge \min (L + R)`, or of the best recorded iterate."""
    U = U.detach().to(torch.float64).requires_grad_(True)
    V = V.detach().to(torch.float64).requires_grad_(True)
    value = loss_of_law(a["law"], U, V, run.X_64, run.Y_64)
    gU, gV = torch.autograd.grad(value, (U, V))
    gradient = float(torch.sqrt((gU ** 2).sum() + (gV ** 2).sum()))
    size = float(torch.sqrt((U.detach() ** 2).sum() + (V.detach() ** 2).sum()))
    relative = gradient * size / objective if objective > 0 else 0.0
    best = min(run.rec["objective"])
    found = []
    if not math.isfinite(relative) or relative > STATIONARITY_TOLERANCE:
        found.append(f"its relative gradient |grad(L+R)| |(U, V)| / (L+R) is {relative:.3g} "
                     f"(> {STATIONARITY_TOLERANCE:g}: far from a stationary point)")
    rise = objective_rise(objective, run.Y_64.detach().cpu().numpy())
    if rise:
        found.append(rise)
    elif objective > OBJECTIVE_RISE * best:
        found.append(f"its objective {objective:.6g} is {objective / best:.3g} times the lowest along the run "
                     f"({best:.6g})")
    if found:
        warnings.warn(f"train({a['strategy']!r}, lr={a['lr']:g}, optimizer={a['optimizer']!r}, epochs={a['epochs']}) "
                      f"did not converge: {'; '.join(found)}; lower lr, train longer, or check the strategy",
                      RuntimeWarning, stacklevel=4)


def _result(run: _Run, a: dict) -> TrainingResult:
    """Stage 4: the averaged factors and the history."""
    net, rec = run.net, run.rec
    last_U = net.U.detach().cpu().numpy().copy()
    last_V = net.V.detach().cpu().numpy().copy()
    last_objective = rec["objective"][-1]
    if run.n_averaged:
        with torch.no_grad():
            net.U.copy_(run.sum_U / run.n_averaged)
            net.V.copy_(run.sum_V / run.n_averaged)
    U = net.U.detach().cpu().numpy().astype(np.float64)
    V = net.V.detach().cpu().numpy().astype(np.float64)
    objective = _objective(run, a, net.U.detach(), net.V.detach()) if run.n_averaged else last_objective
    _convergence(run, a, net.U, net.V, objective)
    net.eval()
    history = TrainingHistory(
        step=np.asarray(rec["step"], dtype=np.int64),
        batch_loss=np.asarray(rec["batch_loss"]),
        mean_batch_loss=np.asarray(rec["mean_batch_loss"]),
        objective=np.asarray(rec["objective"]),
        singular_values=np.asarray(rec["singular_values"], dtype=np.float64),
        lr=np.asarray(rec["lr"]),
    )
    return TrainingResult(
        U=U, V=V, objective=float(objective), singular_values=np.linalg.svd(U @ V.T, compute_uv=False),
        history=history, network=net, last_U=last_U, last_V=last_V, last_objective=float(last_objective),
        averaged_steps=run.n_averaged, steps=a["steps"], strategy=a["strategy"], width=a["width"], seed=a["seed"],
        device=str(a["device"]),
    )
