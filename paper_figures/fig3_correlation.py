"""Dropout versus input-layer PerNodeDrop as the input correlation grows.

Equicorrelated inputs: ``X`` is built so that its second moment is exactly
:math:`S(\\rho) = (1 - \\rho) I + \\rho \\mathbf 1 \\mathbf 1^\\top` (whitened Gaussian samples
mapped by the symmetric square root of :math:`S(\\rho)`), so :math:`\\operatorname{diag}(S) = I`
for every :math:`\\rho` and ``Y = A X + noise`` for one fixed target ``A``.  Three panels against
:math:`\\rho`:

(a) the induced regularizer :math:`\\Theta(A)` of the fixed target
    (:func:`pnd_theory.regularizers.induced.induced_penalty`, closed form: lines), checked by a numerical
    search over factorizations (``method="numeric"``: markers);
(b) the penalty paid at the optimum, :math:`\\Theta(A^*)` of the global minimizer (lines), and
    :math:`R(U, V)` of factors trained with real sampled masks (markers,
    :func:`pnd_theory.expected_penalty`);
(c) the global-minimizer objective :math:`L + R` (lines) and that of the trained factors
    (markers).

At :math:`\\rho = 0` the two strategies coincide (``S`` diagonal); with correlation they part:
Dropout's regularizer follows :math:`S`, input-layer PerNodeDrop's only its diagonal.

Everything is computed through the public API; this script holds no mathematics.  The data is
built here with plain numpy.  Writes ``correlation.png``, ``correlation.pdf`` and
``correlation.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import pnd_theory as pt
from pnd_theory.regularizers.induced import induced_penalty
from pnd_theory.regularizers.minimizers import global_minimizer
from pnd_theory.studies.training import train

from ._style import COLORS, figure, write_figure

NAME = "correlation"
P_DROP = 0.3
N_IN, N_OUT, WIDTH, N_SAMPLES = 4, 3, 4, 256
NOISE = 0.3
DATA_SEED = 3
LR = 0.03
SEED = 0


def strategies():
    """(label, colour key, strategy)."""
    return [("Dropout", "Dropout", pt.Dropout(P_DROP)),
            ("PerNodeDrop (input)", "PerNodeDrop", pt.PerNodeDrop(P_DROP, "input"))]


def _symmetric_root(M, power):
    w, E = np.linalg.eigh(M)
    return (E * w**power) @ E.T


class Data:
    """Whitened samples ``Z`` (``Z Z^T / N = I`` exactly), target ``A`` and noise ``E``, fixed
    once; :meth:`at` gives ``(X, Y, S)`` for a correlation ``rho``."""

    def __init__(self):
        rng = np.random.default_rng(DATA_SEED)
        Z = rng.normal(size=(N_IN, N_SAMPLES))
        self.Z = _symmetric_root(Z @ Z.T / N_SAMPLES, -0.5) @ Z
        self.A = rng.normal(size=(N_OUT, N_IN)) / np.sqrt(N_IN) * 2
        self.E = NOISE * rng.normal(size=(N_OUT, N_SAMPLES))

    @staticmethod
    def second_moment(rho):
        return (1 - rho) * np.eye(N_IN) + rho * np.ones((N_IN, N_IN))

    def at(self, rho):
        S = self.second_moment(rho)
        X = _symmetric_root(S, 0.5) @ self.Z
        return X, self.A @ X + self.E, S


def compute(quick=False, device=None):
    """The data behind the figure (plain lists and floats)."""
    data_source = Data()
    rho_lines = np.linspace(0.0, 0.9, 10 if quick else 31)
    rho_points = [0.0, 0.45, 0.9] if quick else [0.0, 0.3, 0.6, 0.9]
    epochs = 600 if quick else 4000
    data = {
        "description": "induced regularizer Theta(A) of a fixed target, penalty and objective at the global "
                       "minimizer, and at factors trained with real sampled masks, against the input "
                       "correlation rho of S = (1 - rho) I + rho 1 1^T",
        "units": "penalties and objectives in loss units (target units squared); rho dimensionless",
        "problem": {"n_in": N_IN, "n_out": N_OUT, "width": WIDTH, "n_samples": N_SAMPLES, "p": P_DROP,
                    "noise": NOISE, "seed": DATA_SEED, "A": data_source.A,
                    "second_moment": "X X^T / N = (1 - rho) I + rho 1 1^T exactly"},
        "training": {"epochs": epochs, "batch_size": "full", "lr": LR, "seed": SEED},
        "quick": bool(quick),
        "optimizer": "Adam",
        "rho_lines": rho_lines,
        "rho_points": rho_points,
        "strategies": {},
    }
    for label, color, strategy in strategies():
        lines = {"induced_penalty": [], "optimum_penalty": [], "optimum_objective": [], "method": []}
        for rho in rho_lines:
            X, Y, S = data_source.at(rho)
            optimum = global_minimizer(strategy, X, Y, WIDTH)
            lines["induced_penalty"].append(induced_penalty(strategy, data_source.A, WIDTH, S))
            lines["optimum_penalty"].append(optimum.penalty)
            lines["optimum_objective"].append(optimum.objective)
            lines["method"].append(optimum.method)
        points = {"induced_penalty_numeric": [], "trained_penalty": [], "trained_objective": [],
                  "optimum_penalty": [], "optimum_objective": []}
        for rho in rho_points:
            X, Y, S = data_source.at(rho)
            optimum = global_minimizer(strategy, X, Y, WIDTH)
            result = train(strategy, X, Y, WIDTH, epochs=epochs, lr=LR, seed=SEED, device=device,
                           progress=not quick)
            data["device"] = result.device
            # a local search from 8 starts; at rho = 0 it takes tens of seconds, so full mode only
            points["induced_penalty_numeric"].append(
                None if quick else induced_penalty(strategy, data_source.A, WIDTH, S, method="numeric"))
            points["trained_penalty"].append(pt.expected_penalty(strategy, result.U, result.V, S))
            points["trained_objective"].append(result.objective)
            points["optimum_penalty"].append(optimum.penalty)
            points["optimum_objective"].append(optimum.objective)
        data["strategies"][label] = {"strategy": repr(strategy), "color": color, "lines": lines, "points": points}
    return data


def plot(data):
    """The figure from the data of :func:`compute`."""
    fig, axes = figure(1, 3, width=4.3, height=3.7, constrained_layout=True)
    rho_l, rho_p = np.asarray(data["rho_lines"]), np.asarray(data["rho_points"])
    panels = [
        ("induced_penalty", "induced_penalty_numeric", "(a) Θ(A) of the fixed target",
         "Θ(A)  (loss units)", "closed form", "numeric min over U Vᵀ = A"),
        ("optimum_penalty", "trained_penalty", "(b) penalty at the optimum",
         "penalty  (loss units)", "Θ(A*), global minimizer", "R(U, V), trained"),
        ("optimum_objective", "trained_objective", "(c) expected loss at the optimum",
         "L + R  (loss units)", "global minimizer", "trained"),
    ]
    for ax, (line_key, point_key, title, ylabel, line_label, point_label) in zip(axes[0], panels):
        for label, e in data["strategies"].items():
            color = COLORS[e["color"]]
            ax.plot(rho_l, e["lines"][line_key], color=color, label=f"{label}: {line_label}")
            values = e["points"][point_key]
            if any(v is None for v in values):  # quick mode skips the numeric search
                continue
            ax.plot(rho_p, values, ls="none", marker="x" if "numeric" in point_key else "o", ms=8, mfc="white",
                    mew=1.8, color=color, label=f"{label}: {point_label}")
        ax.set_title(title)
        ax.set_xlabel("input correlation ρ (dimensionless)")
        ax.set_ylabel(ylabel)
        ax.legend(loc="lower left", frameon=False, fontsize=8)
    fig.suptitle(f"Dropout vs input-layer PerNodeDrop, S = (1 − ρ) I + ρ 11ᵀ, p = {data['problem']['p']}, "
                 f"width {data['problem']['width']}, trained with Adam")
    return fig


def make(out_dir, quick=False, device=None):
    """Compute, write ``correlation.{png,pdf,json}`` into ``out_dir`` and return the paths.

    ``quick=True``: 10 closed-form points and 3 trained correlations (600 full-batch epochs),
    no numerical check of Theta; otherwise 31 and 4 (4000 epochs, progress bars) and the
    numerical search over factorizations at the 4 trained correlations.  ``device``: where the networks train.
    """
    return write_figure(NAME, compute, plot, out_dir, quick, device)


if __name__ == "__main__":
    for path in make(Path(__file__).resolve().parent):
        print(path)
