"""``pnd-theory gradient-noise``: the trace of the mask-induced covariance of the mini-batch
gradient (:func:`pnd_theory.gradient_noise`), the data taken as one batch."""

from __future__ import annotations

import pnd_theory as pt

from . import _common as c

NAME = "gradient-noise"
HELP = "mask-induced covariance trace of the mini-batch gradient (the data as one batch)"


def add_arguments(parser):
    """The strategy, ``--U --V --X --Y`` files or the random problem, ``--method``."""
    c.add_json(parser)
    c.add_strategy_options(parser)
    c.add_problem_options(parser, files=("U", "V", "X", "Y"))
    parser.add_argument("--method", default=c.defaults(pt.gradient_noise)["method"],
                        choices=["auto", "closed_form", "enumeration"], help="route (default: %(default)s)")


def run(args) -> int:
    """Print ``tr Cov[g]``, its parts from ``U`` and ``V``, per sample and per batch."""
    strategy = c.strategy(args)
    arrays, source = c.problem(args, ("U", "V", "X", "Y"), ("n_in", "width", "n_out", "n_samples", "correlation", "seed"))
    U, V, X, Y = (arrays[k] for k in "UVXY")
    res = pt.gradient_noise(strategy, U, V, X, Y, method=args.method)
    keys = ("trace", "trace_U", "trace_V", "trace_per_sample", "trace_per_batch")
    values = {k: None if getattr(res, k) is None else float(getattr(res, k)) for k in keys}
    lines = [f"{strategy!r} on {source}: a batch of B = {res.batch_size} samples ({res.method}), masks "
             + ("per sample" if res.per_sample else "shared by the batch"),
             f"trace of the mask-induced gradient covariance  tr Cov[g] = {values['trace']:.8g}",
             f"  from U: {values['trace_U']:.8g}   from V: {values['trace_V']:.8g}",
             f"  if drawn per sample: {values['trace_per_sample']:.8g}"
             + ("" if values["trace_per_batch"] is None else f"   if shared by the batch: {values['trace_per_batch']:.8g}")]
    c.emit(args, {"strategy": repr(strategy), "source": source, "batch_size": res.batch_size, "method": res.method,
                  "per_sample": res.per_sample, **values}, lines)
    return 0
