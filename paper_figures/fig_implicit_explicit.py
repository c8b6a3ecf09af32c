"""Explicit against implicit effects of the mask noise: per-sample against per-batch masks.

For output-layer weight noise with masks drawn per sample (PerNodeDrop) or shared by the batch
(DropConnect), constant-step SGD from the closed-form optimum is driven three ways
(:func:`pnd_theory.train` with ``noise=``): real masks; the closed-form penalty alone (no
noise: the explicit effect); the penalty plus Gaussian noise of the masks' closed-form
gradient covariance.  The two strategies share the penalty, so they share the penalty route
and the optimum; what separates them is the implicit part, the update noise.

(a)  stationary spread of the product, E||A - mean A||_F^2, with 2-standard-error bars;
(b)  the mean end point's singular values beside the closed-form optimum's;
(c)  the excess objective E[L + R] - (L + R)* of the iterates: the implicit part's price.

Everything is computed through the public API; this script holds no mathematics.  Writes
``implicit_explicit.png``, ``.pdf`` and ``.json``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import pnd_theory as pt
from ._style import COLORS, STYLE, write_figure

NAME = "implicit_explicit"
P_DROP = 0.3
SIZES = dict(n_in=3, width=4, n_out=3, n_samples=32)
PROBLEM_SEED = 2
MODES = ("masks", "penalty+matched", "penalty")
STRATEGIES = {"per sample (PerNodeDrop)": ("PerNodeDrop", lambda: pt.PerNodeDrop(P_DROP, "output")),
              "per batch (DropConnect)": ("DropConnect", lambda: pt.DropConnect(P_DROP, "output"))}
_HATCH = {"masks": "", "penalty+matched": "//", "penalty": ".."}


def compute(quick=False, device=None):
    """The data behind the figure (plain lists and floats)."""
    _, _, X, Y = pt.random_problem(**SIZES, seed=PROBLEM_SEED)
    width = SIZES["width"]
    settings = dict(lr=0.02, steps=100, snapshots=12 if quick else 40, seeds=2 if quick else 4)
    data = {
        "description": "constant-step SGD (no momentum, full batch) from the closed-form optimum, driven by real "
                       "masks, by the closed-form penalty alone, or by the penalty plus Gaussian noise of the "
                       "closed-form mask-induced gradient covariance; snapshots of A = U V^T every `steps` steps",
        "problem": {**SIZES, "seed": PROBLEM_SEED, "p": P_DROP, "layer": "output"},
        "settings": {**settings, "matched_every": 5, "burn_in": settings["steps"]},
        "quick": bool(quick), "device": None if device is None else str(device),
        "strategies": {},
    }
    for label, (family, make_strategy) in STRATEGIES.items():
        strategy = make_strategy()
        runs = {mode: pt.noise_mode_spread(strategy, X, Y, width, mode, matched_every=5, **settings).to_dict()
                for mode in MODES}
        masks, matched = runs["masks"], runs["penalty+matched"]
        gap = abs(masks["spread"] - matched["spread"]) / np.hypot(masks["spread_se"], matched["spread_se"])
        data["strategies"][label] = {"family": family, "strategy": repr(strategy), "runs": runs,
                                     "masks_vs_matched_spread_in_se": float(gap)}
    per_sample, per_batch = (data["strategies"][k]["runs"]["masks"] for k in STRATEGIES)
    data["implicit_ratio"] = {"spread": per_batch["spread"] / per_sample["spread"],
                              "excess": per_batch["excess"] / per_sample["excess"]}
    return data


def plot(data):
    """The figure from the data of :func:`compute`."""
    labels = list(data["strategies"])
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
        width = 0.26
        for panel, (ax, key, ylabel) in enumerate(zip(
                (axes[0], axes[2]), ("spread", "excess"),
                ("E ||A - mean A||_F^2", "E[L + R] - (L + R)*"))):
            for i, label in enumerate(labels):
                e = data["strategies"][label]
                color = COLORS[e["family"]]
                for j, mode in enumerate(MODES):
                    r = e["runs"][mode]
                    ax.bar(i + (j - 1) * width, r[key], width, yerr=2 * r[f"{key}_se"], color=color,
                           alpha=1.0 if mode == "masks" else 0.55, hatch=_HATCH[mode], edgecolor="k", capsize=3,
                           label=mode if i == 0 else None)
            ax.set_xticks(range(len(labels)))
            ax.set_xticklabels(labels)
            ax.set_ylabel(ylabel)
            ax.legend(frameon=False, title="updates driven by")
        axes[0].set_title("(a) stationary spread of the product (±2 se)")
        axes[2].set_title("(c) excess objective of the iterates (±2 se)")
        ax = axes[1]
        first = data["strategies"][labels[0]]["runs"]["masks"]
        k = np.arange(1, len(first["optimum_singular_values"]) + 1)
        ax.plot(k, first["optimum_singular_values"], "k_", ms=30, mew=2, label="closed-form optimum")
        for i, label in enumerate(labels):
            e = data["strategies"][label]
            for j, (mode, mk) in enumerate(zip(MODES, ("o", "s", "^"))):
                ax.plot(k + 0.12 * (2 * i + j - 2.5), e["runs"][mode]["singular_values"], mk,
                        color=COLORS[e["family"]], mfc="white" if mode != "masks" else None,
                        label=f"{e['family']}: {mode}")
        ax.set_xticks(k)
        ax.set_xlabel("index")
        ax.set_ylabel("singular value of mean A")
        ax.set_title("(b) end points against the optimum")
        ax.legend(frameon=False, fontsize=7)
    return fig


def make(out_dir, quick=False, device=None):
    """Compute the data, write ``implicit_explicit.{png,pdf,json}`` into ``out_dir`` and return
    the paths.  ``quick=True``: fewer snapshots and seeds (about a minute on one CPU core)."""
    return write_figure(NAME, compute, plot, out_dir, quick, device)


if __name__ == "__main__":
    for p in make(Path(__file__).resolve().parent):
        print(p)
