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
HELP = "reproduce the analysis figures into paper_figures/"


def add_arguments(parser):
    """``--quick``, ``--device``, ``--only NAME...``, ``--out DIR``."""
    c.add_json(parser)
    parser.add_argument("--quick", action="store_true", help="small sizes: a few minutes on a laptop CPU")
    parser.add_argument("--device", type=c.device, default=None, help="torch device for training (e.g. cuda)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these figures")
    parser.add_argument("--out", metavar="DIR", help="write here instead of paper_figures/")


def run(args) -> int:
    """Make the figures one after the other, printing each one's time and files."""
    import paper_figures  # the figure scripts sit above the package and import it

    names = args.only or list(paper_figures.FIGURES)
    unknown = [n for n in names if n not in paper_figures.FIGURES]
    if unknown:
        raise c.UserError(f"--only {unknown[0]!r} is not a figure; choose from {', '.join(paper_figures.FIGURES)}")
    out = Path(args.out) if args.out else Path(paper_figures.__file__).parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise c.UserError(f"--out {str(out)!r}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK):
        raise c.UserError(f"--out {str(out)!r}: the folder is not writable")
    done = []
    for name in names:
        start = time.perf_counter()
        module = importlib.import_module(paper_figures.FIGURES[name])
        # a figure's own reports go to stderr, so that stdout holds the JSON object alone
        with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):
            paths = module.make(out, quick=args.quick, device=args.device)
        done.append({"name": name, "seconds": time.perf_counter() - start, "paths": [str(p) for p in paths]})
        if not args.json:
            print(f"{name:<20} {done[-1]['seconds']:7.1f} s  " + "  ".join(done[-1]["paths"]), flush=True)
    if args.json:
        c.emit(args, {"out": str(out), "quick": args.quick, "figures": done}, [])
    return 0
