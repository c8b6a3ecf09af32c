"""The ``pnd-theory`` command (also ``python -m pnd_theory``).

Every subcommand uses the public API only, and every default is the API's own (read from the
signatures of :func:`pnd_theory.random_problem`, :func:`pnd_theory.train`,
:func:`pnd_theory.global_minimizer`, ... and of the strategy classes).

Exit codes: 0 on success; 1 when ``verify`` finds a disagreement; 2 with exactly one line on
stderr for a bad command line or bad input (never a traceback; ``--traceback`` shows it);
130 on Ctrl-C; 141 when the reader of the output goes away (``pnd-theory verify | head``),
quietly.

Strategy options
----------------
``--strategy NAME`` picks a strategy of :data:`pnd_theory.laws.strategies.STRATEGY_NAMES`; its
parameters are options named after the class's ``fields`` (``--p``, ``--block-size``,
``--layer``, ``--per-sample``, ``--stir``).  An option the strategy does not take is an error;
one not given takes the class's default.  ``--p`` takes one value per hidden unit for
``node-dropout``.

Data files
----------
``--U``, ``--V``, ``--X``, ``--Y`` and ``--A`` read ``.npy``, ``.npz`` or ``.csv``/``.txt``:

* ``.npz``: the array named like the option (``X`` for ``--X``), or ``FILE.npz:NAME`` for
  another name; an archive holding one array gives that one.
* CSV: comma-separated numbers, one matrix row per line (``.txt``: whitespace-separated); a
  first line that is not numeric is a header and is skipped.

Data are samples as columns, as everywhere in the package (``X`` is ``n_in x N``);
``--samples-as-rows`` reads ``X`` and ``Y`` as ``N x n_in`` and ``N x n_out`` (the layout of
scikit-learn and torch).  A command takes its problem either from files (all it needs) or
from the built-in random problem (:func:`pnd_theory.random_problem`), never a mixture: a
missing file is an error that names it, and the random problem's options are refused with
files.

JSON output
-----------
``--json`` prints one JSON object on stdout instead of the report (progress bars, if any, go
to stderr).  Every object has ``"command"``; the other keys are

* ``verify``: ``problem`` (sizes, correlation, seed), ``samples``, ``rows`` (each with
  ``strategy``, ``symbolic``, ``numeric``, ``exact``, ``monte_carlo``, ``monte_carlo_se``,
  ``agree``, ``skipped``: route -> reason, the route's value being ``null``), ``agreeing``,
  ``total``;
* ``derive``: ``strategy``, ``n_in``, ``width``, ``n_out``, ``compact`` (text or ``null``),
  ``latex``, ``rates`` (symbol -> value), ``strengths`` (``lambda`` symbol -> value) and,
  with ``--expanded``, ``expanded`` (sympy's string of the polynomial);
* ``penalty``: ``strategy``, ``source``, ``shapes``, ``plain_loss``, ``penalty``,
  ``expected_loss``;
* ``induced``: ``strategy``, ``width``, ``source``, ``induced_penalty`` (Theta(A)),
  ``balanced_penalty`` (R of the balanced factors), ``saved``;
* ``minimize``: ``strategy``, ``width``, ``source``, ``method``, ``objective``,
  ``data_fit``, ``penalty``, ``rank``, ``singular_values``, ``residual``, ``saved``;
* ``train``: ``strategy``, ``width``, ``source``, ``steps``, ``optimizer``, ``objective``,
  ``closed_form_objective``, ``closed_form_method``, ``relative_gap``,
  ``singular_values``, ``closed_form_singular_values``, ``saved``;
* ``gradient-noise``: ``strategy``, ``source``, ``batch_size``, ``method``,
  ``per_sample``, ``trace``, ``trace_U``, ``trace_V``, ``trace_per_sample``,
  ``trace_per_batch``;
* ``figures``: ``out``, ``quick``, ``figures`` (each ``name``, ``seconds``, ``paths``).

``--save FILE.npz`` (``induced``, ``minimize``, ``train``) writes the factors ``U``, ``V``,
their product ``A`` and its ``singular_values`` (``train`` adds ``history_step`` and
``history_objective``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import sympy

from .. import (STRATEGY_NAMES, __version__, balanced_factors, default_strategies, derive, expected_loss,
                expected_penalty, global_minimizer, gradient_noise, induced_penalty, plain_loss, random_problem,
                second_moment, strategy_from_name, train, verify)
from .._validation import InvalidParameterError, check_positive_int, resolve_device
from . import cli_sweep as sweep_cli

#: exit status when the reader of stdout closed the pipe (128 + SIGPIPE, as a shell reports it)
EXIT_CLOSED_PIPE = 141


class UserError(Exception):
    """A problem with the command line or the input files: reported in one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _defaults(function) -> dict:
    """The keyword defaults of ``function``: the one source of the command's defaults."""
    return {k: p.default for k, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def _positive_int(text):
    try:
        return check_positive_int("value", int(text))
    except (ValueError, InvalidParameterError):
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}") from None


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer; got {text!r}")
    return value


