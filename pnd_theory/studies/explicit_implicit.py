r"""Explicit against implicit effects of the mask noise in a ReLU network trained on the digits.

A ReLU MLP :math:`f(x) = U\, \mathrm{noise}(\mathrm{relu}(W x + b)) + c` (``64 -> hidden -> 10``) on
scikit-learn's 8x8 digits (:func:`pnd_theory.studies.digits.load_digits`), with the noise at the
readout:

* ``"Dropout"``: ``torch.nn.Dropout(p)`` on the hidden units, :math:`f = U\,\mathrm{diag}(\xi)\, h + c`,
  one mask :math:`\xi_j` per hidden unit and sample;
* ``"PerNodeDrop"``: the readout is :class:`~pnd_theory.nn.PerNodeDropLinear` ``(hidden, 10, p)``,
  :math:`f_o = \sum_j U_{oj} M_{oj} h_j + c_o`, one mask per connection and sample.

The output is **affine in the masks** (nothing but a linear map follows them), so with the squared
loss the explicit penalty is exact (:func:`pnd_theory.explicit_penalty`):

.. math::

    E_m\Big[\frac1B \sum_i \|y_i - f_i(m)\|^2\Big] = L + R, \qquad
    R = \lambda \sum_{o, j} U_{oj}^2\, \frac1B \sum_i h_{ij}^2, \quad \lambda = \frac{p}{1 - p},

the same :math:`R` for both mask laws (the per-connection masks of a readout row have the variance of
one shared unit mask; what differs is the correlation across outputs, which the squared loss summed
over outputs does not see).  With the cross-entropy the penalty is the second-order
:math:`R_2` (Wei, Kakade and Ma, ICML 2020), which differs between the two.  Every network is
trained by the same Adam loop (:func:`~pnd_theory.studies.digits.train_network`, same seed: same
initialization and batch order) in one of four ways (``mode``):

(a) ``"masks"``: real sampled masks, gradient :math:`g_M` with :math:`E_M g_M = \nabla(L + R)`
    (exactly for the squared loss);
(b) ``"penalty"``: :math:`\nabla(L + R_2)` of the mean network, no noise
    (:func:`~pnd_theory.routes.explicit.penalized_loss`): the *explicit* effect alone;
(c) ``"penalty+matched"``: :math:`\nabla(L + R_2) + \xi` with noise of the masks' gradient covariance
    :math:`\Sigma_M = \mathrm{Cov}_M(g_M)` of the batch.  For the MLP :math:`\Sigma_M` has no closed form;
    it is estimated at every step from ``draws`` = K gradients :math:`g_1..g_K` of the batch with
    independent masks, and

    .. math::

        \xi = \frac{1}{\sqrt{K - 1}} \sum_k z_k (g_k - \bar g), \qquad z \sim N(0, I_K),

    which is Gaussian given the draws with covariance their sample covariance :math:`S`, and has
    :math:`E[\xi \xi^\top] = E[S] = \Sigma_M` exactly; its law is a Gaussian scale mixture of rank
    :math:`K - 1`, not the Gaussian of :math:`\Sigma_M` itself (the practical stand-in for
    ``pnd_theory.train(noise="penalty+matched")``, which draws from the closed-form covariance);
(d) ``"none"``: the plain network (``nn.Linear`` readout), no noise, no penalty.

The *effect of the noise* on a test metric :math:`T` is :math:`T_a - T_d`, the explicit penalty's
part of it :math:`T_b - T_d`, and the share it explains

.. math::

    \rho = \frac{\overline{T_b - T_d}}{\overline{T_a - T_d}},

with the differences paired by seed (same initialization and batches) and a standard error by the
delta method, :math:`\mathrm{se}(\rho)^2 \approx \rho^2 \big(\frac{s_b^2}{\bar b^2} + \frac{s_a^2}{\bar a^2}
- \frac{2 s_{ab}}{\bar a \bar b}\big) / n` (:math:`s` the per-seed sample (co)variances of the paired
differences).  The same for (c).  The optimizer is Adam, whose step normalization also reacts to
gradient noise: the implicit part measured here is Adam's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .._display import ResultDisplay
from .._validation import (check_choice, check_count, check_positive_int, check_probability, check_seed, invalid)
from ..nn.layers import PerNodeDropLinear
from ..routes.explicit import penalized_loss
from .digits import _loss_fn, accuracy, load_digits, seeded, train_network

__all__ = ["ExplicitImplicit", "explicit_implicit_digits", "train_digits_mlp", "digits_mlp", "NOISES", "MODES",
           "LOSSES"]

#: mask laws at the readout
NOISES = ("Dropout", "PerNodeDrop")
#: ways of training: (a) real masks, (b) explicit penalty, (c) penalty + matched noise, (d) plain
MODES = ("masks", "penalty", "penalty+matched", "none")
#: the training losses (the package's squared loss, or the cross-entropy)
LOSSES = ("squared", "cross_entropy")
_EXPLICIT_LOSS = {"squared": "mse", "cross_entropy": "cross_entropy"}
#: the test metrics summarized
METRICS = ("test_accuracy", "test_loss", "train_accuracy", "train_loss")


def digits_mlp(noise, p, hidden=128, n_in=64, n_out=10):
    r"""``Linear(n_in, hidden), ReLU`` and a readout with the noise ``noise`` at rate ``p`` (module docstring);
    ``noise=None`` or ``p = 0``: the plain ``nn.Linear`` readout."""
    if noise is None or p == 0.0:
        readout = [nn.Linear(hidden, n_out)]
    elif noise == "Dropout":
        readout = [nn.Dropout(p), nn.Linear(hidden, n_out)]
    elif noise == "PerNodeDrop":
        readout = [PerNodeDropLinear(hidden, n_out, p)]
    else:
        raise invalid("noise", f"one of {NOISES} or None", noise)
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), *readout)


def _flat(tensors):
    return torch.cat([t.reshape(-1) for t in tensors])


def _objective(mode, loss, draws):
    """The callable that :func:`train_network` minimizes for ``mode`` (None: the masked loss)."""
    if mode in ("masks", "none"):
        return None
    explicit_loss, loss_fn = _EXPLICIT_LOSS[loss], _loss_fn(loss)

    def penalty(model, xb, yb):
        terms = penalized_loss(model, xb, yb, loss=explicit_loss)
        return terms.loss + terms.penalty

    if mode == "penalty":
        return penalty

    def matched(model, xb, yb):
        params = [q for q in model.parameters() if q.requires_grad]
        G = torch.stack([_flat(torch.autograd.grad(loss_fn(model(xb), yb), params)) for _ in range(draws)])
        z = torch.randn(draws, dtype=G.dtype, device=G.device)
        xi = (z @ (G - G.mean(0))) / math.sqrt(draws - 1)
        theta = _flat(params)
        # value 0, gradient xi: the noise enters the step without entering the recorded loss
        return penalty(model, xb, yb) + (xi * (theta - theta.detach())).sum()

    return matched


@torch.no_grad()
def _loss_value(model, X, Y, loss):
    model.eval()
    return float(_loss_fn(loss)(model(X), Y))


def train_digits_mlp(noise, mode, p, seed, *, loss="squared", epochs=40, hidden=128, n_train=300, split_seed=0,
                     draws=4, lr=1e-3, batch_size=32, hold=0.5, device=None) -> dict:
    r"""Train one network of the study (module docstring) and return its metrics.

    Parameters
    ----------
    noise : {"Dropout", "PerNodeDrop"}
        Mask law at the readout (ignored for ``mode="none"``).
    mode : {"masks", "penalty", "penalty+matched", "none"}
    p : float in (0, 1)
        Drop probability, :math:`\lambda = p / (1 - p)`.
    seed : int
        Initialization, batch order, masks and matched noise.
    loss : {"squared", "cross_entropy"}
    epochs, hidden, n_train, split_seed, lr, batch_size, hold
        As for :func:`~pnd_theory.studies.digits.train_network` and
        :func:`~pnd_theory.studies.digits.load_digits`.
    draws : int, at least 2
        Mask draws per step that estimate :math:`\Sigma_M` for ``"penalty+matched"``.

    Returns
    -------
    dict
        ``test_accuracy``, ``test_loss`` (the training loss on the validation images, no noise),
        ``train_accuracy``, ``train_loss`` (no noise), ``penalty`` (:math:`R_2` of the trained network
        on the training images; 0 for ``"none"``) and ``final_objective`` (last epoch's mean objective).
    """
    check_choice("mode", mode, MODES)
    check_choice("loss", loss, LOSSES)
    if mode != "none":
        check_choice("noise", noise, NOISES)
    p = check_probability("p", p)
    if not 0.0 < p < 1.0:
        raise invalid("p", "a drop probability in (0, 1)", p)
    seed = check_seed(seed)
    draws = check_count("draws", draws)
    if draws < 2:
        raise invalid("draws", "an integer of at least 2 (a covariance needs two draws)", draws)
    data = load_digits(n_train=n_train, seed=split_seed, device=device)
    with seeded(seed, data.X_train.device):
        model = digits_mlp(None if mode == "none" else noise, p, hidden, data.n_features, data.n_classes)
    model = model.to(data.X_train.device)
    history = train_network(model, data.X_train, data.Y_train, loss=loss, epochs=epochs, lr=lr,
                            batch_size=batch_size, seed=seed, hold=hold, objective=_objective(mode, loss, draws))
    penalty = 0.0
    if mode != "none":
        with torch.no_grad():
            penalty = float(penalized_loss(model, data.X_train, data.Y_train, loss=_EXPLICIT_LOSS[loss]).penalty)
    return {"test_accuracy": accuracy(model, data.X_val, data.y_val),
            "test_loss": _loss_value(model, data.X_val, data.Y_val, loss),
            "train_accuracy": accuracy(model, data.X_train, data.y_train),
            "train_loss": _loss_value(model, data.X_train, data.Y_train, loss),
            "penalty": penalty, "final_objective": float(history[-1])}


def _mean_se(values):
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan


def share_explained(part, whole):
    r""":math:`\rho = \bar b / \bar a` of per-seed paired differences ``part`` (:math:`b`) and ``whole``
    (:math:`a`), with its delta-method standard error (module docstring); ``(nan, nan)`` when
    :math:`\bar a = 0`."""
    b, a = np.asarray(part, dtype=float), np.asarray(whole, dtype=float)
    n, mb, ma = a.size, b.mean(), a.mean()
    if ma == 0.0:
        return math.nan, math.nan
    rho = mb / ma
    if n < 2:
        return float(rho), math.nan
    cov = np.cov(np.stack([b, a]), ddof=1)
    rel = cov[1, 1] / ma**2 - 2 * cov[0, 1] / (ma * mb) + cov[0, 0] / mb**2 if mb != 0.0 else math.nan
    se = abs(rho) * math.sqrt(max(rel, 0.0) / n) if mb != 0.0 else math.sqrt(cov[0, 0] / n) / abs(ma)
    return float(rho), float(se)


@dataclass(repr=False)
class ExplicitImplicit(ResultDisplay):
    r"""The result of :func:`explicit_implicit_digits`.

    Attributes
    ----------
    p, loss, epochs, hidden, n_train, draws, seeds
        The settings.
    runs : list of dict
        One per (noise, mode, seed): the settings and the metrics of :func:`train_digits_mlp`
        (``mode="none"`` once per seed, ``noise=None``).
    """

    p: float
    loss: str
    epochs: int
    hidden: int
    n_train: int
    draws: int
    seeds: tuple
    runs: list = field(repr=False)

    def _values(self, noise, mode, metric):
        rows = {r["seed"]: r[metric] for r in self.runs
                if r["mode"] == mode and (mode == "none" or r["noise"] == noise)}
        return np.array([rows[s] for s in self.seeds])

    def summary(self) -> dict:
        """``{noise: {mode: {metric: {"mean", "se"}}}}`` over seeds (``"none"`` repeated under each noise)."""
        noises = sorted({r["noise"] for r in self.runs if r["noise"] is not None}, key=NOISES.index)
        modes = [m for m in MODES if any(r["mode"] == m for r in self.runs)]
        return {n: {m: {k: dict(zip(("mean", "se"), _mean_se(self._values(n, m, k)))) for k in (*METRICS, "penalty")}
                    for m in modes} for n in noises}

    def explained(self) -> dict:
        r"""``{noise: {metric: {"noise_effect", "explicit_effect", "share", "share_se", "matched_share", ...}}}``:
        per test metric the effect of the noise :math:`\overline{T_a - T_d}` (with its standard error), the
        penalty's :math:`\overline{T_b - T_d}`, the share :math:`\rho` it explains and the share of (c)."""
        out = {}
        for noise in self.summary():
            rows = {}
            for metric in ("test_accuracy", "test_loss"):
                none = self._values(noise, "none", metric)
                a = self._values(noise, "masks", metric) - none
                b = self._values(noise, "penalty", metric) - none
                row = {"noise_effect": _mean_se(a), "explicit_effect": _mean_se(b)}
                row["share"], row["share_se"] = share_explained(b, a)
                if any(r["mode"] == "penalty+matched" for r in self.runs):
                    c = self._values(noise, "penalty+matched", metric) - none
                    row["matched_effect"] = _mean_se(c)
                    row["matched_share"], row["matched_share_se"] = share_explained(c, a)
                rows[metric] = row
            out[noise] = rows
        return out

    def _display_items(self):
        items = [("p", self.p), ("loss", self.loss), ("seeds", len(self.seeds))]
        for noise, rows in self.explained().items():
            r = rows["test_loss"]
            items.append((f"{noise}: share of the test-loss effect explained", f"{r['share']:.3g} +- {r['share_se']:.2g}"))
        return items

    def to_dict(self) -> dict:
        """Plain data (settings, runs, summary, explained) for JSON."""
        return {"p": self.p, "loss": self.loss, "epochs": self.epochs, "hidden": self.hidden, "n_train": self.n_train,
                "draws": self.draws, "seeds": list(self.seeds), "runs": self.runs, "summary": self.summary(),
                "explained": self.explained()}


def explicit_implicit_digits(p=0.5, seeds=(0, 1, 2, 3, 4), *, noises=NOISES, modes=MODES, loss="squared", epochs=40,
                             hidden=128, n_train=300, draws=4, device=None, progress=False) -> ExplicitImplicit:
    r"""Train the ReLU MLP on the digits with real masks, the explicit penalty, the penalty plus matched noise
    and no noise, over ``seeds``, and summarize test accuracy and test loss (the network and the
    four trainings: theory page, :ref:`theory-explicit-implicit`).

    Parameters
    ----------
    p : float in (0, 1)
    seeds : sequence of ints (at least one; two for standard errors)
    noises : sequence from ``NOISES``
    modes : sequence from ``MODES``; ``"masks"`` and ``"none"`` are needed for :meth:`ExplicitImplicit.explained`
    loss, epochs, hidden, n_train, draws, device
        As for :func:`train_digits_mlp`.
    progress : bool
        A tqdm bar over the runs.

    Returns
    -------
    ExplicitImplicit

    Examples
    --------
    The smallest study (one epoch, 8 hidden units, 50 training digits, two seeds: about a second
    once the digits are loaded) runs one network per seed and training mode; too short to
    measure the share, but every summary is finite:

    >>> import math
    >>> import pnd_theory as pt
    >>> study = pt.explicit_implicit_digits(seeds=(0, 1), noises=("Dropout",), modes=("masks", "penalty", "none"),
    ...                                     epochs=1, hidden=8, n_train=50, draws=2)
    >>> len(study.runs), sorted(study.summary()["Dropout"])
    (6, ['masks', 'none', 'penalty'])
    >>> accuracy = study.summary()["Dropout"]["masks"]["test_accuracy"]["mean"]
    >>> bool(0 <= accuracy <= 1), math.isfinite(study.explained()["Dropout"]["test_loss"]["share"])
    (True, True)
    """
    seeds = tuple(check_seed(s) for s in seeds)
    if not seeds:
        raise invalid("seeds", "at least one seed", seeds)
    for n in noises:
        check_choice("noises", n, NOISES)
    for m in modes:
        check_choice("modes", m, MODES)
    check_choice("loss", loss, LOSSES)
    cells = [(None, "none")] if "none" in modes else []
    cells += [(n, m) for n in noises for m in modes if m != "none"]
    jobs = [(n, m, s) for n, m in cells for s in seeds]
    if progress:
        from tqdm.auto import tqdm
        jobs = tqdm(jobs, desc="explicit/implicit", unit="run")
    runs = []
    for noise, mode, seed in jobs:
        metrics = train_digits_mlp(noise, mode, p, seed, loss=loss, epochs=epochs, hidden=hidden, n_train=n_train,
                                   draws=draws, device=device)
        runs.append({"noise": noise, "mode": mode, "seed": seed, **metrics})
    return ExplicitImplicit(p=float(p), loss=loss, epochs=int(epochs), hidden=int(hidden), n_train=int(n_train),
                            draws=int(draws), seeds=seeds, runs=runs)
