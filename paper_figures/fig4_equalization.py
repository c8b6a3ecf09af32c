"""Equalization of the hidden units along training with Adam.

The induced regularizer is reached by *equalized* factors: all unit contributions
:math:`c_j = \\|u_j\\|\\,\\|S^{1/2} v_j\\|` equal (Dropout), all block contributions
:math:`c_g = \\|U_g V_g^\\top S^{1/2}\\|_F` equal (DropBlock).  Training with real sampled masks
drives the factors there; training without noise (``p = 0``, same start, same schedule) fits
the same data but leaves the units as unequal as the start made them.

top row     the contributions along training (one line per unit or block), with the common
            value of the closed-form balanced factors of the global minimizer
            (:meth:`MinimizerResult.factors`) as a dashed line;
bottom row  their spread, the coefficient of variation :math:`\\mathrm{sd}(c) / \\mathrm{mean}(c)`
            across units or blocks (log scale), with noise and without.

The history of :func:`pnd_theory.studies.training.train` records the objective and the singular values
but not the factors, so the run is split into segments: each segment is one ``train`` call
started from the previous segment's last iterate (``U_init``, ``V_init``), with the global
``"hold-linear"`` schedule mapped onto it (a callable ``schedule``) and no tail averaging, and
its own seed (fresh masks).  Only Adam's moment estimates restart at each segment boundary.  The
contributions are plain numpy on the recorded factors (a description of the data, not theory).
Writes ``equalization.png``, ``equalization.pdf`` and ``equalization.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

import pnd_theory as pt
from pnd_theory.regularizers.minimizers import global_minimizer
from pnd_theory.studies.training import lr_multiplier, train

from ._style import COLORS, figure, write_figure

NAME = "equalization"
P_DROP = 0.3
BLOCK_SIZE = 2
#: width 8: 8 units for Dropout, G = 4 blocks >= rank 3 for DropBlock
PROBLEM = dict(n_in=4, width=8, n_out=3, n_samples=256, correlation=0.6, seed=0)
LR = 0.03
SEED = 0


def coefficient_of_variation(c):
    return float(np.std(c) / np.mean(c))


def segmented_training(strategy, X, Y, width, boundaries, device, progress):
    """Train over ``boundaries[-1]`` full-batch steps in segments ending at ``boundaries``;
    returns the factors after each segment and the device."""
    total = boundaries[-1]
    U = V = None
    factors = []
    start = 0
    result = None
    for k, end in enumerate(boundaries):
        length = end - start

        def schedule(fraction, start=start, length=length):  # the global schedule on this segment
            return lr_multiplier("hold-linear", (start + fraction * length) / total)

        result = train(strategy, X, Y, width, epochs=length, lr=LR, seed=SEED + k, device=device,
                       progress=False, schedule=schedule, average=0.0, U_init=U, V_init=V,
                       record_every=length)
        U, V = result.last_U, result.last_V
        factors.append((U, V))
        start = end
        if progress:
            print(f"  {strategy!r}: step {end}/{total}, L + R = {result.last_objective:.6g}", flush=True)
    return factors, result.device


def compute(quick=False, device=None):
    """The data behind the figure (plain lists and floats)."""
    _, _, X, Y = pt.random_problem(**PROBLEM)
    width = PROBLEM["width"]
    S = pt.second_moment(X)
    total = 3000 if quick else 20000
    boundaries = [int(b) for b in np.unique(np.round(np.geomspace(5, total, 28 if quick else 45)))]
    data = {
        "description": "spread of the unit contributions ||u_j|| ||S^(1/2) v_j|| (Dropout) and block "
                       "contributions ||U_g V_g^T S^(1/2)||_F (DropBlock) along full-batch Adam with real "
                       "sampled masks, and along training without noise (p = 0) from the same start",
        "units": "contributions in loss units^(1/2) (target units); spread (coefficient of variation) "
                 "dimensionless; step: Adam updates",
        "problem": {**PROBLEM, "p": P_DROP, "block_size": BLOCK_SIZE, "generator": "pnd_theory.random_problem"},
        "training": {"steps": total, "batch_size": "full", "lr": LR, "seed": SEED,
                     "recording": "segments of train() calls continued from last_U/last_V, global "
                                  "hold-linear schedule via a callable schedule, average=0, seed + k per "
                                  "segment; Adam's moment estimates restart at each boundary"},
        "quick": bool(quick),
        "optimizer": "Adam",
        "step": boundaries,
        "panels": {},
    }
    runs = {}
    for key, strategy in (("Dropout", pt.Dropout(P_DROP)), ("DropBlock", pt.DropBlock(P_DROP, BLOCK_SIZE)),
                          ("no noise", pt.Dropout(0.0))):
        runs[key], data["device"] = segmented_training(strategy, X, Y, width, boundaries, device, not quick)
    for key, measure in (("Dropout", lambda U, V: pt.unit_contributions(U, V, S)),
                         ("DropBlock", lambda U, V: pt.unit_contributions(U, V, S, BLOCK_SIZE))):
        strategy = pt.Dropout(P_DROP) if key == "Dropout" else pt.DropBlock(P_DROP, BLOCK_SIZE)
        optimum = global_minimizer(strategy, X, Y, width)
        balanced = measure(*optimum.factors())
        noisy = [measure(U, V) for U, V in runs[key]]
        plain = [measure(U, V) for U, V in runs["no noise"]]
        data["panels"][key] = {
            "strategy": repr(strategy),
            "what": "unit" if key == "Dropout" else "block",
            "contributions": noisy,
            "cv": [coefficient_of_variation(c) for c in noisy],
            "cv_no_noise": [coefficient_of_variation(c) for c in plain],
            "balanced_contributions": balanced,
            "balanced_cv": coefficient_of_variation(balanced),
            "optimum_objective": optimum.objective,
            "final_objective": pt.expected_loss(strategy, *runs[key][-1], X, Y),
        }
    return data


def plot(data):
    """The figure from the data of :func:`compute`."""
    step = np.asarray(data["step"])
    fig, axes = figure(2, 2, width=5.0, height=3.2, sharex=True, constrained_layout=True)
    for col, (key, e) in enumerate(data["panels"].items()):
        color = COLORS[key]
        top, bottom = axes[0, col], axes[1, col]
        c = np.asarray(e["contributions"])
        for j in range(c.shape[1]):
            top.plot(step, c[:, j], color=color, lw=1.1, alpha=0.75,
                     label=f"each {e['what']} (trained, p = {data['problem']['p']})" if j == 0 else None)
        top.axhline(np.mean(e["balanced_contributions"]), color=COLORS["theory"], ls="--", lw=1.3,
                    label="balanced factors of the global minimizer")
        top.set_xscale("log")
        what = "‖u_j‖ ‖S^½ v_j‖" if e["what"] == "unit" else "‖U_g V_gᵀ S^½‖_F"
        top.set_ylabel(f"{what}\n(target units)")
        top.set_title(f"{'Dropout: units' if key == 'Dropout' else 'DropBlock (b = 2): blocks'}")
        top.legend(loc="lower right", frameon=False, fontsize=8)
        bottom.plot(step, e["cv"], color=color, marker="o", ms=3, label=f"{key}, p = {data['problem']['p']}")
        bottom.plot(step, e["cv_no_noise"], color="0.5", marker="s", ms=3, ls="--",
                    label="no noise (p = 0), same start")
        bottom.set_yscale("log")
        bottom.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        bottom.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        bottom.yaxis.set_minor_formatter(NullFormatter())
        bottom.set_xlabel("training step (full-batch Adam updates)")
        bottom.set_ylabel(f"spread across {e['what']}s\nsd / mean (dimensionless)")
        bottom.legend(loc="lower left", frameon=False, fontsize=8)
        bottom.annotate(f"final {e['cv'][-1]:.3f}", (step[-1], e["cv"][-1]), textcoords="offset points",
                        xytext=(-8, 8), ha="right", fontsize=9, color=color)
    fig.suptitle("Noise equalizes the hidden units (width 8, correlated inputs)\n"
                 "the spread left is the noise of the sampled masks, which fades as the step decays to zero")
    return fig


def make(out_dir, quick=False, device=None):
    """Train, write ``equalization.{png,pdf,json}`` into ``out_dir`` and return the paths.

    ``quick=True``: 3000 full-batch steps in 28 segments per run; otherwise 20000 steps in 45
    segments (a progress line per segment).  ``device``: where the networks train.
    """
    return write_figure(NAME, compute, plot, out_dir, quick, device)


if __name__ == "__main__":
    for path in make(Path(__file__).resolve().parent):
        print(path)