def _device(text):
    try:
        resolve_device(text, "device")
    except InvalidParameterError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


# --------------------------------------------------------------------------- strategy options

def _strategy_fields() -> dict:
    """Field -> ``(strategy names having it, their defaults)``, from the classes' ``fields``."""
    table = {}
    for name, cls in STRATEGY_NAMES.items():
        signature = inspect.signature(cls).parameters
        for f in cls.fields:
            names, defaults = table.setdefault(f, ([], []))
            names.append(name)
            defaults.append(signature[f].default)
    return table


def _add_strategy_options(parser, default="dropout"):
    g = parser.add_argument_group("strategy", "parameters not given take the strategy's own default")
    g.add_argument("--strategy", default=default, choices=list(STRATEGY_NAMES),
                   help="noise strategy (default: %(default)s)")
    for f, (names, defaults) in _strategy_fields().items():
        where = ", ".join(names)
        shown = ", ".join(sorted({repr(d) for d in defaults}))
        help_text = f"{f} of {where} (default: {shown})"
        if all(isinstance(d, bool) for d in defaults):
            g.add_argument(_option(f), dest=f, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif any(isinstance(d, (tuple, list)) for d in defaults):
            g.add_argument(_option(f), dest=f, type=float, nargs="+", default=None,
                           help=help_text + "; several values for a per-unit parameter")
        else:
            g.add_argument(_option(f), dest=f, type=type(defaults[0]), default=None, help=help_text)


def _strategy(args):
    name = args.strategy
    cls = STRATEGY_NAMES[name]
    signature = inspect.signature(cls).parameters
    given = {f: getattr(args, f) for f in _strategy_fields() if getattr(args, f, None) is not None}
    stray = [f for f in given if f not in cls.fields]
    if stray:
        takes = ", ".join(_option(f) for f in cls.fields)
        raise UserError(f"{_option(stray[0])} does not apply to --strategy {name}; it takes {takes}")
    for f, value in given.items():
        if isinstance(value, list):
            if isinstance(signature[f].default, (tuple, list)):
                given[f] = tuple(value)
            elif len(value) == 1:
                given[f] = value[0]
            else:
                raise UserError(f"{_option(f)} takes one value for --strategy {name}; got {len(value)}")
    return strategy_from_name(name, **given)


# --------------------------------------------------------------------------- problem and files

_PROBLEM = _defaults(random_problem)


def _add_problem_options(parser, files=(), model_width=False):
    g = parser.add_argument_group(
        "problem", "the built-in random problem (pnd_theory.random_problem), or files: "
        f"{', '.join(_option(f)[2:] for f in files) or 'none'} (never a mixture)")
    for name in ("n_in", "width", "n_out", "n_samples"):
        g.add_argument(_option(name), dest=name, type=_positive_int, default=None,
                       help=f"random problem's {name} (default: {_PROBLEM[name]})"
                       + ("; also the model's width with files" if name == "width" and model_width else ""))
    g.add_argument("--correlation", type=float, default=None,
                   help=f"input correlation of the random problem (default: {_PROBLEM['correlation']})")
    g.add_argument("--seed", type=_seed, default=None, help=f"random seed (default: {_PROBLEM['seed']})")
    for name in files:
        g.add_argument(f"--{name}", metavar="FILE", help=f"{name} from a .npy, .npz[:NAME] or .csv file")
    if files:
        g.add_argument("--samples-as-rows", action="store_true",
                       help="X and Y files hold one sample per row (N x n_in); the default is one per column")


def _value(args, name):
    value = getattr(args, name, None)
    return _PROBLEM[name] if value is None else value


def _load(spec, name, samples_as_rows):
    path, key = spec, None
    head, sep, tail = spec.rpartition(":")
    if sep and head.lower().endswith(".npz"):
        path, key = head, tail
    where = f"--{name} {path!r}"
    if not os.path.isfile(path):
        raise UserError(f"{where}: no such file")
    suffix = Path(path).suffix.lower()
    try:
        if suffix in (".csv", ".txt", ".tsv"):
            array = _load_text(path, {".csv": ",", ".tsv": "\t"}.get(suffix))
        else:
            array = np.load(path, allow_pickle=False)
            if isinstance(array, np.lib.npyio.NpzFile):
                with array:
                    names = list(array.files)
                    pick = key or (name if name in names else (names[0] if len(names) == 1 else None))
                    if pick not in names:
                        raise UserError(f"{where} has no array named {key or name!r}; it holds "
                                        f"{', '.join(names) or 'none'} (pick one with {path}:NAME)")
                    array = array[pick]
            elif key is not None:
                raise UserError(f"{where}: a :NAME applies to .npz archives only")
    except (OSError, ValueError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot read {where} (.npy, .npz or .csv): {reason}") from None
    if array.dtype.kind not in "biuf":
        raise UserError(f"{where} must hold real numbers; got dtype {array.dtype}")
    if array.ndim != 2:
        raise UserError(f"{where} must hold a 2-D array; got shape {array.shape}")
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise UserError(f"{where} has non-finite entries (nan or inf)")
    # squares of the entries, summed over the array, must stay finite in float64
    limit = np.sqrt(np.finfo(np.float64).max / max(array.size, 1)) / 16
    largest = float(np.abs(array).max(initial=0.0))
    if largest > limit:
        raise UserError(f"{where} has entries up to {largest:.3g}, too large for float64 sums of squares "
                        f"(at most {limit:.3g} here); rescale the data")
    if samples_as_rows and name in ("X", "Y"):
        array = array.T
    return array


def _load_text(path, delimiter):
    with open(path, encoding="utf-8") as handle:
        first = handle.readline()
    try:
        np.array([float(v) for v in (first.split(delimiter) if delimiter else first.split()) if v.strip()])
        skip = 0
    except ValueError:
        skip = 1
    return np.loadtxt(path, delimiter=delimiter, skiprows=skip, ndmin=2)


def _problem(args, needs, random_only):
    """``(arrays, source)``: ``needs`` (names among U, V, X, Y, A) from files or the random problem."""
    given = [n for n in needs if getattr(args, n, None) is not None]
    extra = [n for n in ("U", "V", "X", "Y", "A") if n not in needs and getattr(args, n, None) is not None]
    if extra:
        raise UserError(f"--{extra[0]} does not apply here without {' '.join('--' + n for n in needs)}")
    if given:
        missing = [n for n in needs if n not in given]
        if missing:
            raise UserError(f"{args.command} on files needs {' '.join('--' + n for n in needs)}; missing "
                            f"{', '.join('--' + n for n in missing)} (files are never mixed with the random problem)")
        stray = [n for n in random_only if getattr(args, n, None) is not None]
        if stray:
            raise UserError(f"{_option(stray[0])} applies to the built-in random problem, not to files")
        arrays = {n: _load(getattr(args, n), n, args.samples_as_rows) for n in needs}
        return arrays, "files " + ", ".join(f"{n}={getattr(args, n)}" for n in needs)
    if getattr(args, "samples_as_rows", False):
        raise UserError("--samples-as-rows applies to files only")
    U, V, X, Y = _random_problem(args)
    arrays = {"U": U, "V": V, "X": X, "Y": Y, "A": U @ V.T}
    return {n: arrays[n] for n in needs}, "the built-in random problem"


def _random_problem(args):
    """The built-in random problem, refused when its data overflow float64 (a huge --correlation)."""
    U, V, X, Y = random_problem(*(_value(args, k) for k in ("n_in", "width", "n_out", "n_samples", "correlation", "seed")))
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(X @ X.T).all() and np.isfinite(Y @ Y.T).all()
    if not finite:
        raise UserError(f"--correlation {_value(args, 'correlation')!r} makes the random problem's inputs overflow "
                        "float64; use a moderate correlation")
    return U, V, X, Y


def _check_save(args):
    """Refuse an unwritable ``--save`` before a long computation."""
    if getattr(args, "save", None) is None:
        return None
    path = Path(args.save)
    if path.suffix.lower() != ".npz":
        raise UserError(f"--save {args.save!r} must name a .npz file")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UserError(f"--save {args.save!r}: the folder {str(folder)!r} does not exist or is not writable")
    return path


def _save(path, **arrays):
    if path is None:
        return None
    try:
        np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})
    except OSError as exc:
        raise UserError(f"--save {str(path)!r}: {exc.strerror or exc}") from None
    return str(path)


