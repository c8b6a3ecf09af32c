r"""Figure 7: Dropout and DropBlock on the last hidden layer of a deep ReLU network (digits).

The deep extension of Pal, Lane, Vidal and Haeffele (CVPR 2020).  The network is

.. math::

    f(x) = U \,\mathrm{diag}(\xi)\, \varphi(x), \qquad
    \varphi(x) = W_2\,\mathrm{ReLU}(W_1 x + b_1) + b_2 \in \mathbb{R}^d,

with the mask :math:`\xi` of Dropout or DropBlock (block size ``b``, contiguous units) on the
``d`` units of the last hidden layer, ``U`` of shape ``(n_out, d)`` and no output bias.  It is
trained with real sampled masks on an imbalanced one-hot subset of the 8x8 digits with the
squared loss of the package (mean over samples, sum over outputs).

Relation with the closed form (worked out here, computed by the public API)
----------------------------------------------------------------------------
Write :math:`\Phi = [\varphi(x_1), \dots, \varphi(x_N)]` (``d x N``) for the features of the
training set and :math:`P = U\Phi` (``n_out x N``) for the training predictions of the mean
network (every mask has mean 1).  The expected training loss is (the theory page)

.. math::

    \frac1N \|Y - U\Phi\|_F^2 + \big\langle C, (U^\top U) \circ (\Phi\Phi^\top / N) \big\rangle .

This is *exactly* the linear-network expected loss of the package for the sample-whitened
problem :math:`X_w = \sqrt N\, I_N` (``n_in = N`` inputs, :math:`S = X_w X_w^\top / N = I_N`),
the same targets ``Y``, and :math:`V = \Phi^\top / \sqrt N` (``N x d``): then
:math:`V^\top x_{w,k} = \varphi(x_k)`, :math:`V^\top S V = \Phi\Phi^\top / N`, and

.. math::

    A = U V^\top = U\Phi / \sqrt N, \qquad P = A X_w = \sqrt N\, A .

When the feature map is expressive enough that :math:`\Phi` is effectively free, the
minimum over the network is the minimum over ``(U, V)`` of width ``d``, i.e.
``global_minimizer(strategy, X_w, Y, width=d)``, attained at

.. math::

    P^* = A^* X_w = \sqrt N\, A^*, \qquad \sigma_i(P^*) = \sqrt N\, \sigma_i(A^*),

and ``result.objective`` is the smallest expected training loss any such network can have.
Why the features are effectively free here: :math:`\Phi = W_2 H + b_2 1^\top` with ``H`` the
post-ReLU activations of the training set, so every :math:`\Phi` is reachable once ``H`` has
rank ``N`` (width >= N = 253: the full run uses 256); fewer units suffice in practice, since
the optimal features are functions of the class only (the right singular vectors of
:math:`P^*` are class indicators, see below), which the quick run's 128 units approximate;
the measured gaps are the test of this.
With :math:`M' = Y X_w^\top / N = Y/\sqrt N`, the closed form shrinks
:math:`s_i = \sigma_i(Y)/\sqrt N = \sqrt{n_c / N}` (one-hot targets: one singular value per
class, :math:`n_c` its number of samples); without noise :math:`P^* = Y` (rank 10 <= d).
The data fit is a strictly convex function of ``P``, so :math:`P^*` is unique: the figure
compares the singular values of the trained ``P`` with those of :math:`P^*`, and the JSON also
records :math:`\|P - P^*\|_F / \|P^*\|_F` and the expected loss of the trained network,
``pt.expected_loss(strategy, U, V, X_w, Y)`` with :math:`V = \Phi^\top/\sqrt N`, which can
never lie below ``result.objective`` (a one-sided check of the theory).

Design choices
--------------
* **Linear last hidden layer.**  The units that carry the mask are the *linear* outputs of
  :math:`\varphi`.  Post-ReLU features are confined to :math:`\Phi \ge 0`; for one-hot targets
  the right singular vectors of :math:`P^*` are class indicators, and an equalized
  factorization with nonnegative features must split each class over a whole number of equal
  units, which the closed form does not in general allow.  The full run trains that variant
  too (Dropout, p = 0.5, ``ReLU`` after :math:`W_2`) and reports its gap: about 8 % of
  :math:`\sigma_1` against below 1 % for the linear last layer.
* **Imbalanced classes** (``CLASS_COUNTS``, geometric, ratio 0.6).  For balanced classes the
  spectrum of ``Y`` is flat, and the spectral ``b``-support norm of a spectrum with
  :math:`b\,\sigma_1 \le \sum_i \sigma_i` equals :math:`\|\cdot\|_* / \sqrt b`, so DropBlock's
  induced regularizer :math:`(\lambda b/d)\|\cdot\|_{(b)}^2` is Dropout's
  :math:`(\lambda/d)\|\cdot\|_*^2` and the two closed forms coincide.  A spread spectrum makes
  them part once the shrinkage leaves few nonzero singular values (large ``p``).
* ``d = 32`` units, blocks of ``b = 4`` (``G = 8`` blocks), full-batch Adam with the learning
  rate held for half the run then decayed linearly to zero.

Run ``python -m paper_figures.fig7_deep_last_layer`` (writes into ``paper_figures/``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.colors import to_rgb
from matplotlib.lines import Line2D
from torch import nn
from tqdm.auto import tqdm

import pnd_theory as pt
from pnd_theory.studies.digits import load_digits, seeded, train_network
from pnd_theory.regularizers.minimizers import global_minimizer
from pnd_theory.nn import BlockDropout

from ._style import COLORS, figure, one_torch_thread, save_data, save_figure

NAME = "deep_last_layer"
#: training samples per digit class 0..9: round(100 * 0.6**c), at least 3 (N = 253)
CLASS_COUNTS = (100, 60, 36, 22, 13, 8, 5, 3, 3, 3)
WIDTH = 32
BLOCK = 4
SEED = 0
FULL = {"p": (0.3, 0.5, 0.7), "hidden": 256, "epochs": 4000, "lr": 1e-3, "relu_check": 0.5}
QUICK = {"p": (0.7,), "hidden": 128, "epochs": 1000, "lr": 3e-3, "relu_check": None}


def _strategy(kind, p):
    return pt.DropBlock(p, BLOCK) if kind == "DropBlock" else pt.Dropout(p)


def _mask_module(kind, p):
    if p == 0.0:
        return nn.Identity()
    return BlockDropout(p, BLOCK) if kind == "DropBlock" else nn.Dropout(p)


def _network(n_in, hidden, n_out, mask, relu_features=False):
    """``f(x) = U diag(mask) phi(x)``; returns ``(phi, f)``."""
    layers = [nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, WIDTH)]
    if relu_features:
        layers.append(nn.ReLU())
    phi = nn.Sequential(*layers)
    return phi, nn.Sequential(phi, mask, nn.Linear(WIDTH, n_out, bias=False))


def _run(kind, p, data, cfg, device, relu_features=False):
    """Train one network; compare its training predictions with the closed form."""
    X, Y = data.X_train, data.Y_train
    N = data.n_train
    with seeded(SEED, device):
        phi, model = _network(data.n_features, cfg["hidden"], data.n_classes, _mask_module(kind, p), relu_features)
    model.to(device)
    history = train_network(model, X, Y, "squared", epochs=cfg["epochs"], lr=cfg["lr"], seed=SEED)
    with torch.no_grad():
        P = model(X).T.double().cpu().numpy()  # eval mode: the mean network
        Phi = phi(X).T.double().cpu().numpy()
    U = model[2].weight.detach().double().cpu().numpy()
    Yn = Y.T.double().cpu().numpy()
    X_w = np.sqrt(N) * np.eye(N)  # samples as whitened inputs: S = I_N
    strategy = _strategy(kind, p)
    result = global_minimizer(strategy, X_w, Yn, width=WIDTH)
    P_star = result.product @ X_w
    sv = np.linalg.svd(P, compute_uv=False)[: data.n_classes]
    sv_star = np.linalg.svd(P_star, compute_uv=False)[: data.n_classes]
    trained_objective = pt.expected_loss(strategy, U, Phi.T / np.sqrt(N), X_w, Yn)
    gap = np.abs(sv - sv_star)
    return {
        "strategy": repr(strategy),
        "kind": kind if p > 0 else "none",
        "p": p,
        "relu_features": relu_features,
        "sv_trained": sv,
        "sv_theory": sv_star,
        "sv_theory_sqrtN_A": np.sqrt(N) * result.singular_values[: data.n_classes],
        "max_abs_gap": float(gap.max()),
        "max_gap_over_sigma1": float(gap.max() / sv_star[0]),
        "relative_distance_P": float(np.linalg.norm(P - P_star) / np.linalg.norm(P_star)),
        "objective_trained": float(trained_objective),
        "objective_theory": float(result.objective),
        "objective_gap": float(trained_objective - result.objective),
        "method": result.method,
        "final_training_loss": float(history[-1]),
    }


def _shade(color, k, n):
    """The strategy's colour, lighter for smaller ``p`` (k = 0 lightest of n)."""
    t = 0.55 * (1 - (k + 1) / n)
    return tuple(c + (1 - c) * t for c in to_rgb(color))


