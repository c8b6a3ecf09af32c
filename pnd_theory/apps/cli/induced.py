"""``pnd-theory induced``: the induced regularizer ``Theta(A)`` of a product (:func:`pnd_theory.induced_penalty`)
and the penalty of its balanced factors (:func:`pnd_theory.balanced_factors`), which attain it."""

from __future__ import annotations

import numpy as np

import pnd_theory as pt

from . import _common as c

NAME = "induced"
HELP = "induced regularizer Theta(A) of a product A and its balanced factors"


def add_arguments(parser):
    """The strategy, ``--A`` (and ``--X``) files or the random problem, ``--save``."""
    c.add_json(parser)
    c.add_strategy_options(parser)
    c.add_problem_options(parser, files=("A", "X"), model_width=True)
    c.add_save(parser, "the balanced factors")


def run(args) -> int:
    """Print ``Theta(A)`` and ``R`` of the balanced factors (equal at the minimum)."""
    strategy = c.strategy(args)
    save = c.check_save(args)
    if args.A is not None:
        needs = ("A", "X") if args.X is not None else ("A",)
        arrays, source = c.problem(args, needs, ("n_in", "n_out", "n_samples", "correlation", "seed"))
    else:
        arrays, source = c.problem(args, ("A", "X"), ())
    A = arrays["A"]
    S = pt.second_moment(arrays["X"]) if "X" in arrays else None
    width = c.value(args, "width")
    theta = pt.induced_penalty(strategy, A, width, second_moment=S)
    U, V = pt.balanced_factors(strategy, A, width, second_moment=S)
    balanced = pt.expected_penalty(strategy, U, V, S)
    saved = c.save(save, U=U, V=V, A=A, singular_values=np.linalg.svd(A, compute_uv=False))
    lines = [f"{strategy!r}, width {width}, on {source}: A {A.shape}"
             + ("" if S is not None else ", S = I (no --X)"),
             f"induced regularizer  Theta(A)            = {theta:.10g}",
             f"penalty of the balanced factors R(U, V)  = {balanced:.10g}"] + ([f"saved {saved}"] if saved else [])
    c.emit(args, {"strategy": repr(strategy), "width": width, "source": source, "induced_penalty": theta,
                  "balanced_penalty": balanced, "saved": saved}, lines)
    return 0