def _emit(args, data, lines):
    if args.json:
        print(json.dumps({"command": args.command, **data}, indent=2))
    else:
        print("\n".join(lines))


# --------------------------------------------------------------------------- subcommands

def _cmd_verify(args):
    sizes = {k: _value(args, k) for k in ("n_in", "width", "n_out", "n_samples", "correlation", "seed")}
    strategies = default_strategies(sizes["width"], args.p)
    U, V, X, Y = _random_problem(args)
    rows = verify(strategies, U, V, X, Y, samples=args.samples, seed=sizes["seed"], device=args.device,
                  progress=not args.no_progress)
    bad = [r for r in rows if not r.agree]

    def num(v, width=12):
        return f"{'—':>{width}}" if v is None else f"{v:{width}.8f}"

    header = f"{'strategy':<52} {'symbolic':>12} {'numeric':>12} {'exact':>12} {'monte carlo':>20}  agree"
    lines = [f"penalty R(U, V) by four routes; n_in={sizes['n_in']} width={sizes['width']} n_out={sizes['n_out']} "
             f"N={sizes['n_samples']}, correlated inputs, {args.samples} Monte Carlo draws", header, "-" * len(header)]
    notes = []
    for r in rows:
        mark = ""
        if r.skipped:
            notes.append(r.skipped)
            mark = f" [{len(notes)}]"
        mc = f"{r.monte_carlo:.5f}±{r.monte_carlo_se:.5f}"
        lines.append(f"{repr(r.strategy)[:52]:<52} {num(r.symbolic)} {num(r.numeric)} {num(r.exact)} {mc:>20}  "
                     f"{'yes' if r.agree else 'NO'}{mark}")
    lines.append(f"{len(rows) - len(bad)} of {len(rows)} strategies agree (deterministic routes to "
                 f"{rows[0].rtol:g} relative, Monte Carlo within {rows[0].mc_sigmas:g} standard errors)")
    for k, skipped in enumerate(notes, 1):
        for route, reason in skipped.items():
            lines.append(f"[{k}] no {route} value: {reason}")
    data = {"problem": sizes, "samples": args.samples, "rows": [
        {"strategy": repr(r.strategy), "symbolic": r.symbolic, "numeric": r.numeric, "exact": r.exact,
         "monte_carlo": r.monte_carlo, "monte_carlo_se": r.monte_carlo_se, "agree": r.agree, "skipped": r.skipped}
        for r in rows], "agreeing": len(rows) - len(bad), "total": len(rows)}
    _emit(args, data, lines)
    return 1 if bad else 0


