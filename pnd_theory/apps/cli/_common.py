"""What the subcommands of ``pnd-theory`` share: the one-line error, argument types, the strategy
and problem options, reading data files, and the ``--json``/``--save`` output.

Every default is the API's own, read from the signatures of the public functions and the
strategy classes (:func:`defaults`), so the command line never restates one.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
from pathlib import Path

import numpy as np

import pnd_theory as pt


class UserError(Exception):
    """A problem with the command line or the input files: reported in one line, exit 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage error is one line: ``pnd-theory CMD: error: ...``."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def defaults(function) -> dict:
    """The keyword defaults of ``function``: the one source of the command's defaults."""
    return {k: p.default for k, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def option(name: str) -> str:
    """The option spelling of a parameter name: ``n_in`` -> ``--n-in``."""
    return "--" + name.replace("_", "-")


def positive_int(text):
    """Argument type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer; got {text!r}")
    return value


def seed(text):
    """Argument type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer; got {text!r}")
    return value


def device(text):
    """Argument type: a torch device that is present (``cpu``, ``cuda``, ``cuda:N``); torch is
    loaded only to ask for CUDA, so that parsing stays fast."""
    kind, colon, index = text.partition(":")
    if kind not in ("cpu", "cuda") or (colon and not index.isdigit()):
        raise argparse.ArgumentTypeError(f'device must be "cpu", "cuda" or "cuda:N"; got {text!r}')
    if kind == "cuda":
        import torch  # only for a CUDA device: the one question parsing cannot answer without it

        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(
                f"device must be a present device; got {text!r} but no CUDA device is available "
                "(torch.cuda.is_available() is False)")
        if index and int(index) >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"device must be a CUDA index below {torch.cuda.device_count()}; "
                                             f"got {text!r}")
    return text


def add_json(parser):
    """``--json``: one JSON object on stdout instead of the report."""
    parser.add_argument("--json", action="store_true", help="print one JSON object (keys: pnd_theory.apps.cli docstring)")


def add_progress(parser):
    """``--no-progress``."""
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_save(parser, what):
    """``--save FILE.npz``: the factors (``U``, ``V``), their product and its singular values."""
    parser.add_argument("--save", metavar="FILE.npz", help=f"write {what} (U, V, A, singular_values) to FILE.npz")


# --------------------------------------------------------------------------- strategy options

def strategy_fields() -> dict:
    """Field -> ``(strategy names having it, their defaults)``, from the classes' ``fields``."""
    table = {}
    for name, cls in pt.STRATEGY_NAMES.items():
        signature = inspect.signature(cls).parameters
        for f in cls.fields:
            names, values = table.setdefault(f, ([], []))
            names.append(name)
            values.append(signature[f].default)
    return table


