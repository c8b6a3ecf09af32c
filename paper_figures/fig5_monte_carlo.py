"""Monte Carlo convergence of the expected loss to its exact value.

At one fixed point ``(U, V)`` of a small random problem with correlated inputs
(:func:`pnd_theory.random_problem`), the Monte Carlo estimate of the expected loss with real
sampled masks (:func:`pnd_theory.monte_carlo_loss`: estimate and standard error) against the
number of mask draws ``T``, with a ±2 standard-error band, and the exact value by enumeration
over all mask configurations (:func:`pnd_theory.exact_expected_loss`) as a line.  One panel per
strategy: Dropout, DropBlock, DropConnect with one mask per mini-batch (here the whole data
set), input-layer PerNodeDrop with Bernoulli and with Gaussian masks.  The last panel shows the
standard errors together: they fall like :math:`T^{-1/2}`, and a mask shared by the batch
(DropConnect) does not average over the samples, so its error per draw is the largest.

Each ``T`` is an independent estimate (its own seed), not a running mean: the API returns the
estimate and its standard error, not the draws.  The closed form
:func:`pnd_theory.expected_loss` is recorded next to the exact value.  Writes
``monte_carlo.png``, ``monte_carlo.pdf`` and ``monte_carlo.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.ticker import FuncFormatter, NullFormatter

import pnd_theory as pt

from ._style import COLORS, figure, write_figure

NAME = "monte_carlo"
P_DROP = 0.3
PROBLEM = dict(n_in=3, width=4, n_out=2, n_samples=8, correlation=0.6, seed=0)
BAND = 2  # standard errors drawn around the estimate


def strategies():
    """(label, colour key, strategy)."""
    return [
        ("Dropout", "Dropout", pt.Dropout(P_DROP)),
        ("DropBlock (b = 2)", "DropBlock", pt.DropBlock(P_DROP, 2)),
        ("DropConnect (output, per batch)", "DropConnect", pt.DropConnect(P_DROP, "output", per_sample=False)),
        ("PerNodeDrop (input, drop)", "PerNodeDrop", pt.PerNodeDrop(P_DROP, "input")),
        ("PerNodeDrop (input, gaussian)", "PerNodeDrop (gaussian)", pt.PerNodeDrop(P_DROP, "input", stir="gaussian")),
    ]


def compute(quick=False, device=None):
    """The data behind the figure (plain lists and floats)."""
    U, V, X, Y = pt.random_problem(**PROBLEM)
    draws = [int(t) for t in np.unique(np.round(np.geomspace(10, 10**5 if quick else 10**7, 17 if quick else 25)))]
    data = {
        "description": "Monte Carlo estimate of the expected loss (real sampled masks) and its standard error "
                       "against the number of mask draws T, each T an independent estimate (seed = index), "
                       "with the exact value by enumeration over all mask configurations",
        "units": "loss: mean over samples of the squared error summed over outputs (target units squared); "
                 "T: mask draws (one draw masks the whole data set)",
        "problem": {**PROBLEM, "p": P_DROP, "generator": "pnd_theory.random_problem"},
        "quick": bool(quick),
        "device": str(torch.device("cpu" if device is None else device)),
        "band_standard_errors": BAND,
        "draws": draws,
        "strategies": {},
    }
    for label, color, strategy in strategies():
        estimates, errors = [], []
        for k, T in enumerate(draws):
            estimate, error = pt.monte_carlo_loss(strategy, U, V, X, Y, T, seed=k, device=device)
            estimates.append(estimate)
            errors.append(error)
        exact = pt.exact_expected_loss(strategy, U, V, X, Y)
        data["strategies"][label] = {
            "strategy": repr(strategy),
            "color": color,
            "estimate": estimates,
            "standard_error": errors,
            "exact": exact,
            "closed_form": pt.expected_loss(strategy, U, V, X, Y),
            "final_z": (estimates[-1] - exact) / errors[-1],
        }
    return data


def plot(data):
    """The figure from the data of :func:`compute`."""
    T = np.asarray(data["draws"])
    fig, axes = figure(2, 3, width=4.3, height=3.3, constrained_layout=True)
    panels = axes.ravel()
    k = data["band_standard_errors"]
    for ax, (label, e) in zip(panels, data["strategies"].items()):
        color = COLORS[e["color"]]
        est, se = np.asarray(e["estimate"]), np.asarray(e["standard_error"])
        ax.fill_between(T, est - k * se, est + k * se, color=color, alpha=0.25, lw=0, label=f"±{k} standard errors")
        ax.plot(T, est, color=color, marker="o", ms=3.5, label="Monte Carlo estimate")
        ax.axhline(e["exact"], color=COLORS["theory"], ls="--", lw=1.3, label=f"exact (enumeration) {e['exact']:.4f}")
        ax.set_xscale("log")
        ax.set_title(label)
        ax.set_xlabel("mask draws T")
        ax.set_ylabel("expected loss (target units²)")
        # the first estimates are rough; frame the band from T = 100 on
        late = T >= min(100, T[-1])
        span = np.max(np.abs(est[late] - e["exact"]) + k * se[late])
        ax.set_ylim(e["exact"] - 1.3 * span, e["exact"] + 1.3 * span)
        ax.legend(loc="upper right", frameon=False, fontsize=8)
    ax = panels[-1]
    for label, e in data["strategies"].items():
        ax.plot(T, e["standard_error"], color=COLORS[e["color"]], marker="o", ms=3, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title("standard errors (slope −1/2)")
    ax.set_xlabel("mask draws T")
    ax.set_ylabel("standard error (target units²)")
    ax.legend(loc="lower left", frameon=False, fontsize=7.5)
    fig.suptitle(f"Monte Carlo vs exact expected loss at a fixed (U, V), p = {data['problem']['p']}, "
                 f"{data['problem']['n_samples']} samples, correlated inputs")
    return fig


def make(out_dir, quick=False, device=None):
    """Sample, write ``monte_carlo.{png,pdf,json}`` into ``out_dir`` and return the paths.

    ``quick=True``: up to 10^5 draws; otherwise up to 10^7.  ``device``: where the masks are
    sampled (:func:`pnd_theory.monte_carlo_loss`; the CPU by default).
    """
    return write_figure(NAME, compute, plot, out_dir, quick, device)


if __name__ == "__main__":
    for path in make(Path(__file__).resolve().parent):
        print(path)
