"""The training iterates themselves: exact mean and covariance over the steps against simulated runs.

Full-batch gradient descent on ``U`` of the linear model ``f(x) = U diag(xi) x`` under Dropout,
with the mask drawn per sample or once per step for the whole batch (Clara et al.'s dropout
GD), at two step sizes, from ``U = 0``:

(a)  the distance of the exact mean E U_t (:func:`pnd_theory.iterate_moments`) to the
     stationary mean (:func:`pnd_theory.stationary_moments`, the minimizer of the expected
     loss), with the simulated runs' mean;
(b)  the spread tr Cov vec(U_t), exact against the runs (±2 standard errors), with the
     stationary spread as a dotted line: per-batch masks spread more, and the spread grows with
     the step.

The runs are torch SGD on :class:`pnd_theory.LinearNetwork` (first layer the identity, frozen),
whose masks the package draws.  Everything is computed through the public API.  Writes
``iterates.png``, ``.pdf`` and ``.json``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import pnd_theory as pt
from ._style import COLORS, STYLE, write_figure

NAME = "iterates"
P_DROP = 0.3
SIZES = dict(n_in=3, width=3, n_out=2, n_samples=8)
PROBLEM_SEED = 0
LRS = (0.03, 0.12)
STRATEGIES = {"per sample": lambda: pt.Dropout(P_DROP),
              "per batch": lambda: pt.Dropout(P_DROP).with_per_sample(False)}
_LINE = {LRS[0]: "-", LRS[1]: "--"}


def _simulate(strategy, X, Y, lr, steps, runs, seed):
    """vec(U_t) of ``runs`` independent runs of full-batch SGD on U (V = I, frozen): (steps + 1, runs, n)."""
    n_in, n_out = X.shape[0], Y.shape[0]
    g = torch.Generator().manual_seed(seed)
    Xt, Yt = torch.as_tensor(X.T), torch.as_tensor(Y.T)
    out = np.zeros((steps + 1, runs, n_out * n_in))
    for r in range(runs):
        net = pt.LinearNetwork(n_in, n_in, n_out, strategy, generator=g, U=np.zeros((n_out, n_in)), V=np.eye(n_in))
        net.V.requires_grad_(False)
        opt = torch.optim.SGD([net.U], lr=lr)
        net.train()
        for t in range(steps):
            opt.zero_grad()
            loss = ((net(Xt) - Yt) ** 2).sum(1).mean()
            loss.backward()
            opt.step()
            out[t + 1, r] = net.U.detach().numpy().reshape(-1)
    return out


def compute(quick=False, device=None):
    """The data behind the figure (plain lists and floats)."""
    _, _, X, Y = pt.random_problem(**SIZES, seed=PROBLEM_SEED)
    steps, runs = (40, 150) if quick else (60, 2000)
    data = {"description": "full-batch dropout gradient descent on U of f(x) = U diag(xi) x from U = 0: exact moments "
                           "(iterate_moments, stationary_moments) against torch SGD runs of LinearNetwork (V = I "
                           "frozen)",
            "problem": {**SIZES, "seed": PROBLEM_SEED, "p": P_DROP}, "steps": steps, "runs": runs,
            "quick": bool(quick), "device": None if device is None else str(device), "cases": []}
    for label, make_strategy in STRATEGIES.items():
        strategy = make_strategy()
        for i, lr in enumerate(LRS):
            exact = pt.iterate_moments(strategy, X, Y, np.zeros((Y.shape[0], X.shape[0])), lr, steps)
            stat = pt.stationary_moments(strategy, X, Y, lr)
            sim = _simulate(strategy, X, Y, lr, steps, runs, seed=17 + 2 * i + (label == "per batch"))
            m_sim = sim.mean(1)
            dev2 = ((sim - exact.mean.reshape(steps + 1, 1, -1)) ** 2).sum(-1)  # about the exact mean
            target = stat.mean.reshape(-1)
            data["cases"].append({
                "masks": label, "strategy": repr(strategy), "lr": lr, "max_stable_lr": stat.max_stable_lr,
                "distance_exact": np.linalg.norm(exact.mean.reshape(steps + 1, -1) - target, axis=1).tolist(),
                "distance_simulated": np.linalg.norm(m_sim - target, axis=1).tolist(),
                "spread_exact": exact.spread.tolist(), "spread_simulated": dev2.mean(1).tolist(),
                "spread_simulated_se": (dev2.std(1, ddof=1) / np.sqrt(runs)).tolist(),
                "stationary_spread": stat.spread,
                "final_spread_in_se": float((dev2[-1].mean() - exact.spread[-1])
                                            / (dev2[-1].std(ddof=1) / np.sqrt(runs))),
            })
    return data


def plot(data):
    """The figure from the data of :func:`compute`."""
    colors = {"per sample": COLORS["PerNodeDrop"], "per batch": COLORS["DropConnect"]}
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
        for c in data["cases"]:
            t = np.arange(len(c["spread_exact"]))
            color, ls = colors[c["masks"]], _LINE[c["lr"]]
            label = f"{c['masks']}, lr = {c['lr']}"
            axes[0].semilogy(t, c["distance_exact"], ls, color=color, label=label)
            axes[0].semilogy(t[1::3], c["distance_simulated"][1::3], "o", color=color, ms=3, mfc="white")
            axes[1].plot(t, c["spread_exact"], ls, color=color, label=label)
            se = 2 * np.array(c["spread_simulated_se"])
            axes[1].errorbar(t[1::3], c["spread_simulated"][1::3], yerr=se[1::3], fmt="o", color=color, ms=3,
                             mfc="white", capsize=2)
            axes[1].axhline(c["stationary_spread"], color=color, ls=":", lw=1)
        axes[0].set_xlabel("step")
        axes[0].set_ylabel("||E U_t - U*||_F")
        axes[0].set_title("(a) mean of the iterates: exact (lines), runs (circles)")
        axes[1].set_xlabel("step")
        axes[1].set_ylabel("tr Cov vec(U_t)")
        axes[1].set_title("(b) spread: exact, runs (±2 se), stationary (dotted)")
        for ax in axes:
            ax.legend(frameon=False, fontsize=8)
    return fig


def make(out_dir, quick=False, device=None):
    """Compute the data, write ``iterates.{png,pdf,json}`` into ``out_dir`` and return the paths.
    ``quick=True``: 150 runs of 40 steps (seconds on one CPU core)."""
    return write_figure(NAME, compute, plot, out_dir, quick, device)


if __name__ == "__main__":
    for p in make(Path(__file__).resolve().parent):
        print(p)