def _cmd_derive(args):
    strategy = _strategy(args)
    sizes = {k: _value(args, k) for k in ("n_in", "width", "n_out")}
    derivation = derive(strategy, **sizes)
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
    _emit(args, data, lines)
    return 0


def _cmd_penalty(args):
    strategy = _strategy(args)
    arrays, source = _problem(args, ("U", "V", "X", "Y"), ("n_in", "width", "n_out", "n_samples", "correlation", "seed"))
    U, V, X, Y = (arrays[k] for k in "UVXY")
    values = {"plain_loss": plain_loss(U, V, X, Y), "penalty": expected_penalty(strategy, U, V, second_moment(X)),
              "expected_loss": expected_loss(strategy, U, V, X, Y)}
    shapes = {k: list(a.shape) for k, a in arrays.items()}
    lines = [f"{strategy!r} on {source}: U {U.shape}, V {V.shape}, X {X.shape}, Y {Y.shape}"]
    for label, key in (("plain loss     L(U, V)", "plain_loss"), ("penalty        R(U, V)", "penalty"),
                       ("expected loss  L + R   ", "expected_loss")):
        lines.append(f"{label} = {values[key]:.10g}")
    _emit(args, {"strategy": repr(strategy), "source": source, "shapes": shapes, **values}, lines)
    return 0


