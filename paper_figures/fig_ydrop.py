"""Where Y-Drop ends in the linear network: the self-consistent rates are Dropout's.

(a)  Y-Drop training (the torch layer, rates refreshed from every batch's conductance, running
     average beta = 0.999): the running drop rates of the four units for several seeds, and the
     self-consistent rates found by damped iteration with continuation.
(b)  the feedback that makes it so: for rates spread around the mean, the unit contributions
     ||u_i|| ||S^1/2 v_i|| at the optimum of NodeDropout with those rates fall as the rate
     rises, and the rule answers with rates that fall where the old ones rose.
(c)  spectrum of the product: the self-consistent optimum, Dropout at the same mean rate,
     NodeDropout with the spread rates, and the ends of Y-Drop training.  The same training loop
     with the rule switched off (rates clipped to p) is run as a control: its end spectrum misses
     the optimum's by as much, so that gap is the finite run's, not the rule's.

Everything through the public API; this script holds no mathematics.  Writes ``ydrop.png``,
``.pdf`` and ``.json``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import pnd_theory as pt
from ._style import COLORS, STYLE, write_figure

NAME = "ydrop"
P_MEAN = 0.5
SIZES = dict(n_in=3, width=4, n_out=3, n_samples=64)
PROBLEM_SEED = 0
SPREAD_RATES = (0.3, 0.4, 0.6, 0.7)


def compute(quick=False, device=None):
    """The data behind the figure (plain lists and floats)."""
    _, _, X, Y = pt.random_problem(**SIZES, seed=PROBLEM_SEED)
    width = SIZES["width"]
    fixed = pt.ydrop_fixed_point(X, Y, width, P_MEAN)
    dropout = pt.global_minimizer(pt.Dropout(P_MEAN), X, Y, width)
    spread = pt.global_minimizer(pt.NodeDropout(SPREAD_RATES), X, Y, width)
    answered, _, (U, V) = pt.ydrop_map(SPREAD_RATES, X, Y, width, P_MEAN)
    m_sv, m_rank = fixed.minimizer.singular_values, fixed.minimizer.rank
    seeds = range(3 if quick else 6)
    runs = []
    for seed in seeds:
        run = pt.train_ydrop(X, Y, width, P_MEAN, seed=seed)
        runs.append({"seed": seed, "rates": run.rates, "objective": run.objective,
                     "relative_objective_gap": run.objective / fixed.objective - 1,
                     "max_relative_rate_gap": float(np.max(np.abs(run.rates / fixed.rates - 1))),
                     "singular_values": np.linalg.svd(run.product, compute_uv=False),
                     "relative_singular_gap": float(np.max(np.abs(np.linalg.svd(run.product, compute_uv=False)[:m_rank]
                                                                   / m_sv[:m_rank] - 1))),
                     "rate_history": run.rate_history, "steps": run.steps})
        # control: the same loop with the rule switched off (rates clipped to p: plain Dropout)
        plain = pt.train_ydrop(X, Y, width, P_MEAN, seed=seed, rate_range=(P_MEAN, P_MEAN))
        runs[-1]["control_relative_singular_gap"] = float(np.max(np.abs(
            np.linalg.svd(plain.product, compute_uv=False)[:m_rank] / m_sv[:m_rank] - 1)))
        runs[-1]["control_relative_objective_gap"] = plain.objective / fixed.objective - 1
    m = fixed.minimizer
    return {
        "description": "Y-Drop (conductance rule, sigma-norm mapping, running average) on a linear network: "
                       "self-consistent rates p = T(p) with T(p) = rule(importance at the NodeDropout(p) optimum)",
        "problem": {**SIZES, "seed": PROBLEM_SEED, "p": P_MEAN},
        "quick": bool(quick), "device": None if device is None else str(device),
        "fixed_point": {"rates": fixed.rates, "residual": fixed.residual, "converged": fixed.converged,
                        "iterations": fixed.iterations, "stages": fixed.history, "objective": m.objective,
                        "theta": m.penalty, "rank": m.rank, "singular_values": m.singular_values},
        "dropout": {"objective": dropout.objective, "theta": dropout.penalty, "rank": dropout.rank,
                    "singular_values": dropout.singular_values},
        "differences_from_dropout": {"objective": abs(m.objective - dropout.objective),
                                     "theta": abs(m.penalty - dropout.penalty),
                                     "singular_values": float(np.max(np.abs(m.singular_values
                                                                            - dropout.singular_values)))},
        "spread_rates": {"rates": SPREAD_RATES, "contributions": pt.unit_importance(U, V, X),
                         "answered_rates": answered, "objective": spread.objective, "theta": spread.penalty,
                         "rank": spread.rank, "singular_values": spread.singular_values},
        "training": {"beta": 0.999, "runs": runs,
                     "max_relative_objective_gap": max(abs(r["relative_objective_gap"]) for r in runs),
                     "max_relative_rate_gap": max(r["max_relative_rate_gap"] for r in runs),
                     "max_relative_singular_gap": max(r["relative_singular_gap"] for r in runs),
                     "control_max_relative_singular_gap": max(r["control_relative_singular_gap"] for r in runs)},
    }


def plot(data):
    """The figure from the data of :func:`compute`."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
        ax = axes[0]
        colors = plt.cm.viridis(np.linspace(0.1, 0.85, data["problem"]["width"]))
        for r in data["training"]["runs"]:
            h = np.asarray(r["rate_history"])
            t = np.linspace(0, r["steps"], len(h))
            for i in range(h.shape[1]):
                ax.plot(t, h[:, i], color=colors[i], lw=0.8, alpha=0.7,
                        label=f"unit {i + 1}" if r["seed"] == 0 else None)
        for value in data["fixed_point"]["rates"]:
            ax.axhline(value, color="k", ls="--", lw=1)
        ax.set_xlabel("training step")
        ax.set_ylabel("running drop rate")
        ax.set_title(f"(a) Y-Drop training, {len(data['training']['runs'])} seeds; --: p*")
        ax.legend(frameon=False, ncol=2)
        ax = axes[1]
        s = data["spread_rates"]
        x = np.arange(1, len(s["rates"]) + 1)
        ax.plot(x, s["rates"], "o-", color=COLORS["NodeDropout"], label="rates p")
        ax.plot(x, s["answered_rates"], "s--", color=COLORS["theory"], label="rule at the optimum, T(p)")
        ax.axhline(data["problem"]["p"], color="0.5", lw=1, ls=":")
        ax.set_xlabel("unit")
        ax.set_ylabel("drop rate")
        twin = ax.twinx()
        twin.bar(x, s["contributions"], 0.35, color=COLORS["Dropout"], alpha=0.35, label="contribution c_i")
        twin.set_ylabel("contribution c_i at the NodeDropout(p) optimum")
        ax.set_title("(b) the rule answers against the rates")
        lines = ax.get_legend_handles_labels()
        bars = twin.get_legend_handles_labels()
        ax.legend(lines[0] + bars[0], lines[1] + bars[1], frameon=False, loc="upper center")
        ax = axes[2]
        k = np.arange(1, len(data["dropout"]["singular_values"]) + 1)
        ax.plot(k, data["dropout"]["singular_values"], "_", color=COLORS["Dropout"], ms=34, mew=3,
                label=f"Dropout({data['problem']['p']})")
        ax.plot(k, data["fixed_point"]["singular_values"], "x", color="k", ms=10, label="Y-Drop self-consistent")
        ax.plot(k + 0.15, data["spread_rates"]["singular_values"], "o", color=COLORS["NodeDropout"],
                label=f"NodeDropout{tuple(data['spread_rates']['rates'])}")
        for j, r in enumerate(data["training"]["runs"]):
            ax.plot(k - 0.15, r["singular_values"], ".", color="0.3", label="Y-Drop training" if j == 0 else None)
        ax.set_xticks(k)
        ax.set_xlabel("index")
        ax.set_ylabel("singular value of A")
        ax.set_title("(c) spectrum at the end")
        ax.legend(frameon=False, loc="upper right")
    return fig


def make(out_dir, quick=False, device=None):
    """Compute the data, write ``ydrop.{png,pdf,json}`` into ``out_dir`` and return the paths
    (``quick=True``: three training seeds instead of six)."""
    return write_figure(NAME, compute, plot, out_dir, quick, device)


if __name__ == "__main__":
    for p in make(Path(__file__).resolve().parent):
        print(p)
