"""Gradient noise against the batch size: per-sample versus shared masks.

Three panels, all at one fixed point ``(U, V)`` of a random problem:

(a), (b)  trace of the mask-induced covariance of the mini-batch gradient against the batch
          size ``B`` for weight noise on the output and on the input layer, with masks drawn
          per sample (PerNodeDrop) or shared by the batch (framework DropConnect): closed form
          (lines, :func:`pnd_theory.gradient_covariance.gradient_noise_vs_batch_size`) and Monte
          Carlo over real autograd gradients of the torch layers (points with 2-standard-error
          bars, :func:`pnd_theory.gradient_covariance.monte_carlo_gradient_noise_vs_batch_size`).
(c)       the Gaussian PerNodeDrop layer against its local-reparameterization fast path:
          the same forward law, a different gradient noise (``B`` times the trace: both fall
          like ``1/B``, so the lines are flat and their gap is the constant ratio).

The Monte Carlo points are the cells of one :func:`pnd_theory.studies.sweeps` (:func:`monte_carlo_trace`
each: a kind of mask, a layer, a batch size), so they spread over the cores, and a run that is
interrupted resumes from the finished ones.

Everything is computed through the public API; this script holds no mathematics.  Writes
``gradient_noise.png``, ``gradient_noise.pdf`` and ``gradient_noise.json`` (atomically).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import pnd_theory as pt
from ._style import COLORS, STYLE, write_figure
from pnd_theory.gradient_covariance import (
    gradient_noise_vs_batch_size,
    monte_carlo_gradient_noise_vs_batch_size,
)
from pnd_theory.studies.sweeps import checkpoint

NAME = "gradient_noise"
P_DROP = 0.3
SIZES = dict(n_in=4, width=4, n_out=3, n_samples=256)
PROBLEM_SEED = 1
REPORT_B = (1, 16, 256)

_COLORS = {"per sample": COLORS["PerNodeDrop"], "per batch": COLORS["DropConnect"],
           "exact": COLORS["PerNodeDrop (gaussian)"], "local": COLORS["DropBlock"]}


def _problem():
    """Random factors and data; inputs rescaled to norm sqrt(n_in) so that the samples'
    own gradient noise is comparable (less spread across samples, steadier Monte Carlo)."""
    U, V, X, Y = pt.random_problem(**SIZES, seed=PROBLEM_SEED)
    X = X / np.linalg.norm(X, axis=0, keepdims=True) * np.sqrt(X.shape[0])
    return U, V, X, Y


#: Monte Carlo settings shared by every point
MONTE_CARLO = dict(sampling="with_replacement", via="layers")
#: kind of mask -> (strategy at a layer, keyword arguments, base seed of its Monte Carlo points)
KINDS = {
    "per_sample": (lambda layer: pt.PerNodeDrop(P_DROP, layer), {}, 11),
    "per_batch": (lambda layer: pt.DropConnect(P_DROP, layer), {}, 11),
    "exact": (lambda layer: pt.PerNodeDrop(P_DROP, layer, stir="gaussian"), {"local_reparameterization": False}, 21),
    "local": (lambda layer: pt.PerNodeDrop(P_DROP, layer, stir="gaussian"), {"local_reparameterization": True}, 21),
}


def monte_carlo_trace(kind, layer, batch_size, batches, draws, device=None):
    """One Monte Carlo point: the trace of the gradient covariance at one batch size, over
    ``batches`` independent batches and ``draws`` masks each, seeded by the kind and ``B``."""
    U, V, X, Y = _problem()
    strategy, kw, seed = KINDS[kind]
    m = monte_carlo_gradient_noise_vs_batch_size(strategy(layer), U, V, X, Y, [batch_size], batches=batches,
                                                 draws=draws, seed=seed + batch_size, device=device,
                                                 **MONTE_CARLO, **kw)
    return {"trace": float(m.trace[0]), "se": float(m.trace_se[0])}


def _monte_carlo_points(plan, device, store, client, progress):
    """Every Monte Carlo point of the figure, (kind, layer) -> {"trace": [...], "se": [...]}
    in the order of ``plan`` (B -> (batches, draws))."""
    grid = [{"kind": list(KINDS), "layer": ["output", "input"], "batch_size": [B], "batches": [batches],
             "draws": [draws]} for B, (batches, draws) in plan.items()]
    spec = {"task": "paper_figures.fig_gradient_noise:monte_carlo_trace", "grid": grid,
            "options": {"device": None if device is None else str(device)}}
    table = pt.sweep(spec, client=client, store=store, progress=progress)
    failed = table[table.status == "failed"]
    if len(failed):
        raise RuntimeError(f"{len(failed)} Monte Carlo points failed; the first: {failed.error.iloc[0]}")
    points = {}
    for (kind, layer), part in table.groupby(["kind", "layer"], sort=False):
        part = part.set_index("batch_size").loc[list(plan)]
        points[kind, layer] = {"trace": part.trace.tolist(), "se": part.se.tolist()}
    return points


def compute(quick=False, device=None, store=None, client=None):
    """The data behind the figure (a dict of plain lists and floats).

    The Monte Carlo points are the cells of a :func:`pnd_theory.studies.sweeps`, kept in ``store`` if
    given, on ``client``: by default a LocalCluster with one worker per core, or this process
    in quick mode (its points take a fraction of a second each: starting worker processes
    would cost more than they save).
    """
    U, V, X, Y = _problem()
    N = X.shape[1]
    lines_B = np.unique(np.round(np.logspace(0, np.log10(N), 40)).astype(int))
    mc_B = [1, 16, 256] if quick else [1, 4, 16, 64, 256]
    # small batches: the spread across batches dominates (many batches, few draws each);
    # large batches: the mask noise within a batch dominates (fewer batches, more draws)
    plan = {B: ((max(12, 96 // B), 16 if B < 16 else 48) if quick else (max(48, 512 // B), 32 if B < 16 else 128))
            for B in mc_B}
    mc = MONTE_CARLO
    client = client if client is not None else ("serial" if quick else None)
    points = _monte_carlo_points(plan, device, store, client, progress=not quick)
    data = {
        "description": "trace of the mask-induced covariance of the mini-batch gradient d/d(U, V) of "
                       "(1/B) sum_k ||y_k - f(x_k)||^2, expected over batches of B indices drawn uniformly "
                       "with replacement; closed form and Monte Carlo over autograd gradients of the torch "
                       "layers (mean and standard error over independent batches)",
        "units": "trace in (loss units / parameter units)^2; B in samples",
        "problem": {**SIZES, "seed": PROBLEM_SEED, "p": P_DROP,
                    "inputs": "pt.random_problem columns rescaled to norm sqrt(n_in)"},
        "quick": bool(quick), "device": None if device is None else str(device),
        "monte_carlo": {**mc, "batch_sizes": mc_B,
                        "batches_and_draws": {str(B): list(v) for B, v in plan.items()}},
        "batch_sizes": lines_B.tolist(),
        "layers": {},
        "local_reparameterization": {},
    }
    for layer in ("output", "input"):
        per_sample = pt.PerNodeDrop(P_DROP, layer)  # its per-batch twin is read by the batch-size law
        theory = gradient_noise_vs_batch_size(per_sample, U, V, X, Y, lines_B)
        at = gradient_noise_vs_batch_size(per_sample, U, V, X, Y, list(REPORT_B))
        entry = {
            "per_sample": theory.per_sample.tolist(), "per_batch": theory.per_batch.tolist(),
            "single_sample_trace": theory.single_sample_trace, "full_data_trace": theory.full_data_trace,
            "correlation": theory.correlation,
            "ratio_at": {str(b): float(r) for b, r in zip(REPORT_B, at.ratio)},
            "per_sample_at": {str(b): float(v) for b, v in zip(REPORT_B, at.per_sample)},
            "per_batch_at": {str(b): float(v) for b, v in zip(REPORT_B, at.per_batch)},
            "theory_at_mc": {
                "per_sample": gradient_noise_vs_batch_size(per_sample, U, V, X, Y, mc_B).per_sample.tolist(),
                "per_batch": gradient_noise_vs_batch_size(per_sample, U, V, X, Y, mc_B).per_batch.tolist(),
            },
        }
        for kind in ("per_sample", "per_batch"):
            entry[f"mc_{kind}"] = points[kind, layer]
        data["layers"][layer] = entry
    for layer in ("output", "input"):
        gaussian = pt.PerNodeDrop(P_DROP, layer, stir="gaussian")
        exact = gradient_noise_vs_batch_size(gaussian, U, V, X, Y, lines_B)
        local = gradient_noise_vs_batch_size(gaussian, U, V, X, Y, lines_B, local_reparameterization=True)
        entry = {"exact": exact.per_sample.tolist(), "local": local.per_sample.tolist(),
                 "exact_single_sample_trace": exact.single_sample_trace,
                 "local_single_sample_trace": local.single_sample_trace,
                 "ratio_local_to_exact": local.single_sample_trace / exact.single_sample_trace}
        for kind in ("exact", "local"):
            entry[f"mc_{kind}"] = points[kind, layer]
        data["local_reparameterization"][layer] = entry
    return data


def plot(data):
    """The figure from the data of :func:`compute`."""
    B = np.array(data["batch_sizes"])
    mc_B = np.array(data["monte_carlo"]["batch_sizes"])
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.2), constrained_layout=True)
        for ax, layer, tag in zip(axes[:2], ("output", "input"), ("a", "b")):
            e = data["layers"][layer]
            for key, label, mk, shift in (("per_sample", "per sample (PerNodeDrop)", "o", 0.93),
                                          ("per_batch", "per batch (DropConnect)", "s", 1.07)):
                color = _COLORS[key.replace("_", " ")]
                ax.plot(B, e[key], color=color, label=label)
                m = e[f"mc_{key}"]
                ax.errorbar(mc_B * shift, m["trace"], yerr=2 * np.array(m["se"]), fmt=mk, color=color,
                            mfc="white", capsize=3)
            ax.axhline(e["full_data_trace"], color="0.4", ls=":", lw=1.2, label="limit: full data, shared mask")
            ax.set_xscale("log")
            ax.set_yscale("log")
            values = np.concatenate([e["per_sample"], e["per_batch"]])
            ax.set_ylim(values.min() / 1.5, values.max() * 12)     # room for the legend above the curves
            ax.set_xlabel("batch size B (samples)")
            ax.set_ylabel("tr Cov[gradient]  (loss² / weight²)")
            ax.set_title(f"({tag}) {layer}-layer weight noise, p = {data['problem']['p']}")
            ax.legend(loc="upper right", frameon=False, title="lines: closed form; points: MC (±2 se)")
            ax.grid(True, which="major", alpha=0.3)
        ax = axes[2]
        for layer, ls, shift in (("output", "-", 0.95), ("input", "--", 1.05)):
            e = data["local_reparameterization"][layer]
            for key, label, mk in (("exact", "exact layer", "o"), ("local", "local reparameterization", "^")):
                color = _COLORS[key]
                ax.plot(B, B * np.array(e[key]), color=color, ls=ls, label=f"{layer} layer: {label}")
                m = e[f"mc_{key}"]
                ax.errorbar(mc_B * shift, mc_B * np.array(m["trace"]), yerr=2 * mc_B * np.array(m["se"]), fmt=mk,
                            color=color, mfc="white", capsize=3)
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("batch size B (samples)")
        ax.set_ylabel("B · tr Cov[gradient]  (loss² / weight²)")
        ax.set_title("(c) Gaussian PerNodeDrop: exact vs fast path")
        ax.legend(loc="lower left", frameon=False, title="lines: closed form; points: MC (±2 se)")
        ax.grid(True, which="major", alpha=0.3)
    return fig


def make(out_dir, quick=False, device=None):
    """Compute the data, write ``gradient_noise.{png,pdf,json}`` into ``out_dir`` (atomically)
    and return the paths.  ``quick=True`` uses fewer Monte Carlo draws (well under a minute on
    a laptop CPU); ``device`` is where the Monte Carlo networks run (the CPU by default; the
    networks are tiny, so a GPU does not make them faster).  Until the figure is written the
    Monte Carlo points are kept in ``out_dir/.gradient_noise.cells``, so an interrupted run
    resumes from them."""
    with checkpoint(Path(out_dir) / f".{NAME}.cells"):
        return write_figure(NAME, compute, plot, out_dir, quick, device)


if __name__ == "__main__":
    for p in make(Path(__file__).resolve().parent):
        print(p)