def make(out_dir, quick=False, device=None):
    """Train the networks, compare with the closed form, write PNG, PDF and JSON; return paths."""
    with one_torch_thread():
        return _make(out_dir, quick, device)


def _make(out_dir, quick, device):
    cfg = QUICK if quick else FULL
    data = load_digits(class_counts=list(CLASS_COUNTS), seed=SEED, device=device)
    device = data.X_train.device
    jobs = [("none", 0.0, False)]
    jobs += [(kind, p, False) for kind in ("Dropout", "DropBlock") for p in cfg["p"]]
    if cfg["relu_check"] is not None:
        jobs.append(("Dropout", cfg["relu_check"], True))
    runs = [
        _run(kind, p, data, cfg, device, relu)
        for kind, p, relu in tqdm(jobs, desc="fig7 runs", unit="net", disable=quick)
    ]
    data_out = {
        "figure": NAME,
        "relation": "X_w = sqrt(N) I_N, V = Phi^T / sqrt(N), A = U V^T, P = U Phi = A X_w = sqrt(N) A; "
                    "P* = global_minimizer(strategy, X_w, Y, width=d).product @ X_w; "
                    "sigma_i(P*) = sqrt(N) sigma_i(A*)",
        "quick": quick,
        "optimizer": "Adam",
        "n_train": data.n_train,
        "class_counts": data.class_counts(),
        "width": WIDTH,
        "block_size": BLOCK,
        "seed": SEED,
        "config": dict(cfg),
        "runs": runs,
    }
    fig = _plot(runs, cfg, data.n_train)
    out_dir = Path(out_dir)
    return [*save_figure(fig, out_dir, NAME, quick=quick), save_data(data_out, out_dir, NAME)]


