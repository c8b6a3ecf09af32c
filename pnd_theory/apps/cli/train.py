"""``pnd-theory train``: Monte Carlo training with sampled masks (:func:`pnd_theory.train`),
compared with the closed-form minimizer (:func:`pnd_theory.global_minimizer`)."""

from __future__ import annotations

import pnd_theory as pt

from . import _common as c

NAME = "train"
HELP = "Monte Carlo training with sampled masks, compared with the closed form"


def add_arguments(parser):
    """The strategy, ``--X --Y`` files or the random problem, the optimizer's options, ``--save``."""
    c.add_json(parser)
    c.add_strategy_options(parser)
    c.add_problem_options(parser, files=("X", "Y"), model_width=True)
    trained = c.defaults(pt.train)
    parser.add_argument("--epochs", type=c.positive_int, default=trained["epochs"],
                        help="passes over the data (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=trained["lr"], help="peak learning rate (default: %(default)s)")
    parser.add_argument("--batch-size", type=c.positive_int, default=trained["batch_size"],
                        help="mini-batch size (default: the full data set)")
    parser.add_argument("--device", type=c.device, default=trained["device"],
                        help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--threads", type=c.positive_int, default=None,
                        help="CPU threads (default: one for small problems, else torch's count)")
    c.add_progress(parser)
    c.add_save(parser, "the trained factors and the history")


def run(args) -> int:
    """Print the trained and the closed-form objective and singular values side by side."""
    strategy = c.strategy(args)
    save = c.check_save(args)
    arrays, source = c.problem(args, ("X", "Y"), ("n_in", "n_out", "n_samples", "correlation"))
    X, Y = arrays["X"], arrays["Y"]
    width = c.value(args, "width")
    seed = c.value(args, "seed")
    theory = pt.global_minimizer(strategy, X, Y, width)
    result = pt.train(strategy, X, Y, width, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                      seed=seed, device=args.device, progress=not args.no_progress, threads=args.threads)
    k = min(len(theory.singular_values), len(result.singular_values))
    gap = abs(result.objective - theory.objective) / abs(theory.objective)
    saved = c.save(save, U=result.U, V=result.V, A=result.product, singular_values=result.singular_values,
                   history_step=result.history.step, history_objective=result.history.objective)
    optimizer = c.defaults(pt.train)["optimizer"]
    lines = [f"{strategy!r}, width {width}, X {X.shape}, Y {Y.shape}, {result.steps} steps of {optimizer}",
             f"objective L + R: trained {result.objective:.8g}   closed form {theory.objective:.8g} "
             f"({theory.method})   relative gap {gap:.2e}", "singular values of U V^T:",
             f"  {'trained':>12} {'theory':>12}"]
    lines += [f"  {a:12.6f} {b:12.6f}" for a, b in zip(result.singular_values[:k], theory.singular_values[:k])]
    lines += [f"saved {saved}"] if saved else []
    c.emit(args, {"strategy": repr(strategy), "width": width, "source": source, "steps": result.steps,
                  "optimizer": optimizer, "objective": result.objective,
                  "closed_form_objective": theory.objective, "closed_form_method": theory.method,
                  "relative_gap": gap, "singular_values": result.singular_values.tolist(),
                  "closed_form_singular_values": theory.singular_values.tolist(), "saved": saved}, lines)
    return 0
