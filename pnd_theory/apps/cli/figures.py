"""``pnd-theory figures``: reproduce the analysis figures (the scripts of ``paper_figures/``),
each with the JSON of its numbers."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import time
from pathlib import Path

from . import _common as c

NAME = "figures"
HELP = "reproduce the analysis figures (PNG, PDF, JSON) into ./figures/ of the current folder, or --out"

#: where the figures go without ``--out``: relative to the current folder, never the installed package
DEFAULT_OUT = Path("figures")


def add_arguments(parser):
    """``--quick``, ``--device``, ``--only NAME...``, ``--out DIR``."""
    c.add_json(parser)
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes on a laptop CPU")
    parser.add_argument("--device", type=c.device, default=None, help="torch device for training (e.g. cuda)")
    try:
        names = "only these figures, of: " + ", ".join(_figures())
    except c.UserError as err:
        names = f"only these figures ({err})"
    parser.add_argument("--only", nargs="+", metavar="NAME", help=names)
    parser.add_argument("--out", metavar="DIR",
                        help=f"write into DIR (default: {DEFAULT_OUT}/ under the current folder, created if missing)")


def _figures():
    """The registry of the figure scripts (``paper_figures.FIGURES``): name -> module."""
    try:
        import paper_figures  # the figure scripts sit above the package and import it
    except ImportError:
        raise c.UserError("the figure scripts (paper_figures/) are not importable: run from a checkout of "
                          "the repository") from None
    return paper_figures.FIGURES


def run(args) -> int:
    """Make the figures one after the other, printing each one's time and files."""
    figures = _figures()
    names = args.only or list(figures)
    unknown = [n for n in names if n not in figures]
    if unknown:
        raise c.UserError(f"--only {unknown[0]!r} is not a figure; choose from {', '.join(figures)}")
    out = Path(args.out) if args.out else DEFAULT_OUT
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise c.UserError(f"--out {str(out)!r}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK):
        raise c.UserError(f"--out {str(out)!r}: the folder is not writable")
    done = []
    for name in names:
        start = time.perf_counter()
        module = importlib.import_module(figures[name])
        # a figure's own reports go to stderr, so that stdout holds the JSON object alone
        with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):
            paths = module.make(out, quick=args.quick, device=args.device)
        done.append({"name": name, "seconds": time.perf_counter() - start, "paths": [str(p) for p in paths]})
        if not args.json:
            print(f"{name:<20} {done[-1]['seconds']:7.1f} s  " + "  ".join(done[-1]["paths"]), flush=True)
    if args.json:
        c.emit(args, {"out": str(out), "quick": args.quick, "figures": done}, [])
    return 0