def _plot(runs, cfg, n_train):
    fig, axes = figure(1, 3, width=4.3, height=3.8)
    ref = next(r for r in runs if r["kind"] == "none")
    ps = list(cfg["p"])
    idx = np.arange(1, len(ref["sv_theory"]) + 1)
    for ax, kind in zip(axes[0, :2], ("Dropout", "DropBlock")):
        handles = [Line2D([], [], color=COLORS["theory"], ls="--", lw=1.2, marker="x", label="no mask")]
        ax.plot(idx, ref["sv_theory"], color=COLORS["theory"], ls="--", lw=1.2)
        ax.plot(idx, ref["sv_trained"], ls="none", marker="x", color=COLORS["theory"], ms=6)
        for k, p in enumerate(ps):
            run = next(r for r in runs if r["kind"] == kind and r["p"] == p and not r["relu_features"])
            color = _shade(COLORS[kind], k, len(ps))
            ax.plot(idx, run["sv_theory"], color=color, lw=1.6)
            ax.plot(idx, run["sv_trained"], ls="none", marker="o", mfc="none", mew=1.4, ms=6, color=color)
            handles.append(Line2D([], [], color=color, lw=1.6, marker="o", mfc="none", mew=1.4, label=f"p = {p}"))
        if kind == "DropBlock":  # Dropout's closed form at the largest p, for comparison
            run = next(r for r in runs if r["kind"] == "Dropout" and r["p"] == ps[-1] and not r["relu_features"])
            ax.plot(idx, run["sv_theory"], color=COLORS["Dropout"], ls=":", lw=1.4)
            handles.append(Line2D([], [], color=COLORS["Dropout"], ls=":", lw=1.4,
                                  label=f"Dropout theory, p = {ps[-1]}"))
        title = "Dropout" if kind == "Dropout" else f"DropBlock (b = {BLOCK})"
        ax.set_title(f"{title}, d = {WIDTH}")
        ax.set_xlabel("index i of the singular value")
        ax.set_ylabel(r"$\sigma_i(P)$, $P = U\Phi$ (training predictions)")
        ax.set_xticks(idx)
        ax.legend(handles=handles, loc="upper right", frameon=False, fontsize=8,
                  title="lines: closed form\nmarkers: trained", title_fontsize=8)
    ax = axes[0, 2]
    for kind, marker, shift in (("Dropout", "o", -0.008), ("DropBlock", "s", 0.008)):
        sel = [r for r in runs if r["kind"] == kind and not r["relu_features"]]
        x = [r["p"] + shift for r in sel]
        label = kind if kind == "Dropout" else f"DropBlock (b = {BLOCK})"
        ax.plot(x, [r["max_gap_over_sigma1"] for r in sel], marker=marker, mfc="none", mew=1.4,
                color=COLORS[kind], label=label)
        ax.plot(x, [max(r["objective_gap"], 1e-12) for r in sel], marker=marker, ls="--", lw=1.2,
                color=COLORS[kind])
    ax.plot([0.0], [ref["max_gap_over_sigma1"]], marker="x", ls="none", color=COLORS["theory"], ms=7,
            label="no mask")
    ax.plot([0.0], [max(ref["objective_gap"], 1e-12)], marker="+", ls="none", color=COLORS["theory"], ms=8)
    for r in runs:
        if r["relu_features"]:
            ax.plot([r["p"]], [r["max_gap_over_sigma1"]], marker="^", ls="none", color=COLORS["Dropout"],
                    mfc="none", ms=8, mew=1.4, label="Dropout, post-ReLU\nfeatures")
            ax.plot([r["p"]], [r["objective_gap"]], marker="^", ls="none", color=COLORS["Dropout"], ms=8)
    ax.set_yscale("log")
    ymin, ymax = ax.get_ylim()
    ax.set_ylim(ymin / 1e3, ymax * 10)  # room for the legend below the points
    ax.set_xlim(-0.05, 0.8)
    ax.set_xlabel("drop probability p")
    ax.set_ylabel("gap, trained - closed form (dimensionless)")
    ax.set_title("trained vs closed form")
    ax.legend(loc="lower right", frameon=False, fontsize=7.5, ncol=2,
              title=r"hollow: $\max_i |\sigma_i(P) - \sigma_i(P^*)| / \sigma_1(P^*)$" "\n"
                    r"filled: $E[\mathrm{loss}] - \min$  (units of $\|Y\|_F^2 / N = 1$)",
              title_fontsize=7.5)
    fig.suptitle(f"Last-layer noise in a ReLU network, digits (N = {n_train}, imbalanced classes), Adam")
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    for path in make(Path(__file__).resolve().parent, quick=args.quick, device=args.device):
        print(path)
