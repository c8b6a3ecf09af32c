"""Stochastic versus deterministic objective along training with Adam.

One panel per strategy (Dropout, DropBlock, DropConnect with one mask per mini-batch,
input-layer PerNodeDrop), all trained on the same data with correlated inputs
(:func:`pnd_theory.random_problem`):

top row     the mini-batch loss with sampled masks (what Adam sees; light), the closed-form
            objective :math:`L + R` of the same parameters (the history's ``objective``,
            :func:`pnd_theory.expected_loss`) and the closed-form optimum
            (:func:`pnd_theory.regularizers.minimizers.global_minimizer`) as a horizontal line;
bottom row  the relative excess :math:`(L + R - \\text{optimum}) / \\text{optimum}` of the
            iterates (log scale), with the tail-averaged end point that
            :func:`pnd_theory.studies.training.train` returns.

Everything is computed through the public API; this script holds no mathematics.  Writes
``objective.png``, ``objective.pdf`` and ``objective.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import pnd_theory as pt
from pnd_theory.regularizers.minimizers import global_minimizer
from pnd_theory.studies.training import train

from ._style import COLORS, figure, write_figure

NAME = "objective"
P_DROP = 0.3
BLOCK_SIZE = 2
#: width 6 >= rank 3 blocks of 2 for DropBlock: the width condition holds for all four
PROBLEM = dict(n_in=4, width=6, n_out=3, n_samples=256, correlation=0.6, seed=0)
BATCH_SIZE = 32
LR = 0.01
SEED = 0


def strategies():
    """(label, colour key, strategy) of the four panels."""
    return [
        ("Dropout", "Dropout", pt.Dropout(P_DROP)),
        (f"DropBlock (b = {BLOCK_SIZE})", "DropBlock", pt.DropBlock(P_DROP, BLOCK_SIZE)),
        ("DropConnect (output, per batch)", "DropConnect", pt.DropConnect(P_DROP, "output", per_sample=False)),
        ("PerNodeDrop (input)", "PerNodeDrop", pt.PerNodeDrop(P_DROP, "input")),
    ]


def compute(quick=False, device=None):
    """The data behind the figure (plain lists and floats)."""
    _, _, X, Y = pt.random_problem(**PROBLEM)
    width = PROBLEM["width"]
    epochs = 150 if quick else 1500
    steps = epochs * -(-X.shape[1] // BATCH_SIZE)
    record_every = max(1, steps // 200)
    data = {
        "description": "mini-batch loss with sampled masks, closed-form objective L + R of the same "
                       "parameters, and the closed-form optimum, along Adam training (pnd_theory.train)",
        "units": "loss: mean over samples of the squared error summed over outputs (target units squared); "
                 "step: Adam updates",
        "problem": {**PROBLEM, "p": P_DROP, "generator": "pnd_theory.random_problem"},
        "training": {"epochs": epochs, "batch_size": BATCH_SIZE, "lr": LR, "seed": SEED,
                     "schedule": "hold-linear (train default)", "record_every": record_every},
        "quick": bool(quick),
        "optimizer": "Adam",
        "strategies": {},
    }
    for label, color, strategy in strategies():
        optimum = global_minimizer(strategy, X, Y, width)
        result = train(strategy, X, Y, width, epochs=epochs, lr=LR, batch_size=BATCH_SIZE, seed=SEED,
                       device=device, progress=not quick, record_every=record_every)
        h = result.history
        data["device"] = result.device
        data["strategies"][label] = {
            "strategy": repr(strategy),
            "color": color,
            "step": h.step,
            "batch_loss": h.batch_loss,
            "mean_batch_loss": h.mean_batch_loss,
            "objective": h.objective,
            "optimum": optimum.objective,
            "optimum_method": optimum.method,
            "final_objective": float(h.objective[-1]),
            "averaged_objective": result.objective,
            "averaged_steps": result.averaged_steps,
            "final_relative_excess": float(h.objective[-1] / optimum.objective - 1),
            "averaged_relative_excess": float(result.objective / optimum.objective - 1),
        }
    return data


def plot(data):
    """The figure from the data of :func:`compute`."""
    entries = data["strategies"]
    fig, axes = figure(2, len(entries), width=3.9, height=3.0, sharex=True, constrained_layout=True)
    for col, (label, e) in enumerate(entries.items()):
        color = COLORS[e["color"]]
        step = np.asarray(e["step"])
        top, bottom = axes[0, col], axes[1, col]
        top.plot(step, e["batch_loss"], color=color, alpha=0.3, lw=0.8, label="mini-batch loss (sampled masks)")
        top.plot(step, e["objective"], color=color, lw=2, label="closed-form L + R (same parameters)")
        top.axhline(e["optimum"], color=COLORS["theory"], ls="--", lw=1.3, label="optimum (global_minimizer)")
        top.text(0.97, 0.04, f"optimum {e['optimum']:.4f} ({e['optimum_method'].replace('_', ' ')})",
                 transform=top.transAxes, ha="right", va="bottom", fontsize=9)
        top.set_ylim(0, 1.05 * max(np.max(e["objective"]), np.max(e["batch_loss"])))
        top.set_title(label)
        excess = np.asarray(e["objective"]) / e["optimum"] - 1
        bottom.plot(step, np.maximum(excess, 1e-8), color=color, lw=1.6, label="iterate")
        bottom.plot(step[-1], max(e["averaged_relative_excess"], 1e-8), marker="*", ms=12, color="k", ls="none",
                    label=f"tail average: {e['averaged_relative_excess']:.1e}")
        bottom.set_yscale("log")
        bottom.set_xlabel("training step (Adam updates)")
        bottom.legend(loc="upper right", frameon=False)
        if col == 0:
            top.set_ylabel("loss (target units²)")
            bottom.set_ylabel("(L + R) / optimum − 1\n(dimensionless)")
    axes[0, 0].legend(loc="upper right", frameon=False, fontsize=8)
    t = data["training"]
    fig.suptitle(f"Stochastic vs deterministic objective, p = {data['problem']['p']}, width "
                 f"{data['problem']['width']}, batch {t['batch_size']}, correlated inputs")
    return fig


def make(out_dir, quick=False, device=None):
    """Train, write ``objective.{png,pdf,json}`` into ``out_dir`` and return the paths.

    ``quick=True``: 150 epochs per strategy (seconds on a laptop CPU); otherwise 1500 epochs
    with progress bars.  ``device``: where the networks train (:func:`pnd_theory.studies.training.train`:
    the GPU when present by default).
    """
    return write_figure(NAME, compute, plot, out_dir, quick, device)


if __name__ == "__main__":
    for path in make(Path(__file__).resolve().parent):
        print(path)
