"""``pnd-theory minimize``: the global minimizer of the expected loss ``L + R``
(:func:`pnd_theory.global_minimizer`), in closed form where there is one."""

from __future__ import annotations

import pnd_theory as pt

from . import _common as c

NAME = "minimize"
HELP = "closed-form (or convex) global minimizer of the expected loss"


def add_arguments(parser):
    """The strategy, ``--X --Y`` files or the random problem, ``--method``, ``--save``."""
    c.add_json(parser)
    c.add_strategy_options(parser)
    c.add_problem_options(parser, files=("X", "Y"), model_width=True)
    parser.add_argument("--method", default=c.defaults(pt.global_minimizer)["method"],
                        choices=["auto", "closed_form", "convex", "numeric"], help="how to minimize (default: %(default)s)")
    c.add_save(parser, "the minimizer's factors")


def run(args) -> int:
    """Print the minimizer's summary (objective, data fit, penalty, rank, singular values)."""
    strategy = c.strategy(args)
    save = c.check_save(args)
    arrays, source = c.problem(args, ("X", "Y"), ("n_in", "n_out", "n_samples", "correlation", "seed"))
    X, Y = arrays["X"], arrays["Y"]
    width = c.value(args, "width")
    result = pt.global_minimizer(strategy, X, Y, width, method=args.method)
    saved = None
    if save is not None:
        U, V = result.factors()
        saved = c.save(save, U=U, V=V, A=result.product, singular_values=result.singular_values)
    lines = [f"{strategy!r}, width {width}, on {source}: X {X.shape}, Y {Y.shape}", result.summary()]
    lines += [f"saved {saved}"] if saved else []
    c.emit(args, {"strategy": repr(strategy), "width": width, "source": source, "method": result.method,
                  "objective": result.objective, "data_fit": result.data_fit, "penalty": result.penalty,
                  "rank": result.rank, "singular_values": result.singular_values.tolist(),
                  "residual": result.residual, "saved": saved}, lines)
    return 0
