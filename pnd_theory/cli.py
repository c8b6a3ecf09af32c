"""The ``pnd-theory`` command (also ``python -m pnd_theory``).

Every subcommand uses the public API only.  Exit code 0 on success, 2 with a one-line
message on bad arguments or input (never a traceback for a user error).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from . import sweep_cli
from .strategies import STRATEGY_NAMES, strategy_from_name


class UserError(Exception):
    """A problem with the command line or the input files: reported in one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


# --------------------------------------------------------------------------- shared options

def _add_strategy_options(parser, default="dropout"):
    g = parser.add_argument_group("strategy")
    g.add_argument("--strategy", default=default, choices=sorted(STRATEGY_NAMES), help="noise strategy (default: %(default)s)")
    g.add_argument("--p", type=float, default=0.5, help="drop probability in [0, 1) (default: %(default)s)")
    g.add_argument("--rates", type=float, nargs="+", help="per-unit drop probabilities (node-dropout)")
    g.add_argument("--block-size", type=int, default=2, help="DropBlock block size (default: %(default)s)")
    g.add_argument("--layer", choices=["input", "output", "both"], help="weight layer (dropconnect, pernodedrop)")
    g.add_argument("--stir", choices=["drop", "gaussian"], default="drop", help="PerNodeDrop mask law (default: %(default)s)")
    g.add_argument("--per-sample", action="store_true", help="DropConnect: a mask per sample")


def _strategy(args):
    name = args.strategy
    if name == "node-dropout":
        if not args.rates:
            raise UserError("--strategy node-dropout needs --rates, one drop probability per hidden unit")
        return strategy_from_name(name, p=args.rates)
    params = {"p": args.p}
    if name == "dropblock":
        params["block_size"] = args.block_size
    if name in ("dropconnect", "pernodedrop") and args.layer:
        params["layer"] = args.layer
    if name == "dropconnect":
        params["per_sample"] = args.per_sample
    if name == "pernodedrop":
        params["stir"] = args.stir
    return strategy_from_name(name, **params)


