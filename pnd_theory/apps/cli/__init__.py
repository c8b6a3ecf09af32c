"""The ``pnd-theory`` command (also ``python -m pnd_theory``).

Every subcommand uses the public API only, and every default is the API's own (read from the
signatures of :func:`pnd_theory.random_problem`, :func:`pnd_theory.train`,
:func:`pnd_theory.global_minimizer`, ... and of the strategy classes).  Each subcommand is a
module of this package with the same small interface: ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args)`` (its exit status); the shared options, file
reading and output are in ``_common``.

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
  ``expected_loss`` (the two losses ``null`` on files without ``--Y``);
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

import os
import sys
import warnings

import pnd_theory as pt

from ... import __version__
from . import _common, derive, figures, gradient_noise, induced, minimize, penalty, sweep, train, verify

#: the subcommands, in the order ``pnd-theory --help`` lists them
COMMANDS = (verify, derive, penalty, induced, minimize, train, gradient_noise, figures, sweep)

#: exit status when the reader of stdout closed the pipe (128 + SIGPIPE, as a shell reports it)
EXIT_CLOSED_PIPE = 141

UserError = _common.UserError


def _build_parser(command=None):
    """The parser of ``pnd-theory``: one subparser per module of :data:`COMMANDS`.

    With ``command`` (a name, ``""`` for none) only that subcommand gets its options; the others
    are listed by name and help alone.  Options read their defaults from the API's signatures, which loads
    the modules behind them, so ``pnd-theory --help`` and ``--version`` build none.
    """
    parser = _common.Parser(prog="pnd-theory", description="Closed-form theory of noise regularizers in linear networks.",
                            epilog="Exit codes: 0 success, 1 verify disagreed, 2 bad arguments or input (one line), "
                                   "141 output pipe closed.")
    parser.add_argument("--version", action="version", version=f"pnd-theory {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_common.Parser)
    for module in COMMANDS:
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        if command is None or command == module.NAME:
            module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def _command_of(argv):
    """The subcommand ``argv`` names: its first word that is not an option (``None`` if none)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _run(args):
    """Run the command; warnings are held back and shown only when it succeeds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        status = args.func(args)
    for w in caught:
        sys.stderr.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
    return status


def main(argv=None) -> int:
    """Run ``pnd-theory`` on ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = _build_parser(_command_of(argv) or "")
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, or a usage error already reported
            return exc.code
        try:
            return _run(args)
        except BrokenPipeError:
            raise
        except MemoryError as exc:
            if args.traceback:
                raise
            print(f"pnd-theory {args.command}: error: not enough memory for this problem "
                  f"({' '.join(str(exc).split()) or 'MemoryError'}); try smaller sizes", file=sys.stderr)
            return 2
        except (UserError, pt.InvalidParameterError, ValueError, TypeError, OSError, ArithmeticError) as exc:
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
