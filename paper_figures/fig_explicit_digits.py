r"""Explicit against implicit effects of the mask noise in a ReLU network on the digits.

A ReLU MLP ``64 -> 128 -> 10`` on scikit-learn's digits (``N_TRAIN`` training images, the rest
of the split for testing), with Dropout on the hidden units or a PerNodeDrop readout at rate
``P``, trained by the same Adam loop four ways (:func:`pnd_theory.explicit_implicit_digits`):
(a) real masks; (b) the explicit penalty of the masks alone (exact for the squared loss: the
output is affine in the masks); (c) the penalty plus noise of the masks' gradient covariance,
estimated from a few mask draws per step; (d) no noise.

(a), (b)  test accuracy and test loss (squared loss, no noise) per way of training, mean over
          seeds with one standard error;
(c)       the share of the noise's effect (a - d) that the penalty explains (b - d), and that
          penalty plus matched noise explains (c - d), per mask law and metric, +- one s.e.

Everything through the public API; this script holds no mathematics.  Writes
``explicit_digits.png``, ``.pdf`` and ``.json``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import pnd_theory as pt

from ._style import COLORS, STYLE, write_figure

NAME = "explicit_digits"
P = 0.5
FULL = {"seeds": (0, 1, 2, 3, 4), "epochs": 40}
QUICK = {"seeds": (0, 1), "epochs": 3}
SETTINGS = {"loss": "squared", "hidden": 128, "n_train": 300, "draws": 4}
MODES = ("masks", "penalty", "penalty+matched", "none")
_LABELS = {"masks": "(a) masks", "penalty": "(b) penalty", "penalty+matched": "(c) penalty + matched noise",
           "none": "(d) no noise"}
_ALPHA = {"masks": 1.0, "penalty": 0.6, "penalty+matched": 0.35, "none": 0.15}


def compute(quick=False, device=None):
    """The data behind the figure (plain lists and floats)."""
    cfg = QUICK if quick else FULL
    result = pt.explicit_implicit_digits(P, cfg["seeds"], epochs=cfg["epochs"], device=device, **SETTINGS)
    return {
        "description": "ReLU MLP 64-128-10 on the digits, noise at the readout (Dropout on the hidden units or a "
                       "PerNodeDropLinear readout), trained by Adam with real masks (a), the explicit penalty alone "
                       "(b), the penalty plus noise of the masks' gradient covariance estimated from `draws` mask "
                       "draws per step (c), or no noise (d); test metrics on the held-out images without noise",
        "error_bars": "standard error over seeds; shares by the delta method on per-seed paired differences",
        "quick": bool(quick), "device": None if device is None else str(device),
        **result.to_dict(),
    }


def plot(data):
    """The figure from the data of :func:`compute`."""
    noises = list(data["summary"])
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
        width = 0.2
        for ax, metric, ylabel, scale in ((axes[0], "test_accuracy", "test accuracy (%)", 100),
                                          (axes[1], "test_loss", "test loss (squared)", 1)):
            for i, noise in enumerate(noises):
                for j, mode in enumerate(MODES):
                    r = data["summary"][noise][mode][metric]
                    ax.bar(i + (j - 1.5) * width, scale * r["mean"], width, yerr=scale * r["se"],
                           color=COLORS[noise], alpha=_ALPHA[mode], edgecolor="k", capsize=3,
                           label=_LABELS[mode] if i == 0 else None)
            values = [scale * data["summary"][n][m][metric]["mean"] for n in noises for m in MODES]
            span = max(values) - min(values)
            ax.set_ylim(min(values) - 2 * span - 1e-9, max(values) + 1.5 * span + 1e-9)
            ax.set_xticks(range(len(noises)))
            ax.set_xticklabels(noises)
            ax.set_ylabel(ylabel)
        axes[0].set_title(f"(a) test accuracy, p = {data['p']}")
        axes[1].set_title("(b) test loss")
        axes[0].legend(frameon=False, fontsize=8)
        ax = axes[2]
        k = 0
        ticks = []
        for noise in noises:
            for metric in ("test_accuracy", "test_loss"):
                e = data["explained"][noise][metric]
                ax.errorbar(k - 0.1, e["share"], yerr=e["share_se"], fmt="o", color=COLORS[noise], capsize=3,
                            label="penalty (b - d)" if k == 0 else None)
                if "matched_share" in e:
                    ax.errorbar(k + 0.1, e["matched_share"], yerr=e["matched_share_se"], fmt="s", mfc="white",
                                color=COLORS[noise], capsize=3, label="penalty + matched (c - d)" if k == 0 else None)
                ticks.append(f"{noise}\n{metric.replace('test_', '')}")
                k += 1
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xticks(range(k))
        ax.set_xticklabels(ticks, fontsize=8)
        ax.set_ylabel("share of the noise's effect (a - d)")
        ax.set_title("(c) what the explicit penalty explains")
        ax.legend(frameon=False, fontsize=8)
        fig.suptitle(f"MLP 64-128-10 on digits (N = {data['n_train']}), Adam, {data['epochs']} epochs, "
                     f"mean ± s.e. over {len(data['seeds'])} seeds")
    return fig


def make(out_dir, quick=False, device=None):
    """Compute the data, write ``explicit_digits.{png,pdf,json}`` into ``out_dir`` and return the paths.
    ``quick=True``: two seeds, three epochs (seconds on one CPU core)."""
    return write_figure(NAME, compute, plot, out_dir, quick, device)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    for path in make(Path(__file__).resolve().parent, quick=args.quick, device=args.device):
        print(path)