def _add_problem_options(parser, width=4, n_in=3, n_out=2, n_samples=8, files=()):
    g = parser.add_argument_group("problem (a built-in random problem unless files are given)")
    g.add_argument("--n-in", type=int, default=n_in, help="inputs (default: %(default)s)")
    g.add_argument("--width", type=int, default=width, help="hidden units d (default: %(default)s)")
    g.add_argument("--n-out", type=int, default=n_out, help="outputs (default: %(default)s)")
    g.add_argument("--n-samples", type=int, default=n_samples, help="samples N (default: %(default)s)")
    g.add_argument("--correlation", type=float, default=0.6, help="input correlation of the random problem (default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    for name in files:
        g.add_argument(f"--{name}", metavar="FILE.npy", help=f"{name} from a .npy file")


def _load(path, name):
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read --{name} {path!r}: {exc}") from None
    if array.ndim != 2:
        raise UserError(f"--{name} {path!r} must hold a 2-D array, got shape {array.shape}")
    return array


def _problem(args):
    from .problems import random_problem

    U, V, X, Y = random_problem(args.n_in, args.width, args.n_out, args.n_samples, args.correlation, args.seed)
    loaded = {k: _load(getattr(args, k), k) for k in ("U", "V", "X", "Y") if getattr(args, k, None)}
    return (loaded.get("U", U), loaded.get("V", V), loaded.get("X", X), loaded.get("Y", Y)), loaded


# --------------------------------------------------------------------------- subcommands

def _cmd_verify(args):
    from .problems import random_problem
    from .verification import default_strategies, verify

    U, V, X, Y = random_problem(args.n_in, args.width, args.n_out, args.n_samples, args.correlation, args.seed)
    rows = verify(default_strategies(args.width, args.p), U, V, X, Y, samples=args.samples, seed=args.seed,
                  device=args.device, progress=not args.no_progress)
    print(f"penalty R(U, V) by four routes; n_in={args.n_in} width={args.width} n_out={args.n_out} "
          f"N={args.n_samples}, correlated inputs, {args.samples} Monte Carlo draws")
    header = f"{'strategy':<52} {'symbolic':>12} {'numeric':>12} {'exact':>12} {'monte carlo':>20}  agree"
    print(header)
    print("-" * len(header))
    for r in rows:
        mc = f"{r.monte_carlo:.5f}±{r.monte_carlo_se:.5f}"
        print(f"{repr(r.strategy)[:52]:<52} {r.symbolic:12.8f} {r.numeric:12.8f} {r.exact:12.8f} {mc:>20}  "
              f"{'yes' if r.agree else 'NO'}")
    bad = [r for r in rows if not r.agree]
    print(f"{len(rows) - len(bad)} of {len(rows)} strategies agree (deterministic routes to 1e-9 relative, "
          f"Monte Carlo within 5 standard errors)")
    return 1 if bad else 0


def _cmd_derive(args):
    import sympy

    from .symbolic import derive

    strategy = _strategy(args)
    derivation = derive(strategy, args.n_in, args.width, args.n_out)
    compact = derivation.compact()
    print(f"{strategy!r} at n_in={args.n_in}, width={args.width}, n_out={args.n_out}  (lambda = p/(1-p))")
    print()
    print("R(U, V) =", compact.text if compact is not None else "(no compact form)")
    if args.expanded:
        print()
        print(sympy.pretty(derivation.penalty, use_unicode=False))
    print()
    print("LaTeX:", derivation.latex())
    return 0


def _cmd_penalty(args):
    from .penalty import expected_loss, expected_penalty, plain_loss, second_moment

    strategy = _strategy(args)
    (U, V, X, Y), loaded = _problem(args)
    S = second_moment(X)
    source = "files " + ", ".join(sorted(loaded)) if loaded else "a built-in random problem"
    values = (plain_loss(U, V, X, Y), expected_penalty(strategy, U, V, S), expected_loss(strategy, U, V, X, Y))
    print(f"{strategy!r} on {source}: U {U.shape}, V {V.shape}, X {X.shape}, Y {Y.shape}")
    for label, value in zip(("plain loss     L(U, V)", "penalty        R(U, V)", "expected loss  L + R   "), values):
        print(f"{label} = {value:.10g}")
    return 0


def _cmd_minimize(args):
    from .minimizers import global_minimizer

    strategy = _strategy(args)
    (_, _, X, Y), loaded = _problem(args)
    result = global_minimizer(strategy, X, Y, args.width, method=args.method)
    source = "files " + ", ".join(sorted(loaded)) if loaded else "a built-in random problem"
    print(f"{strategy!r}, width {args.width}, on {source}: X {X.shape}, Y {Y.shape}")
    print(result.summary())
    return 0


def _cmd_train(args):
    from .minimizers import global_minimizer
    from .training import train

    strategy = _strategy(args)
    (_, _, X, Y), loaded = _problem(args)
    theory = global_minimizer(strategy, X, Y, args.width)
    result = train(strategy, X, Y, args.width, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                   seed=args.seed, device=args.device, progress=not args.no_progress)
    k = min(len(theory.singular_values), len(result.singular_values))
    gap = abs(result.objective - theory.objective) / abs(theory.objective)
    print(f"{strategy!r}, width {args.width}, X {X.shape}, Y {Y.shape}, {result.steps} steps")
    print(f"objective L + R: trained {result.objective:.8g}   closed form {theory.objective:.8g} "
          f"({theory.method})   relative gap {gap:.2e}")
    print("singular values of U V^T:")
    print(f"  {'trained':>12} {'theory':>12}")
    for a, b in zip(result.singular_values[:k], theory.singular_values[:k]):
        print(f"  {a:12.6f} {b:12.6f}")
    return 0


def _cmd_figures(args):
    import importlib
    import time
    from pathlib import Path

    import paper_figures

    names = args.only or list(paper_figures.FIGURES)
    unknown = [n for n in names if n not in paper_figures.FIGURES]
    if unknown:
        raise UserError(f"--only {unknown[0]!r} is not a figure; choose from {', '.join(paper_figures.FIGURES)}")
    out = Path(args.out) if args.out else Path(paper_figures.__file__).parent
    if args.device is not None:
        from .montecarlo import resolve_device

        resolve_device(args.device)
    for name in names:
        start = time.perf_counter()
        module = importlib.import_module(paper_figures.FIGURES[name])
        paths = module.make(out, quick=args.quick, device=args.device)
        print(f"{name:<20} {time.perf_counter() - start:7.1f} s  " + "  ".join(str(p) for p in paths), flush=True)
    return 0


def _build_parser():
    parser = _Parser(prog="pnd-theory", description="Closed-form theory of noise regularizers in linear networks.")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("verify", help="the penalty of every strategy by the symbolic, numeric, exact and Monte Carlo routes")
    _add_problem_options(p)
    p.add_argument("--p", type=float, default=0.3, help="drop probability (default: %(default)s)")
    p.add_argument("--samples", type=int, default=20000, help="Monte Carlo draws (default: %(default)s)")
    p.add_argument("--device", default=None, help="torch device for Monte Carlo (default: cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("derive", help="symbolic penalty of a strategy (pretty text and LaTeX)")
    _add_strategy_options(p)
    p.add_argument("--n-in", type=int, default=2)
    p.add_argument("--width", type=int, default=2)
    p.add_argument("--n-out", type=int, default=2)
    p.add_argument("--expanded", action="store_true", help="also print the expanded polynomial")
    p.set_defaults(func=_cmd_derive)

    p = sub.add_parser("penalty", help="closed-form penalty of given factors (.npy) or a random problem")
    _add_strategy_options(p)
    _add_problem_options(p, files=("U", "V", "X", "Y"))
    p.set_defaults(func=_cmd_penalty)

    p = sub.add_parser("minimize", help="closed-form (or convex) global minimizer of the expected loss")
    _add_strategy_options(p)
    _add_problem_options(p, width=8, n_in=4, n_out=3, n_samples=64, files=("X", "Y"))
    p.add_argument("--method", default="auto", choices=["auto", "closed_form", "convex", "numeric"],
                   help="how to minimize (default: %(default)s)")
    p.set_defaults(func=_cmd_minimize)

    p = sub.add_parser("train", help="Monte Carlo training with sampled masks, compared with the closed form")
    _add_strategy_options(p)
    _add_problem_options(p, width=8, n_in=4, n_out=3, n_samples=64, files=("X", "Y"))
    p.add_argument("--epochs", type=int, default=4000, help="passes over the data (default: %(default)s)")
    p.add_argument("--lr", type=float, default=0.002, help="peak learning rate (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=None, help="mini-batch size (default: the training default)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when present, else cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("figures", help="reproduce the analysis figures into paper_figures/")
    p.add_argument("--quick", action="store_true", help="small sizes: a few minutes on a laptop CPU")
    p.add_argument("--device", default=None, help="torch device for training (e.g. cuda)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these figures")
    p.add_argument("--out", metavar="DIR", help="write here instead of paper_figures/")
    p.set_defaults(func=_cmd_figures)

    p = sub.add_parser("sweep", help=sweep_cli.HELP, description=sweep_cli.HELP)
    sweep_cli.add_arguments(p)
    p.set_defaults(func=sweep_cli.run)
    return parser


def main(argv=None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ValueError, TypeError) as exc:
        if args.traceback:
            raise
        print(f"pnd-theory {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pnd-theory: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
