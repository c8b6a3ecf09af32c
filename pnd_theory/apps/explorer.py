"""An interactive explorer for Jupyter: choose a strategy, its drop probability, a block size,
the width and the input correlation, and see the penalty, the induced regularizer and the
spectrum of the global minimizer change.

:func:`explorer_state` computes what the explorer shows for one setting (no widgets: usable and
testable anywhere); :func:`explore` wraps it in ipywidgets controls (the ``notebook`` extra:
``pip install 'pnd-theory[notebook]'``).  Everything comes from the public API on the built-in
random problem (:func:`pnd_theory.random_problem`); nothing here computes theory of its own.
The strategy's options come from its class's ``fields``, like the command line's.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from .._display import ResultDisplay
from .. import (STRATEGY_NAMES, expected_penalty, global_minimizer, induced_penalty, random_problem, second_moment,
                strategy_from_name)

__all__ = ["explorer_state", "explore", "ExplorerState"]


@dataclass(frozen=True)
class ExplorerState(ResultDisplay):
    r"""What the explorer shows for one setting.

    Attributes
    ----------
    strategy : Strategy
    width : int
    correlation : float
    penalty : float
        :math:`R(U, V)` of the random problem's factors (:func:`pnd_theory.expected_penalty`).
    induced_penalty : float
        :math:`\Theta(U V^\top)`, the least penalty of any factorization of the same product
        (:func:`pnd_theory.induced_penalty`).
    objective : float
        :math:`L + \Theta` at the global minimizer (:func:`pnd_theory.global_minimizer`).
    method : str
        How the minimizer was found (``"closed_form"`` or ``"convex"``).
    singular_values : numpy.ndarray
        Of the global minimizer :math:`A^*`.
    unregularized_singular_values : numpy.ndarray
        Of the minimizer of the same strategy at ``p = 0`` (no noise: least squares of rank at
        most ``width``).
    """

    strategy: object
    width: int
    correlation: float
    penalty: float
    induced_penalty: float
    objective: float
    method: str
    singular_values: np.ndarray
    unregularized_singular_values: np.ndarray
    _plot_function = "plot_explorer"


def _build(name, p, block_size, width):
    """The strategy ``name`` with the parameters it has among ``p`` and ``block_size``."""
    cls = STRATEGY_NAMES[name]
    params = {}
    if "p" in cls.fields:
        per_unit = isinstance(inspect.signature(cls).parameters["p"].default, (tuple, list))
        params["p"] = (p,) * width if per_unit else p
    if "block_size" in cls.fields:
        params["block_size"] = block_size
    return strategy_from_name(name, **params)


def explorer_state(strategy="dropout", p=0.3, block_size=2, width=4, correlation=0.6, *, n_in=4, n_out=3,
                   n_samples=64, seed=0) -> ExplorerState:
    """Penalty, induced regularizer and minimizer spectrum for one setting of the explorer.

    Parameters
    ----------
    strategy : str
        A name of :data:`pnd_theory.laws.strategies.STRATEGY_NAMES`.
    p : float
        Drop probability in ``[0, 1)`` (every unit's, for per-unit strategies).
    block_size : int
        Used by the strategies that have a block size (it must divide ``width``).
    width : int
        Hidden units :math:`d`.
    correlation : float
        Input correlation of the random problem.
    n_in, n_out, n_samples, seed
        The rest of :func:`pnd_theory.random_problem`.

    Returns
    -------
    ExplorerState
    """
    s = _build(strategy, p, block_size, width)
    U, V, X, Y = random_problem(n_in, width, n_out, n_samples, correlation, seed)
    S = second_moment(X)
    minimizer = global_minimizer(s, X, Y, width)
    plain = global_minimizer(_build(strategy, 0.0, block_size, width), X, Y, width)
    return ExplorerState(
        strategy=s, width=width, correlation=float(correlation), penalty=float(expected_penalty(s, U, V, S)),
        induced_penalty=float(induced_penalty(s, U @ V.T, width, second_moment=S)),
        objective=float(minimizer.objective), method=minimizer.method,
        singular_values=minimizer.singular_values, unregularized_singular_values=plain.singular_values)


def explore(strategy="dropout", p=0.3, block_size=2, width=4, correlation=0.6, **problem):
    """Interactive controls (ipywidgets) over :func:`explorer_state`, with a plot and a table.

    Parameters
    ----------
    strategy, p, block_size, width, correlation
        The starting values of the controls.
    **problem
        ``n_in``, ``n_out``, ``n_samples``, ``seed`` of the random problem.

    Returns
    -------
    ipywidgets.VBox
        The controls above their output; display it (it is the cell's value in Jupyter).  Its
        ``state`` attribute is the :class:`ExplorerState` shown (``None`` for a refused setting).
    """
    try:
        import ipywidgets as widgets  # optional: the notebook extra
    except ImportError as err:  # pragma: no cover - ipywidgets is in the notebook and test extras
        raise ImportError("explore needs ipywidgets: pip install 'pnd-theory[notebook]'") from err
    import matplotlib.pyplot as plt
    from IPython.display import display

    controls = {
        "strategy": widgets.Dropdown(options=list(STRATEGY_NAMES), value=strategy, description="strategy"),
        "p": widgets.FloatSlider(value=p, min=0.0, max=0.9, step=0.05, description="p"),
        "block_size": widgets.IntSlider(value=block_size, min=1, max=8, description="block size"),
        "width": widgets.IntSlider(value=width, min=1, max=16, description="width"),
        # rho mixes the inputs, X = (I + rho G) Z: 0 is white, 1 already far from diagonal
        "correlation": widgets.FloatSlider(value=correlation, min=0.0, max=max(1.0, correlation), step=0.05,
                                           description="correlation"),
    }
    output = widgets.Output()
    box = widgets.VBox([widgets.HBox(list(controls.values())[:3]), widgets.HBox(list(controls.values())[3:]), output])
    box.state = None

    def update(_=None):
        values = {k: c.value for k, c in controls.items()}
        output.clear_output(wait=True)
        with output:
            try:
                box.state = explorer_state(**values, **problem)
            except ValueError as err:  # a setting the theory refuses (block size, width): say why
                box.state = None
                print(f"not available: {err}")
                return
            display(box.state)
            box.state.plot()
            plt.show()

    for control in controls.values():
        control.observe(update, names="value")
    update()
    return box
