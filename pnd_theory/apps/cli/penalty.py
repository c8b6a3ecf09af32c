"""``pnd-theory penalty``: the closed-form penalty ``R(U, V)`` of given factors and data
(:func:`pnd_theory.expected_penalty`), with the plain and the expected loss."""

from __future__ import annotations

import pnd_theory as pt

from . import _common as c

NAME = "penalty"
HELP = "closed-form penalty of given factors and data (--Y optional: the losses need it), or of the random problem"


def add_arguments(parser):
    """The strategy and the problem: ``--U --V --X --Y`` files or the random problem."""
    c.add_json(parser)
    c.add_strategy_options(parser)
    c.add_problem_options(parser, files=("U", "V", "X", "Y"))


def run(args) -> int:
    """Print ``L(U, V)``, ``R(U, V)`` and ``L + R``; on files without ``--Y`` the penalty alone
    (it needs only ``U``, ``V`` and ``S = X X^T / N``), the losses ``null`` in JSON."""
    strategy = c.strategy(args)
    files = any(getattr(args, n) is not None for n in "UVX")
    needs = ("U", "V", "X") if files and args.Y is None else ("U", "V", "X", "Y")
    arrays, source = c.problem(args, needs, ("n_in", "width", "n_out", "n_samples", "correlation", "seed"))
    U, V, X, Y = (arrays.get(k) for k in "UVXY")
    values = {"plain_loss": None if Y is None else pt.plain_loss(U, V, X, Y),
              "penalty": pt.expected_penalty(strategy, U, V, pt.second_moment(X)),
              "expected_loss": None if Y is None else pt.expected_loss(strategy, U, V, X, Y)}
    shapes = {k: list(a.shape) for k, a in arrays.items()}
    lines = [f"{strategy!r} on {source}: " + ", ".join(f"{k} {a.shape}" for k, a in arrays.items())]
    for label, key in (("plain loss     L(U, V)", "plain_loss"), ("penalty        R(U, V)", "penalty"),
                       ("expected loss  L + R   ", "expected_loss")):
        if values[key] is not None:
            lines.append(f"{label} = {values[key]:.10g}")
    c.emit(args, {"strategy": repr(strategy), "source": source, "shapes": shapes, **values}, lines)
    return 0