def _cmd_induced(args):
    strategy = _strategy(args)
    save = _check_save(args)
    if args.A is not None:
        needs = ("A", "X") if args.X is not None else ("A",)
        arrays, source = _problem(args, needs, ("n_in", "n_out", "n_samples", "correlation", "seed"))
    else:
        arrays, source = _problem(args, ("A", "X"), ())
    A = arrays["A"]
    S = second_moment(arrays["X"]) if "X" in arrays else None
    width = _value(args, "width")
    theta = induced_penalty(strategy, A, width, second_moment=S)
    U, V = balanced_factors(strategy, A, width, second_moment=S)
    balanced = expected_penalty(strategy, U, V, S)
    saved = _save(save, U=U, V=V, A=A, singular_values=np.linalg.svd(A, compute_uv=False))
    lines = [f"{strategy!r}, width {width}, on {source}: A {A.shape}"
             + ("" if S is not None else ", S = I (no --X)"),
             f"induced regularizer  Theta(A)            = {theta:.10g}",
             f"penalty of the balanced factors R(U, V)  = {balanced:.10g}"] + ([f"saved {saved}"] if saved else [])
    _emit(args, {"strategy": repr(strategy), "width": width, "source": source, "induced_penalty": theta,
                 "balanced_penalty": balanced, "saved": saved}, lines)
    return 0


def _cmd_minimize(args):
    strategy = _strategy(args)
    save = _check_save(args)
    arrays, source = _problem(args, ("X", "Y"), ("n_in", "n_out", "n_samples", "correlation", "seed"))
    X, Y = arrays["X"], arrays["Y"]
    width = _value(args, "width")
    result = global_minimizer(strategy, X, Y, width, method=args.method)
    saved = None
    if save is not None:
        U, V = result.factors()
        saved = _save(save, U=U, V=V, A=result.product, singular_values=result.singular_values)
    lines = [f"{strategy!r}, width {width}, on {source}: X {X.shape}, Y {Y.shape}", result.summary()]
    lines += [f"saved {saved}"] if saved else []
    _emit(args, {"strategy": repr(strategy), "width": width, "source": source, "method": result.method,
                 "objective": result.objective, "data_fit": result.data_fit, "penalty": result.penalty,
                 "rank": result.rank, "singular_values": result.singular_values.tolist(),
                 "residual": result.residual, "saved": saved}, lines)
    return 0


