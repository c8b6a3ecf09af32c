"""Pictures of results: training against the optimum, spectra against the closed form, and
Monte Carlo estimates against the exact values.

Each function draws on the matplotlib axes it is given (or on new ones) and returns them; the
results' ``.plot()`` methods call these (:mod:`pnd_theory._display`).  matplotlib is imported
when a picture is drawn, not with the package.  The functions only draw numbers that the
results hold; they compute nothing of the theory.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["plot_training", "plot_spectrum", "plot_batch_size_noise", "plot_monte_carlo_batch_size",
           "plot_convergence", "plot_explorer"]


def _axes(ax, ncols=1, width=4.5):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt  # drawn on demand: importing the package does not need a backend

    _, axes = plt.subplots(1, ncols, figsize=(width * ncols, 3.4), constrained_layout=True)
    return axes


def _objective(optimum):
    if optimum is None:
        return None
    if isinstance(optimum, numbers.Real):
        return float(optimum)
    return float(optimum.objective)


def plot_training(result, optimum=None, ax=None):
    """The objective :math:`L + R` along a training run against the optimum, and the trained
    singular values against the optimum's.

    Parameters
    ----------
    result : TrainingResult
        From :func:`pnd_theory.train`.
    optimum : MinimizerResult or float, optional
        From :func:`pnd_theory.global_minimizer` (both panels), or its objective (left only).
    ax : pair of matplotlib axes, optional

    Returns
    -------
    numpy.ndarray of matplotlib axes
    """
    axes = np.atleast_1d(_axes(ax, ncols=2))
    h = result.history
    left = axes[0]
    left.plot(h.step, h.mean_batch_loss, color="0.7", lw=1, label="mini-batch loss, sampled masks")
    left.plot(h.step, h.objective, color="C0", lw=1.5, label="L + R of the iterates")
    left.axhline(result.objective, color="C0", ls=":", lw=1, label=f"returned factors: {result.objective:.6g}")
    best = _objective(optimum)
    if best is not None:
        left.axhline(best, color="k", ls="--", lw=1, label=f"global minimum: {best:.6g}")
    left.set_yscale("log")
    left.set_xlabel("step")
    left.set_ylabel("loss")
    left.set_title(f"{result.strategy!r}", fontsize=9)
    left.legend(fontsize=7)
    plot_spectrum(result, None if best is None or isinstance(optimum, numbers.Real) else optimum, ax=axes[1])
    return axes


def plot_spectrum(result, reference=None, ax=None):
    """Singular values of a result's product :math:`A = U V^\\top`, beside a reference's.

    Parameters
    ----------
    result : TrainingResult or MinimizerResult
    reference : MinimizerResult, optional
        The closed-form (or convex) minimizer to compare with.
    ax : matplotlib axes, optional

    Returns
    -------
    matplotlib axes
    """
    ax = _axes(ax)
    values = np.asarray(result.singular_values)
    index = np.arange(1, len(values) + 1)
    label = "trained" if hasattr(result, "history") else getattr(result, "method", "result")
    ax.plot(index, values, "o", color="C0", label=label)
    if reference is not None:
        ref = np.asarray(reference.singular_values)
        ax.plot(np.arange(1, len(ref) + 1), ref, "x", color="k", ms=9, label=f"global minimizer ({reference.method})")
    ax.set_xlabel("index i")
    ax.set_ylabel("singular value of U V^T")
    ax.set_xticks(index)
    ax.legend(fontsize=7)
    return ax


def plot_batch_size_noise(result, monte_carlo=None, ax=None):
    """Mask-induced gradient-noise trace against the batch size, per-sample and shared masks.

    Parameters
    ----------
    result : BatchSizeNoise
        From :func:`pnd_theory.gradient_noise_vs_batch_size`.
    monte_carlo : MonteCarloBatchSizeNoise, optional
        Estimates drawn with ±2 standard errors.
    ax : matplotlib axes, optional

    Returns
    -------
    matplotlib axes
    """
    ax = _axes(ax)
    ax.loglog(result.batch_sizes, result.per_sample, "-", color="C0", label="masks per sample")
    if result.per_batch is not None:
        ax.loglog(result.batch_sizes, result.per_batch, "-", color="C1", label="one mask per batch")
    if monte_carlo is not None:
        plot_monte_carlo_batch_size(monte_carlo, ax=ax)
    ax.set_xlabel("batch size B")
    ax.set_ylabel("tr Cov[g] (mask-induced)")
    ax.legend(fontsize=7)
    return ax


def plot_monte_carlo_batch_size(result, closed_form=None, ax=None):
    """Monte Carlo traces with ±2 standard errors against the batch size.

    Parameters
    ----------
    result : MonteCarloBatchSizeNoise
    closed_form : BatchSizeNoise, optional
        Drawn as lines (:func:`plot_batch_size_noise`).
    ax : matplotlib axes, optional

    Returns
    -------
    matplotlib axes
    """
    ax = _axes(ax)
    if closed_form is not None:
        plot_batch_size_noise(closed_form, ax=ax)
    ax.errorbar(result.batch_sizes, result.trace, yerr=2 * np.asarray(result.trace_se), fmt="o", color="k",
                ms=3, capsize=2, label=f"Monte Carlo ± 2 s.e. ({result.via})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("tr Cov[g] (mask-induced)")
    ax.legend(fontsize=7)
    return ax


def plot_convergence(samples, estimates, standard_errors, exact=None, ax=None, label="Monte Carlo"):
    """Monte Carlo estimates with ±2 standard-error bands against the number of draws.

    Parameters
    ----------
    samples : array of int
        Number of draws behind each estimate.
    estimates, standard_errors : arrays
        For instance from repeated :func:`pnd_theory.monte_carlo_loss` calls.
    exact : float, optional
        The exact value (closed form or enumeration), drawn as a line.
    ax : matplotlib axes, optional
    label : str

    Returns
    -------
    matplotlib axes
    """
    ax = _axes(ax)
    samples, estimates, se = (np.asarray(a, dtype=float) for a in (samples, estimates, standard_errors))
    ax.fill_between(samples, estimates - 2 * se, estimates + 2 * se, alpha=0.25, color="C0")
    ax.plot(samples, estimates, "o-", color="C0", ms=3, label=f"{label} ± 2 s.e.")
    if exact is not None:
        ax.axhline(float(exact), color="k", ls="--", lw=1, label=f"exact {float(exact):.6g}")
    ax.set_xscale("log")
    ax.set_xlabel("number of mask draws")
    ax.legend(fontsize=7)
    return ax


def plot_explorer(state, ax=None):
    """The global minimizer's singular values against those without noise, with the numbers.

    Parameters
    ----------
    state : ExplorerState
        From :func:`pnd_theory.apps.explorer.explorer_state`.
    ax : matplotlib axes, optional

    Returns
    -------
    matplotlib axes
    """
    ax = _axes(ax, width=5.5)
    plain = np.asarray(state.unregularized_singular_values)
    values = np.asarray(state.singular_values)
    index = np.arange(1, len(values) + 1)
    ax.bar(index - 0.2, plain, width=0.4, color="0.75", label="no noise (p = 0)")
    ax.bar(index + 0.2, values, width=0.4, color="C0", label=f"global minimizer ({state.method})")
    ax.set_xticks(index)
    ax.set_xlabel("index i")
    ax.set_ylabel("singular value of A*")
    ax.set_title(f"{state.strategy!r}, width {state.width}, correlation {state.correlation:g}\n"
                 f"R(U, V) = {state.penalty:.4g}   Theta(U V^T) = {state.induced_penalty:.4g}   "
                 f"L + Theta at A* = {state.objective:.4g}", fontsize=8)
    ax.legend(fontsize=7)
    return ax
