"""The width condition of the DropBlock closed form.

DropBlock with blocks of ``b = 2`` units on a full-rank target (``n_in = n_out = 4``, inputs
correlated), widths ``d = 2, 4, ..., 12`` (``G = d / b`` blocks).  Two values per width:

*closed form*  :math:`\\min_A L(A) + \\frac{\\lambda b}{d}\\|A S^{1/2}\\|_{(b)}^2`, from
    :func:`pnd_theory.regularizers.minimizers.global_minimizer`.  It is always a lower bound on the
    factorized optimum, attained when ``G >= rank`` (or when the library finds factors that
    attain it, a certificate).  Where the library refuses (too few blocks and no certificate),
    the same value is the closed form of DropBlock at a wide enough width ``d' = b * n`` with
    the noise strength scaled to keep :math:`c = \\lambda b / d` (``p' = λ'/(1 + λ')``,
    ``λ' = λ d' / d``): the bound depends on the width only through :math:`c`.
*factorized optimum*  the minimum over factors ``(U, V)`` of width ``d`` of the exact expected
    loss :math:`E_{\\text{mask}}[\\text{loss}]`, written as the sum over every mask
    configuration (:func:`pnd_theory.exact_expected_loss` on torch tensors, differentiable)
    and minimized by full-batch L-BFGS (torch autograd, float64) from several random starts;
    the best end point is then evaluated with the closed form :func:`pnd_theory.expected_loss`.

The gap (factorized minus closed form) is positive when the blocks are too few and zero to
optimizer tolerance once ``G`` is large enough.  Writes ``width_condition.png``,
``width_condition.pdf`` and ``width_condition.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

import pnd_theory as pt
from pnd_theory.regularizers.minimizers import global_minimizer

from ._style import COLORS, figure, write_figure

NAME = "width_condition"
P_DROP = 0.2
BLOCK_SIZE = 2
N = 4  # n_in = n_out
N_SAMPLES = 64
TARGET_SINGULAR_VALUES = (2.0, 1.6, 1.3, 1.0)
NOISE = 0.2
DATA_SEED = 6
GAP_FLOOR = 1e-13  # relative gaps below this are drawn on the floor (optimizer tolerance in float64)


def problem():
    """Correlated inputs ``X = (I + 0.3 G) Z`` and ``Y = A0 X + noise``, ``A0`` of full rank
    with singular values :data:`TARGET_SINGULAR_VALUES` in random directions."""
    rng = np.random.default_rng(DATA_SEED)
    X = (np.eye(N) + 0.3 * rng.normal(size=(N, N))) @ rng.normal(size=(N, N_SAMPLES))
    P = np.linalg.qr(rng.normal(size=(N, N)))[0]
    Q = np.linalg.qr(rng.normal(size=(N, N)))[0]
    A0 = (P * np.array(TARGET_SINGULAR_VALUES)) @ Q.T
    Y = A0 @ X + NOISE * rng.normal(size=(N, N_SAMPLES))
    return X, Y


def closed_form(X, Y, width):
    """``(objective, rank of the minimizer, source)`` of the closed form at ``width``."""
    try:
        result = global_minimizer(pt.DropBlock(P_DROP, BLOCK_SIZE), X, Y, width)
        source = "global_minimizer" if width // BLOCK_SIZE >= result.rank else "global_minimizer (certified)"
    except pt.InvalidParameterError:
        # refused: too few blocks and no certificate; the bound at this width is the closed form
        # of a wide DropBlock with the same c = lam * b / width
        wide = BLOCK_SIZE * N
        lam_wide = pt.noise_strength(P_DROP) * wide / width
        result = global_minimizer(pt.DropBlock(pt.drop_probability(lam_wide), BLOCK_SIZE), X, Y, wide)
        source = "equivalent strength (refused at this width)"
    return result.objective, result.rank, source


def factorized_optimum(strategy, X, Y, width, starts, max_iter, seed=0):
    """Minimize the exact expected loss over ``(U, V)`` by L-BFGS from ``starts`` random starts.

    Returns the closed-form expected loss of every end point and the best factors."""
    X_t, Y_t = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(Y, dtype=torch.float64)

    def expected_loss(U, V):  # by enumeration over every mask configuration, differentiable
        return pt.exact_expected_loss(strategy, U, V, X_t, Y_t)

    generator = torch.Generator().manual_seed(seed)
    values, best = [], None
    for _ in range(starts):
        U = (0.5 * torch.randn(Y.shape[0], width, generator=generator, dtype=torch.float64)).requires_grad_()
        V = (0.5 * torch.randn(X.shape[0], width, generator=generator, dtype=torch.float64)).requires_grad_()
        optimizer = torch.optim.LBFGS([U, V], lr=1, max_iter=max_iter, tolerance_grad=1e-11,
                                      tolerance_change=1e-15, history_size=50, line_search_fn="strong_wolfe")

        def closure():
            optimizer.zero_grad()
            loss = expected_loss(U, V)
            loss.backward()
            return loss

        optimizer.step(closure)
        U_np, V_np = U.detach().numpy(), V.detach().numpy()
        values.append(pt.expected_loss(strategy, U_np, V_np, X, Y))
        if best is None or values[-1] < best[0]:
            with torch.no_grad():
                best = (values[-1], float(expected_loss(U, V)))
    return values, best


def compute(quick=False, device=None):
    """The data behind the figure (plain lists and floats).  ``device`` is not used: the
    optimization is a few hundred parameters, in float64 on the CPU."""
    X, Y = problem()
    widths = list(range(BLOCK_SIZE, 13 if quick else 17, BLOCK_SIZE))
    starts, max_iter = (4, 500) if quick else (12, 2000)
    strategy = pt.DropBlock(P_DROP, BLOCK_SIZE)
    data = {
        "description": "best factorized optimum of the exact expected loss (L-BFGS over (U, V) from random "
                       "starts) against the DropBlock closed form, versus the number of blocks G = d / b",
        "units": "objectives in loss units (target units squared); gaps relative (dimensionless); G blocks",
        "problem": {"n_in": N, "n_out": N, "n_samples": N_SAMPLES, "p": P_DROP, "block_size": BLOCK_SIZE,
                    "target_singular_values": TARGET_SINGULAR_VALUES, "noise": NOISE, "seed": DATA_SEED},
        "optimizer": {"method": "torch.optim.LBFGS (strong Wolfe), float64, exact expectation by enumeration",
                      "starts": starts, "max_iter": max_iter, "tolerance_grad": 1e-11, "seed": 0},
        "quick": bool(quick),
        "gap_floor": GAP_FLOOR,
        "widths": widths,
        "blocks": [w // BLOCK_SIZE for w in widths],
        "closed_form": [], "rank": [], "source": [],
        "factorized": [], "factorized_enumeration": [], "all_starts": [],
        "gap": [], "relative_gap": [],
    }
    for width in widths:
        objective, rank, source = closed_form(X, Y, width)
        values, (best, best_enumerated) = factorized_optimum(strategy, X, Y, width, starts, max_iter)
        data["closed_form"].append(objective)
        data["rank"].append(rank)
        data["source"].append(source)
        data["factorized"].append(best)
        data["factorized_enumeration"].append(best_enumerated)
        data["all_starts"].append(values)
        data["gap"].append(best - objective)
        data["relative_gap"].append((best - objective) / objective)
    return data


def plot(data):
    """The figure from the data of :func:`compute`."""
    G = np.asarray(data["blocks"])
    rank = max(data["rank"])
    color = COLORS["DropBlock"]
    fig, axes = figure(1, 2, width=4.8, height=3.8, constrained_layout=True)
    ax = axes[0, 0]
    refused = np.array(["equivalent" in s for s in data["source"]])
    closed = np.asarray(data["closed_form"])
    ax.plot(G, closed, color=COLORS["theory"], lw=1.4, label="closed form (lower bound)")
    ax.plot(G[~refused], closed[~refused], ls="none", marker="o", color=COLORS["theory"], ms=6,
            label="  returned by global_minimizer")
    if refused.any():
        ax.plot(G[refused], closed[refused], ls="none", marker="o", mfc="white", color=COLORS["theory"], ms=6,
                label="  refused there (value: same c = λb/d)")
    for g, value, source in zip(G, closed, data["source"]):
        if "certified" in source:
            ax.annotate("attained with G < rank\n(certified split)", (g, value), textcoords="offset points",
                        xytext=(-8, -34), ha="right", fontsize=8, arrowprops=dict(arrowstyle="-", color="0.4"))
    for g, values in zip(G, data["all_starts"]):
        ax.plot(np.full(len(values), g) + 0.12, values, ls="none", marker=".", color=color, alpha=0.5, ms=5)
    ax.plot(G + 0.12, data["factorized"], ls="none", marker="x", mew=2, ms=8, color=color,
            label="factorized optimum (best start; dots: all)")
    ax.axvspan(G[0] - 0.5, rank - 0.5, color="0.85", alpha=0.5, lw=0, label=f"G < rank = {rank}")
    ax.set_xlabel("number of blocks G = d / b")
    ax.set_ylabel("expected loss L + R  (target units²)")
    ax.set_title("(a) optimum against the closed form")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper right", frameon=False, fontsize=8)
    ax = axes[0, 1]
    gap = np.asarray(data["relative_gap"])
    floor = data["gap_floor"]
    shown = np.maximum(gap, floor)
    ax.plot(G, shown, color=color, marker="o", ms=6, lw=1.6, label="(factorized − closed form) / closed form")
    ax.plot(G[gap <= floor], shown[gap <= floor], ls="none", marker="v", ms=8, color=color, mfc="white",
            label=f"at or below the floor {floor:g}")
    ax.axhline(floor, color="0.5", ls=":", lw=1.2)
    ax.axvspan(G[0] - 0.5, rank - 0.5, color="0.85", alpha=0.5, lw=0, label=f"G < rank = {rank}")
    ax.set_yscale("log")
    ax.set_ylim(floor / 5, max(1.0, 3 * shown.max()))
    ax.set_xlabel("number of blocks G = d / b")
    ax.set_ylabel("relative gap (dimensionless)")
    ax.set_title("(b) gap, log scale with a floor")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(loc="upper right", frameon=False, fontsize=8)
    fig.suptitle(f"DropBlock width condition: b = {data['problem']['block_size']}, p = {data['problem']['p']}, "
                 f"full-rank {N} x {N} target")
    return fig


def make(out_dir, quick=False, device=None):
    """Optimize, write ``width_condition.{png,pdf,json}`` into ``out_dir`` and return the paths.

    ``quick=True``: widths 2 to 12, 4 starts of at most 500 L-BFGS iterations; otherwise widths
    2 to 16 and 12 starts of at most 2000.  ``device`` is accepted for a uniform interface and
    not used (float64 CPU optimization of a few hundred parameters).
    """
    return write_figure(NAME, compute, plot, out_dir, quick, device)


if __name__ == "__main__":
    for path in make(Path(__file__).resolve().parent):
        print(path)
