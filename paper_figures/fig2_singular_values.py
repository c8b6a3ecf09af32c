"""Singular values of the trained product against the closed-form minimizer.

Dropout (= DropBlock with block size 1) and DropBlock with block sizes 2 and 4 at two drop
probabilities, on data with correlated inputs and a full-rank target.  Width ``d = 16``, so the
number of blocks ``G = d / b`` is at least the rank 4 for every block size (the width condition
of the closed form).  Lines: singular values of the closed-form global minimizer
(:func:`pnd_theory.regularizers.minimizers.global_minimizer`); markers: singular values of the product
:math:`U V^\\top` trained with real sampled masks (:func:`pnd_theory.studies.training.train`, the last
iterate: see :func:`compute`); grey: the
unregularized least-squares product (the same call with ``p = 0``).  The block size moves the
induced norm from the nuclear norm (``b = 1``: the small singular values are cut the most) to
the Frobenius norm (``b >= rank``: every singular value shrinks by one factor).

Everything is computed through the public API; this script holds no mathematics.  The data
(correlated inputs, a target with chosen singular values) is built here with plain numpy.  The
six training runs are the cells of one :func:`pnd_theory.studies.sweeps` (:func:`train_run` each), so
they spread over the cores, and a run that is interrupted resumes from the finished ones.
Writes ``singular_values.png``, ``singular_values.pdf`` and ``singular_values.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import to_rgb

import pnd_theory as pt
from pnd_theory.regularizers.minimizers import global_minimizer
from pnd_theory.studies.sweeps import checkpoint
from pnd_theory.studies.training import train

from ._style import COLORS, figure, write_figure

NAME = "singular_values"
P_DROPS = (0.2, 0.5)
BLOCK_SIZES = (1, 2, 4)
WIDTH = 16
N_IN = N_OUT = 4
N_SAMPLES = 256
TARGET_SINGULAR_VALUES = (3.0, 2.0, 1.2, 0.6)
NOISE = 0.2
DATA_SEED = 2
LR = 0.03
SEED = 0
#: block size -> (marker, colour, horizontal offset of the markers); DropBlock's family colour,
#: darkened for the larger block
MARKERS = {1: ("o", COLORS["Dropout"], -0.12), 2: ("s", COLORS["DropBlock"], 0.0),
           4: ("D", tuple(0.6 * c for c in to_rgb(COLORS["DropBlock"])), 0.12)}


def problem():
    """Correlated inputs ``X`` (:func:`pnd_theory.random_problem`) and ``Y = A0 X + noise``
    with ``A0`` of singular values :data:`TARGET_SINGULAR_VALUES` in random directions."""
    rng = np.random.default_rng(DATA_SEED)
    _, _, X, _ = pt.random_problem(n_in=N_IN, width=1, n_out=N_OUT, n_samples=N_SAMPLES, correlation=0.4,
                                   seed=DATA_SEED)
    P = np.linalg.qr(rng.normal(size=(N_OUT, N_OUT)))[0]
    Q = np.linalg.qr(rng.normal(size=(N_IN, N_IN)))[0]
    A0 = (P[:, :len(TARGET_SINGULAR_VALUES)] * np.array(TARGET_SINGULAR_VALUES)) @ Q[:, :len(TARGET_SINGULAR_VALUES)].T
    Y = A0 @ X + NOISE * rng.normal(size=(N_OUT, N_SAMPLES))
    return X, Y


def strategy_for(p, b):
    return pt.Dropout(p) if b == 1 else pt.DropBlock(p, b)


def label_for(b):
    return "Dropout (b = 1)" if b == 1 else f"DropBlock b = {b}"


def train_run(p, block_size, epochs, device=None):
    """One cell of the figure: train at drop probability ``p`` and block size ``block_size``
    (the last iterate and train's tail average) against the closed-form minimizer."""
    X, Y = problem()
    strategy = strategy_for(p, block_size)
    optimum = global_minimizer(strategy, X, Y, WIDTH)
    result = train(strategy, X, Y, WIDTH, epochs=epochs, lr=LR, seed=SEED, device=device, progress=False)
    # the last iterate (the step has decayed to zero), not train's tail average of the
    # factors: with 16 units for a rank-4 product the iterates drift along the flat
    # directions of L + R (rotations among equalized units), and averaging rotated
    # factors shrinks the product (both are recorded)
    closed, trained = optimum.singular_values, result.history.singular_values[-1]
    return {
        "device": result.device, "blocks": WIDTH // block_size, "strategy": repr(strategy),
        "closed_form": closed.tolist(), "trained": trained.tolist(), "method": optimum.method,
        "optimum_objective": optimum.objective, "trained_objective": result.last_objective,
        "tail_averaged": result.singular_values.tolist(), "tail_averaged_objective": result.objective,
        "max_abs_error_over_top": float(np.max(np.abs(trained - closed)) / closed[0]),
    }


def compute(quick=False, device=None, store=None, client=None):
    """The data behind the figure (plain lists and floats).

    The runs are the cells of a :func:`pnd_theory.studies.sweeps` over ``p`` and the block size, kept in
    ``store`` if given, on ``client``: by default a LocalCluster with one worker per core, or
    this process in quick mode (its runs take about a second: starting worker processes would
    cost more than they save).
    """
    X, Y = problem()
    epochs = 600 if quick else 4000
    data = {
        "description": "singular values of the trained product U V^T (real sampled masks, Adam, last iterate "
                       "after the step decayed to zero; train's tail average recorded as tail_averaged) and of "
                       "the closed-form global minimizer, for Dropout and DropBlock",
        "units": "singular values of the product A (target units per input unit); index dimensionless",
        "problem": {"n_in": N_IN, "n_out": N_OUT, "width": WIDTH, "n_samples": N_SAMPLES,
                    "target_singular_values": TARGET_SINGULAR_VALUES, "noise": NOISE, "seed": DATA_SEED,
                    "inputs": "pnd_theory.random_problem(correlation=0.4) inputs"},
        "training": {"epochs": epochs, "batch_size": "full", "lr": LR, "seed": SEED},
        "quick": bool(quick),
        "optimizer": "Adam",
        "least_squares": global_minimizer(pt.Dropout(0.0), X, Y, WIDTH).singular_values,
        "runs": [],
    }
    spec = {"task": "paper_figures.fig2_singular_values:train_run",
            "grid": {"p": list(P_DROPS), "block_size": list(BLOCK_SIZES)},
            "options": {"epochs": epochs, "device": None if device is None else str(device)}}
    client = client if client is not None else ("serial" if quick else None)
    table = pt.sweep(spec, client=client, store=store, progress=not quick)
    failed = table[table.status == "failed"]
    if len(failed):
        raise RuntimeError(f"{len(failed)} training runs failed; the first: {failed.error.iloc[0]}")
    for run in table.to_dict("records"):
        data["device"] = run["device"]
        data["runs"].append({
            "p": run["p"], "block_size": run["block_size"], **{k: run[k] for k in (
                "blocks", "strategy", "closed_form", "trained", "method", "optimum_objective", "trained_objective",
                "tail_averaged", "tail_averaged_objective", "max_abs_error_over_top")}})
    return data


def plot(data):
    """The figure from the data of :func:`compute`."""
    fig, axes = figure(1, len(P_DROPS), width=4.8, height=3.9, sharey=True, constrained_layout=True)
    ls_sv = np.asarray(data["least_squares"])
    index = np.arange(1, ls_sv.size + 1)
    for ax, p in zip(axes[0], P_DROPS):
        ax.plot(index, ls_sv, color="0.6", ls=":", marker="_", ms=14, label="no noise (least squares)")
        for run in (r for r in data["runs"] if r["p"] == p):
            marker, color, shift = MARKERS[run["block_size"]]
            ax.plot(index + shift, run["closed_form"], color=color, lw=1.4, alpha=0.8,
                    label=f"{label_for(run['block_size'])}: closed form")
            ax.plot(index + shift, run["trained"], marker=marker, color=color, ls="none", mfc="white", mew=1.6,
                    ms=7, label=f"{label_for(run['block_size'])}: trained")
        ax.set_xticks(index)
        ax.set_xlabel("singular value index i (dimensionless)")
        ax.set_title(f"p = {p}  (λ = {p / (1 - p):.2f}), width d = {data['problem']['width']}")
        ax.set_ylim(bottom=0)
    axes[0, 0].set_ylabel("σ_i(U Vᵀ)  (target units / input units)")
    axes[0, 0].legend(loc="upper right", frameon=False, fontsize=8)
    fig.suptitle("Trained (Adam) vs closed-form singular values: the block size sets the induced norm")
    return fig


def make(out_dir, quick=False, device=None):
    """Train, write ``singular_values.{png,pdf,json}`` into ``out_dir`` and return the paths.

    ``quick=True``: 600 full-batch epochs per run (seconds on a laptop CPU); otherwise 4000
    epochs with progress bars.  ``device``: where the networks train (the GPU when present by
    default).  The runs spread over the cores (:func:`compute`); until the figure is written they
    are kept in ``out_dir/.singular_values.cells``, so an interrupted run resumes from them.
    """
    with checkpoint(Path(out_dir) / f".{NAME}.cells"):
        return write_figure(NAME, compute, plot, out_dir, quick, device)


if __name__ == "__main__":
    for path in make(Path(__file__).resolve().parent):
        print(path)
