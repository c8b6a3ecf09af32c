"""Dropout in deep linear networks: the induced regularizer against its envelope, and training.

Depths 2, 3 and 4, Dropout at the same rate on every hidden layer, hidden widths 4, three
inputs and three outputs.

Left: for the maps :math:`A_t = P\\,\\mathrm{diag}(1, t, t)\\,Q^\\top` (fixed random
orthogonal :math:`P`, :math:`Q`; whitened inputs) the induced regularizer
:math:`\\Theta(A_t)`, the smallest penalty over factorizations found from several random
starts (:func:`pnd_theory.deep.induced_penalty`; the bars span the starts), against its
squared-nuclear-norm envelope :math:`\\nu \\|A_t\\|_*^2` (dashed) and, at :math:`t = 0`, the
penalty of the equalized rank-one factorization (:func:`pnd_theory.deep.equalized_factors`).
At depth 2 the two coincide for every map; above, they meet at rank one and part as the map
fills out.

Right: singular values of the network map after training with real sampled masks
(:func:`pnd_theory.deep.train`, several seeds, the product averaged over the last quarter of
the run) against the global minimizer of the closed-form objective
(:func:`pnd_theory.deep.global_minimizer`).  Writes ``deep.png``, ``deep.pdf`` and
``deep.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import pnd_theory as pt

from ._style import COLORS, figure, write_figure

NAME = "deep"
P_DROP = 0.3
DEPTHS = (2, 3, 4)
WIDTH = 4
N_IN = N_OUT = 3
PROBLEM = dict(n_in=N_IN, width=WIDTH, n_out=N_OUT, n_samples=64, correlation=0.6, seed=1)
DEPTH_COLORS = {2: COLORS["Dropout"], 3: COLORS["DropBlock"], 4: COLORS["PerNodeDrop"]}


def _orthogonal(rng, n):
    return np.linalg.qr(rng.normal(size=(n, n)))[0]


def compute(quick=False, device=None):
    """The data behind the figure (plain lists and floats)."""
    rng = np.random.default_rng(7)
    P, Q = _orthogonal(rng, N_OUT), _orthogonal(rng, N_IN)
    ts = [0.5, 1.0] if quick else [0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0]
    starts = 1 if quick else 4
    seeds = [0] if quick else [0, 1, 2]
    epochs = 300 if quick else 2000
    _, _, X, Y = pt.random_problem(**PROBLEM)
    data = {
        "description": "Dropout at one rate on every hidden layer of deep linear networks: the induced regularizer "
                       "of A_t = P diag(1, t, t) Q^T (whitened inputs) against nu ||A_t||_*^2, and the singular values "
                       "of trained networks against the global minimizer of the closed-form objective",
        "units": "penalty and loss: mean over samples of the squared error summed over outputs",
        "p": P_DROP, "width": WIDTH, "n_in": N_IN, "n_out": N_OUT, "quick": bool(quick),
        "device": str(torch.device("cpu" if device is None else device)),
        "t": ts, "starts": starts, "seeds": seeds, "epochs": epochs,
        "problem": {**PROBLEM, "generator": "pnd_theory.random_problem"},
        "induced": {}, "training": {},
    }
    for depth in DEPTHS:
        widths = [WIDTH] * (depth - 1)
        hidden = [pt.Dropout(P_DROP)] * (depth - 1)
        induced, spread_low, spread_high, envelope = [], [], [], []
        for t in ts:
            A = P @ np.diag([1.0, t, t]) @ Q.T
            r = pt.deep.induced_penalty(A, widths, hidden=hidden, starts=starts, seed=depth,
                                        max_iter=300 if quick else 3000)
            induced.append(r.value)
            spread_low.append(float(r.values[0]))
            spread_high.append(float(r.values[-1]))
            envelope.append(r.envelope)
        A1 = P @ np.diag([1.0, 0.0, 0.0]) @ Q.T
        rank_one = pt.deep.expected_penalty(pt.deep.equalized_factors(A1, widths), hidden=hidden)
        nu = pt.deep.envelope_coefficient([N_IN] + widths + [N_OUT], hidden=hidden)
        data["induced"][str(depth)] = {
            "induced": induced, "lowest": spread_low, "highest": spread_high, "envelope": envelope, "nu": nu,
            "rank_one_equalized": rank_one,
            "rank_one_envelope": nu * pt.spectral_k_support_norm(A1, 1) ** 2,
            "gap": [v / e - 1 for v, e in zip(induced, envelope)],
        }
        opt = pt.deep.global_minimizer(X, Y, widths, hidden=hidden, starts=1 if quick else 3,
                                       max_iter=300 if quick else 2000)
        runs = []
        for seed in seeds:
            tr = pt.deep.train(X, Y, widths, hidden=hidden, epochs=epochs, lr=0.01, seed=seed, device=device)
            runs.append({"seed": seed, "objective": tr.objective, "singular_values": tr.average_singular_values,
                         "last_singular_values": tr.singular_values})
        top = float(opt.singular_values[0])
        data["training"][str(depth)] = {
            "optimum": {"objective": opt.objective, "singular_values": opt.singular_values, "method": opt.method,
                        "start_values": opt.values, "lower_bound": opt.lower_bound},
            "runs": runs,
            "max_objective_gap": max(abs(r["objective"] / opt.objective - 1) for r in runs),
            "max_singular_value_error": max(float(np.max(np.abs(np.asarray(r["singular_values"]) - opt.singular_values)))
                                            / top for r in runs),
        }
    return data


def plot(data):
    """The figure from the data of :func:`compute`."""
    fig, axes = figure(1, 2, width=5.0, height=3.8, constrained_layout=True)
    ax = axes[0, 0]
    t = np.asarray(data["t"])
    for depth in DEPTHS:
        e = data["induced"][str(depth)]
        color = DEPTH_COLORS[depth]
        val = np.asarray(e["induced"])
        err = np.vstack([val - np.asarray(e["lowest"]), np.asarray(e["highest"]) - val])
        ax.errorbar(t, val, yerr=err, color=color, marker="o", ms=4, capsize=2,
                    label=f"depth {depth}: induced Θ (ν = {e['nu']:.3f})")
        ax.plot(np.concatenate([[0.0], t]), [e["rank_one_envelope"]] + list(e["envelope"]), color=color, ls="--",
                lw=1.2)
        ax.plot([0], [e["rank_one_equalized"]], color=color, marker="*", ms=10, ls="none")
    ax.plot([], [], color=COLORS["theory"], ls="--", label="envelope ν‖A‖*²")
    ax.plot([], [], color=COLORS["theory"], marker="*", ls="none", label="equalized rank one")
    ax.set_xlabel("t  (A = P diag(1, t, t) Qᵀ)")
    ax.set_ylabel("penalty")
    ax.set_title(f"induced regularizer, Dropout p = {data['p']} on every hidden layer")
    ax.legend(frameon=False, fontsize=7.5, loc="upper left")
    ax = axes[0, 1]
    offsets = {2: -0.2, 3: 0.0, 4: 0.2}
    for depth in DEPTHS:
        e = data["training"][str(depth)]
        color = DEPTH_COLORS[depth]
        sv = np.asarray(e["optimum"]["singular_values"])
        idx = np.arange(1, len(sv) + 1) + offsets[depth]
        ax.scatter(idx, sv, s=90, facecolors="none", edgecolors=color, lw=1.5,
                   label=f"depth {depth}: optimum ({e['optimum']['method'].replace('_', ' ')})")
        for r in e["runs"]:
            ax.scatter(idx, r["singular_values"], s=14, color=color, marker="x")
    ax.scatter([], [], s=14, color=COLORS["theory"], marker="x", label="trained (sampled masks), per seed")
    ax.set_xticks(np.arange(1, N_OUT + 1))
    ax.set_xlabel("singular value index")
    ax.set_ylabel("singular value of W_L ⋯ W_1")
    ax.set_title("trained spectra against the optimum")
    ax.legend(frameon=False, fontsize=7.5, loc="upper right")
    return fig


def make(out_dir, quick=False, device=None):
    """Compute, write ``deep.{png,pdf,json}`` into ``out_dir`` and return the paths.

    ``quick=True``: two maps, one start, one short training per depth; otherwise seven maps,
    four starts and three seeds of 2000 epochs.  ``device``: where training samples its masks.
    """
    return write_figure(NAME, compute, plot, out_dir, quick, device)


if __name__ == "__main__":
    for path in make(Path(__file__).resolve().parent):
        print(path)