def _cmd_train(args):
    strategy = _strategy(args)
    save = _check_save(args)
    arrays, source = _problem(args, ("X", "Y"), ("n_in", "n_out", "n_samples", "correlation"))
    X, Y = arrays["X"], arrays["Y"]
    width = _value(args, "width")
    seed = _value(args, "seed")
    theory = global_minimizer(strategy, X, Y, width)
    result = train(strategy, X, Y, width, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                   seed=seed, device=args.device, progress=not args.no_progress, threads=args.threads)
    k = min(len(theory.singular_values), len(result.singular_values))
    gap = abs(result.objective - theory.objective) / abs(theory.objective)
    saved = _save(save, U=result.U, V=result.V, A=result.product, singular_values=result.singular_values,
                  history_step=result.history.step, history_objective=result.history.objective)
    optimizer = _defaults(train)["optimizer"]
    lines = [f"{strategy!r}, width {width}, X {X.shape}, Y {Y.shape}, {result.steps} steps of {optimizer}",
             f"objective L + R: trained {result.objective:.8g}   closed form {theory.objective:.8g} "
             f"({theory.method})   relative gap {gap:.2e}", "singular values of U V^T:",
             f"  {'trained':>12} {'theory':>12}"]
    lines += [f"  {a:12.6f} {b:12.6f}" for a, b in zip(result.singular_values[:k], theory.singular_values[:k])]
    lines += [f"saved {saved}"] if saved else []
    _emit(args, {"strategy": repr(strategy), "width": width, "source": source, "steps": result.steps,
                 "optimizer": optimizer, "objective": result.objective,
                 "closed_form_objective": theory.objective, "closed_form_method": theory.method,
                 "relative_gap": gap, "singular_values": result.singular_values.tolist(),
                 "closed_form_singular_values": theory.singular_values.tolist(), "saved": saved}, lines)
    return 0


def _cmd_gradient_noise(args):
    strategy = _strategy(args)
    arrays, source = _problem(args, ("U", "V", "X", "Y"), ("n_in", "width", "n_out", "n_samples", "correlation", "seed"))
    U, V, X, Y = (arrays[k] for k in "UVXY")
    res = gradient_noise(strategy, U, V, X, Y, method=args.method)
    keys = ("trace", "trace_U", "trace_V", "trace_per_sample", "trace_per_batch")
    values = {k: None if getattr(res, k) is None else float(getattr(res, k)) for k in keys}
    lines = [f"{strategy!r} on {source}: a batch of B = {res.batch_size} samples ({res.method}), masks "
             + ("per sample" if res.per_sample else "shared by the batch"),
             f"trace of the mask-induced gradient covariance  tr Cov[g] = {values['trace']:.8g}",
             f"  from U: {values['trace_U']:.8g}   from V: {values['trace_V']:.8g}",
             f"  if drawn per sample: {values['trace_per_sample']:.8g}"
             + ("" if values["trace_per_batch"] is None else f"   if shared by the batch: {values['trace_per_batch']:.8g}")]
    _emit(args, {"strategy": repr(strategy), "source": source, "batch_size": res.batch_size, "method": res.method,
                 "per_sample": res.per_sample, **values}, lines)
    return 0


def _cmd_figures(args):
    import paper_figures  # the figure scripts sit above the package and import it

    names = args.only or list(paper_figures.FIGURES)
    unknown = [n for n in names if n not in paper_figures.FIGURES]
    if unknown:
        raise UserError(f"--only {unknown[0]!r} is not a figure; choose from {', '.join(paper_figures.FIGURES)}")
    out = Path(args.out) if args.out else Path(paper_figures.__file__).parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {str(out)!r}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK):
        raise UserError(f"--out {str(out)!r}: the folder is not writable")
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
        _emit(args, {"out": str(out), "quick": args.quick, "figures": done}, [])
    return 0


