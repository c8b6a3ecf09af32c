"""``pnd-theory verify``: the penalty of every strategy by the symbolic, numeric, exact and Monte
Carlo routes (:func:`pnd_theory.verify`), on the built-in random problem; exit 1 on a disagreement."""

from __future__ import annotations

import pnd_theory as pt

from ..._display import format_value
from . import _common as c

NAME = "verify"
HELP = "the penalty of every strategy by the symbolic, numeric, exact and Monte Carlo routes"


def add_arguments(parser):
    """The random problem, ``--p``, ``--samples``, ``--device``, ``--no-progress``."""
    c.add_json(parser)
    c.add_problem_options(parser)
    parser.add_argument("--p", type=float, default=c.defaults(pt.default_strategies)["p"],
                        help="drop probability of every strategy (default: %(default)s)")
    parser.add_argument("--samples", type=c.positive_int, default=c.defaults(pt.verify)["samples"],
                        help="Monte Carlo draws (default: %(default)s)")
    parser.add_argument("--device", type=c.device, default=None, help="torch device for Monte Carlo (default: cpu)")
    c.add_progress(parser)


def label(strategy) -> str:
    """A strategy's name and parameters in one short line: arrays by shape (``array(4x4)``)."""
    inner = ", ".join(f"{f}={format_value(getattr(strategy, f))}" for f in strategy.fields)
    return f"{type(strategy).__name__}({inner})"


def _number(v, width=12):
    return f"{'—':>{width}}" if v is None else f"{v:{width}.8f}"


def run(args) -> int:
    """Print the table of routes; 0 when every strategy agrees, else 1."""
    sizes = {k: c.value(args, k) for k in ("n_in", "width", "n_out", "n_samples", "correlation", "seed")}
    strategies = pt.default_strategies(sizes["width"], args.p)
    U, V, X, Y = c.random_problem(args)
    rows = pt.verify(strategies, U, V, X, Y, samples=args.samples, seed=sizes["seed"], device=args.device,
                     progress=not args.no_progress)
    bad = [r for r in rows if not r.agree]
    labels = [label(r.strategy) for r in rows]
    w = max(len("strategy"), *map(len, labels))
    header = f"{'strategy':<{w}} {'symbolic':>12} {'numeric':>12} {'exact':>12} {'monte carlo':>20}  agree"
    lines = [f"penalty R(U, V) by four routes; n_in={sizes['n_in']} width={sizes['width']} n_out={sizes['n_out']} "
             f"N={sizes['n_samples']}, correlated inputs, {args.samples} Monte Carlo draws", header, "-" * len(header)]
    notes = []
    for r, name in zip(rows, labels):
        mark = ""
        if r.skipped:
            notes.append(r.skipped)
            mark = f" [{len(notes)}]"
        mc = f"{r.monte_carlo:.5f}±{r.monte_carlo_se:.5f}"
        lines.append(f"{name:<{w}} {_number(r.symbolic)} {_number(r.numeric)} {_number(r.exact)} "
                     f"{mc:>20}  {'yes' if r.agree else 'NO'}{mark}")
    lines.append(f"{len(rows) - len(bad)} of {len(rows)} strategies agree (deterministic routes to "
                 f"{rows[0].rtol:g} relative, Monte Carlo within {rows[0].mc_sigmas:g} standard errors)")
    for k, skipped in enumerate(notes, 1):
        for route, reason in skipped.items():
            lines.append(f"[{k}] no {route} value: {reason}")
    data = {"problem": sizes, "samples": args.samples, "rows": [
        {"strategy": repr(r.strategy), "symbolic": r.symbolic, "numeric": r.numeric, "exact": r.exact,
         "monte_carlo": r.monte_carlo, "monte_carlo_se": r.monte_carlo_se, "agree": r.agree, "skipped": r.skipped}
        for r in rows], "agreeing": len(rows) - len(bad), "total": len(rows)}
    c.emit(args, data, lines)
    return 1 if bad else 0