def add_strategy_options(parser, default="dropout"):
    """``--strategy NAME`` and one option per field of the strategy classes."""
    g = parser.add_argument_group("strategy", "parameters not given take the strategy's own default")
    g.add_argument("--strategy", default=default, choices=list(pt.STRATEGY_NAMES),
                   help="noise strategy (default: %(default)s)")
    for f, (names, values) in strategy_fields().items():
        help_text = f"{f} of " + "; ".join(f"{', '.join(n for n, d in zip(names, values) if _shown(d) == shown)} "
                                            f"(default: {shown})" for shown in dict.fromkeys(map(_shown, values)))
        if all(isinstance(d, bool) for d in values):
            g.add_argument(option(f), dest=f, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif any(isinstance(d, (tuple, list)) for d in values):
            g.add_argument(option(f), dest=f, type=float, nargs="+", default=None, help=help_text)
        else:
            g.add_argument(option(f), dest=f, type=type(values[0]), default=None, help=help_text)


def _shown(default):
    """A strategy default as the help text shows it: ``0.5``, ``output``, or a per-unit tuple."""
    if isinstance(default, (tuple, list)):
        return " ".join(map(str, default)) + ", one value per hidden unit"
    return str(default)


def strategy(args):
    """The strategy the options name, its parameters not given at the class's defaults."""
    name = args.strategy
    cls = pt.STRATEGY_NAMES[name]
    signature = inspect.signature(cls).parameters
    given = {f: getattr(args, f) for f in strategy_fields() if getattr(args, f, None) is not None}
    stray = [f for f in given if f not in cls.fields]
    if stray:
        takes = ", ".join(option(f) for f in cls.fields)
        raise UserError(f"{option(stray[0])} does not apply to --strategy {name}; it takes {takes}")
    for f, value in given.items():
        if isinstance(value, list):
            if isinstance(signature[f].default, (tuple, list)):
                given[f] = tuple(value)
            elif len(value) == 1:
                given[f] = value[0]
            else:
                raise UserError(f"{option(f)} takes one value for --strategy {name}; got {len(value)}")
    return pt.strategy_from_name(name, **given)


# --------------------------------------------------------------------------- problem and files

def problem_defaults() -> dict:
    """The defaults of :func:`pnd_theory.random_problem`."""
    return defaults(pt.random_problem)


def add_problem_options(parser, files=(), model_width=False):
    """The random problem's sizes, correlation and seed, and the data files ``files``."""
    problem = problem_defaults()
    g = parser.add_argument_group(
        "problem", "the built-in random problem (pnd_theory.random_problem), or files: "
        f"{', '.join(option(f)[2:] for f in files) or 'none'} (never a mixture)")
    for name in ("n_in", "width", "n_out", "n_samples"):
        g.add_argument(option(name), dest=name, type=positive_int, default=None,
                       help=f"random problem's {name} (default: {problem[name]})"
                       + ("; also the model's width with files" if name == "width" and model_width else ""))
    g.add_argument("--correlation", type=float, default=None,
                   help=f"input correlation of the random problem (default: {problem['correlation']})")
    g.add_argument("--seed", type=seed, default=None, help=f"random seed (default: {problem['seed']})")
    for name in files:
        g.add_argument(f"--{name}", metavar="FILE", help=f"{name} from a .npy, .npz[:NAME] or .csv file")
    if files:
        g.add_argument("--samples-as-rows", action="store_true",
                       help="X and Y files hold one sample per row (N x n_in); the default is one per column")


def value(args, name):
    """The option ``name``, or the random problem's default when it was not given."""
    given = getattr(args, name, None)
    return problem_defaults()[name] if given is None else given


def load(spec, name, samples_as_rows):
    """The 2-D float64 array of ``--name spec`` (``.npy``, ``.npz[:NAME]``, ``.csv``, ``.txt``)."""
    path, key = spec, None
    head, sep, tail = spec.rpartition(":")
    if sep and head.lower().endswith(".npz"):
        path, key = head, tail
    where = f"--{name} {path!r}"
    if os.path.isdir(path):
        raise UserError(f"{where} is a folder; give a .npy, .npz or .csv file")
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
    if array.size == 0:
        raise UserError(f"{where} holds no numbers (an empty file or array)")
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


def problem(args, needs, random_only):
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
            raise UserError(f"{option(stray[0])} applies to the built-in random problem, not to files")
        arrays = {n: load(getattr(args, n), n, args.samples_as_rows) for n in needs}
        _check_layout(arrays, args.samples_as_rows)
        return arrays, "files " + ", ".join(f"{n}={getattr(args, n)}" for n in needs)
    if getattr(args, "samples_as_rows", False):
        raise UserError("--samples-as-rows applies to files only")
    U, V, X, Y = random_problem(args)
    arrays = {"U": U, "V": V, "X": X, "Y": Y, "A": U @ V.T}
    return {n: arrays[n] for n in needs}, "the built-in random problem"


def _check_layout(arrays, samples_as_rows):
    """Refuse data files whose shapes fit only in the other layout, with the flag that reads them.

    In the package's layout ``X`` is ``n_in x N`` and ``Y`` is ``n_out x N``; ``V`` (``n_in x
    width``) and ``A`` (``n_out x n_in``) fix ``n_in``.  When the shapes disagree as read but
    agree with ``X`` and ``Y`` transposed, the files hold the other layout.
    """
    X, Y = arrays.get("X"), arrays.get("Y")
    if X is None:
        return

    def fits(X, Y):
        n_in = [arrays["V"].shape[0]] if "V" in arrays else []
        n_in += [arrays["A"].shape[1]] if "A" in arrays else []
        return all(n == X.shape[0] for n in n_in) and (Y is None or Y.shape[1] == X.shape[1])

    if not fits(X, Y) and fits(X.T, None if Y is None else Y.T):
        shapes = ", ".join(f"{n} {arrays[n].shape}" for n in ("U", "V", "A", "X", "Y") if n in arrays)
        fix = ("drop --samples-as-rows: they hold one sample per column" if samples_as_rows else
               "add --samples-as-rows: they hold one sample per row (N x n_in, as in scikit-learn and torch)")
        raise UserError(f"the files do not fit as read ({shapes}); {fix}")


def random_problem(args):
    """The built-in random problem, refused when its data overflow float64 (a huge --correlation)."""
    U, V, X, Y = pt.random_problem(*(value(args, k) for k in ("n_in", "width", "n_out", "n_samples", "correlation", "seed")))
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(X @ X.T).all() and np.isfinite(Y @ Y.T).all()
    if not finite:
        raise UserError(f"--correlation {value(args, 'correlation')!r} makes the random problem's inputs overflow "
                        "float64; use a moderate correlation")
    return U, V, X, Y


def check_save(args):
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


def save(path, **arrays):
    """Write ``arrays`` to ``path`` (``None``: nothing); the path written, as text."""
    if path is None:
        return None
    try:
        np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})
    except OSError as exc:
        raise UserError(f"--save {str(path)!r}: {exc.strerror or exc}") from None
    return str(path)


def emit(args, data, lines):
    """Print ``lines``, or with ``--json`` the object ``{"command": ..., **data}``."""
    if args.json:
        print(json.dumps({"command": args.command, **data}, indent=2))
    else:
        print("\n".join(lines))