def _build_parser():
    parser = _Parser(prog="pnd-theory", description="Closed-form theory of noise regularizers in linear networks.",
                     epilog="Exit codes: 0 success, 1 verify disagreed, 2 bad arguments or input (one line), "
                            "141 output pipe closed.")
    parser.add_argument("--version", action="version", version=f"pnd-theory {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="print one JSON object (keys: pnd_theory.apps.cli docstring)")
        p.set_defaults(func=func)
        return p

    def progress(p):
        p.add_argument("--no-progress", action="store_true", help="no progress bar")

    def save(p, what):
        p.add_argument("--save", metavar="FILE.npz", help=f"write {what} (U, V, A, singular_values) to FILE.npz")

    p = command("verify", _cmd_verify, "the penalty of every strategy by the symbolic, numeric, exact and Monte Carlo routes")
    _add_problem_options(p)
    p.add_argument("--p", type=float, default=_defaults(default_strategies)["p"],
                   help="drop probability of every strategy (default: %(default)s)")
    p.add_argument("--samples", type=_positive_int, default=_defaults(verify)["samples"],
                   help="Monte Carlo draws (default: %(default)s)")
    p.add_argument("--device", type=_device, default=None, help="torch device for Monte Carlo (default: cpu)")
    progress(p)

    p = command("derive", _cmd_derive, "symbolic penalty of a strategy (text and LaTeX)")
    _add_strategy_options(p)
    for name in ("n_in", "width", "n_out"):
        p.add_argument(_option(name), dest=name, type=_positive_int, default=None, help=f"(default: {_PROBLEM[name]})")
    p.add_argument("--expanded", action="store_true", help="also print the expanded polynomial")

    p = command("penalty", _cmd_penalty, "closed-form penalty of given factors and data, or of the random problem")
    _add_strategy_options(p)
    _add_problem_options(p, files=("U", "V", "X", "Y"))

    p = command("induced", _cmd_induced, "induced regularizer Theta(A) of a product A and its balanced factors")
    _add_strategy_options(p)
    _add_problem_options(p, files=("A", "X"), model_width=True)
    save(p, "the balanced factors")

    p = command("minimize", _cmd_minimize, "closed-form (or convex) global minimizer of the expected loss")
    _add_strategy_options(p)
    _add_problem_options(p, files=("X", "Y"), model_width=True)
    p.add_argument("--method", default=_defaults(global_minimizer)["method"],
                   choices=["auto", "closed_form", "convex", "numeric"], help="how to minimize (default: %(default)s)")
    save(p, "the minimizer's factors")

    trained = _defaults(train)
    p = command("train", _cmd_train, "Monte Carlo training with sampled masks, compared with the closed form")
    _add_strategy_options(p)
    _add_problem_options(p, files=("X", "Y"), model_width=True)
    p.add_argument("--epochs", type=_positive_int, default=trained["epochs"], help="passes over the data (default: %(default)s)")
    p.add_argument("--lr", type=float, default=trained["lr"], help="peak learning rate (default: %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=trained["batch_size"],
                   help="mini-batch size (default: the full data set)")
    p.add_argument("--device", type=_device, default=trained["device"], help="torch device (default: cuda when present, else cpu)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="CPU threads (default: one for small problems, else torch's count)")
    progress(p)
    save(p, "the trained factors and the history")

    p = command("gradient-noise", _cmd_gradient_noise,
                "mask-induced covariance trace of the mini-batch gradient (the data as one batch)")
    _add_strategy_options(p)
    _add_problem_options(p, files=("U", "V", "X", "Y"))
    p.add_argument("--method", default=_defaults(gradient_noise)["method"],
                   choices=["auto", "closed_form", "enumeration"], help="route (default: %(default)s)")

    p = command("figures", _cmd_figures, "reproduce the analysis figures into paper_figures/")
    p.add_argument("--quick", action="store_true", help="small sizes: a few minutes on a laptop CPU")
    p.add_argument("--device", type=_device, default=None, help="torch device for training (e.g. cuda)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these figures")
    p.add_argument("--out", metavar="DIR", help="write here instead of paper_figures/")

    p = sub.add_parser("sweep", help=sweep_cli.HELP, description=sweep_cli.HELP)
    sweep_cli.add_arguments(p)
    p.set_defaults(func=sweep_cli.run)
    return parser


def _run(args):
    """Run the command; warnings are held back and shown only when it succeeds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        status = args.func(args)
    for w in caught:
        sys.stderr.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
    return status


def main(argv=None) -> int:
    try:
        parser = _build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error already reported
            return exc.code
        try:
            return _run(args)
        except BrokenPipeError:
            raise
        except (UserError, InvalidParameterError, ValueError, TypeError, OSError, ArithmeticError) as exc:
            if args.traceback:
                raise
            message = " ".join(str(exc).split()) or type(exc).__name__
            print(f"pnd-theory {args.command}: error: {message}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print("pnd-theory: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (``| head``): no traceback, and no second error when Python
        # flushes stdout at exit
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CLOSED_PIPE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
