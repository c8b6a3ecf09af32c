"""``pnd-theory sweep``: a grid of tasks from a TOML spec (:func:`pnd_theory.sweep`), resumable,
and the summary table of its results (mean and standard error over seeds per cell)."""

from __future__ import annotations

import json

import pnd_theory as pt

NAME = "sweep"
HELP = "run a grid of tasks from a TOML spec on Dask, resumable, and print the table"


def add_arguments(parser):
    """The options of ``pnd-theory sweep``."""
    parser.add_argument("spec", metavar="SPEC.toml", help="the study: task, [grid], [problem], [options]")
    parser.add_argument("--store", required=True, metavar="DIR",
                        help="result store: one JSON file per cell; cells already there are not computed")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="a Dask scheduler (tcp://host:8786), or 'serial' to run in this process "
                             "(default: a LocalCluster, one worker process per core)")
    parser.add_argument("--workers", type=int, metavar="N", help="workers of the LocalCluster (default: one per core)")
    parser.add_argument("--worker-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="stop (keeping the finished cells) when the cluster has had no worker or no "
                             "scheduler this long (default: 60)")
    parser.add_argument("--json", action="store_true", help="print the table as JSON records")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _summary(df):
    """Mean (and standard error over seeds, when there are several) of each result per cell of the
    grid without the seed; the rows themselves when there is one seed."""
    grid = [c for c in df.attrs["grid"] if c in df.columns]
    done = df[df.status != "failed"]
    results = [c for c in done.columns if c not in grid and c not in ("seconds", "status", "error")
               and done[c].dtype.kind in "fiu"]
    if "seed" not in grid or done["seed"].nunique() < 2 or not results:
        return df.drop(columns=["error"]).to_string(index=False)
    keys = [c for c in grid if c != "seed"]
    stats = done.groupby(keys, sort=False, dropna=False)[results].agg(["mean", "sem"])
    stats.columns = [f"{name} {stat}" for name, stat in stats.columns]
    stats.insert(0, "seeds", done.groupby(keys, sort=False, dropna=False).size())
    return stats.to_string()


def run(args) -> int:
    """Run the sweep of ``args.spec``; exit 0 when every cell is done, 1 when some failed."""
    client = args.scheduler
    if args.workers is not None and args.scheduler is not None:
        raise pt.InvalidParameterError("--workers sizes the LocalCluster started without --scheduler; give one of the two")
    df = pt.sweep(args.spec, client=client, store=args.store, progress=not args.no_progress, workers=args.workers,
                  worker_timeout=args.worker_timeout)
    failed = df[df.status == "failed"]
    if args.json:
        print(json.dumps(json.loads(df.to_json(orient="records")), indent=1))
        return 1 if len(failed) else 0
    counts = df.status.value_counts()
    print(f"{df.attrs['task']}: {len(df)} cells: {counts.get('done', 0)} done, {counts.get('cached', 0)} cached, "
          f"{counts.get('failed', 0)} failed; store {args.store}")
    print(_summary(df))
    for row in failed.itertuples():
        where = ", ".join(f"{c}={getattr(row, c)}" for c in df.attrs["grid"] if c in df.columns)
        print(f"failed: {where}: {row.error}")
    return 1 if len(failed) else 0
