"""``pnd-theory derive``: the symbolic penalty of a strategy (:func:`pnd_theory.derive`), as text
and LaTeX."""

from __future__ import annotations

import pnd_theory as pt

from . import _common as c

NAME = "derive"
HELP = "symbolic penalty of a strategy (text and LaTeX)"


def add_arguments(parser):
    """The strategy, the sizes ``--n-in``, ``--width``, ``--n-out``, and ``--expanded``."""
    c.add_json(parser)
    c.add_strategy_options(parser)
    problem = c.problem_defaults()
    for name in ("n_in", "width", "n_out"):
        parser.add_argument(c.option(name), dest=name, type=c.positive_int, default=None,
                            help=f"(default: {problem[name]})")
    parser.add_argument("--expanded", action="store_true", help="also print the expanded polynomial")


def run(args) -> int:
    """Print ``R(U, V)`` in its compact form and as LaTeX."""
    import sympy  # only here: the other subcommands start without it

    strategy = c.strategy(args)
    sizes = {k: c.value(args, k) for k in ("n_in", "width", "n_out")}
    derivation = pt.derive(strategy, **sizes)
    compact = derivation.compact()
    strengths = derivation.strengths()
    at = ", ".join(f"{k} = {v:.6g}" for k, v in strengths.items())
    lines = [f"{strategy!r} at n_in={sizes['n_in']}, width={sizes['width']}, n_out={sizes['n_out']}"
             + (f"  (lambda = p/(1-p); here {at})" if at else ""), "",
             "R(U, V) = " + (compact.text if compact is not None else "(no compact form)")]
    if args.expanded:
        lines += ["", sympy.pretty(derivation.penalty, use_unicode=False)]
    lines += ["", "LaTeX: " + derivation.latex()]
    data = {"strategy": repr(strategy), **sizes, "compact": compact.text if compact is not None else None,
            "latex": derivation.latex(), "rates": {str(k): v for k, v in derivation.symbols["rates"].items()},
            "strengths": strengths}
    if args.expanded:
        data["expanded"] = str(derivation.penalty)
    c.emit(args, data, lines)
    return 0
