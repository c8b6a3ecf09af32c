"""Wall time of a 64-cell training sweep: serially in this process against a LocalCluster.

The same spec (2 strategies x 4 drop probabilities x 8 seeds, each cell ``pt.train`` on its
own random problem) runs first with ``client="serial"`` and then on a ``LocalCluster`` of
one-thread worker processes, one per core, timed from before the cluster starts to after it
closes (its start-up and the workers' imports included) and also without them.  Both tables
must hold the same numbers.  The ratio, not the seconds, is what to compare across machines.
Run: ``python benchmarks/bench_sweep.py [--epochs 300] [--workers N]``; writes
``benchmarks/results/sweep.json``.
"""

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd

import pnd_theory as pt


def spec(epochs):
    return {
        "task": "train",
        "grid": {"strategy": ["dropout", "dropblock"], "p": [0.1, 0.2, 0.3, 0.5], "block_size": [2],
                 "width": [8], "seed": list(range(8))},
        "problem": {"n_in": 4, "n_out": 3, "n_samples": 64},
        "options": {"epochs": epochs, "device": "cpu"},
    }


def main():
    from dask.distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser.add_argument("--workers", type=int, default=cpus)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sweep.json"))
    args = parser.parse_args()
    study = spec(args.epochs)
    load_before = os.getloadavg()

    start = time.perf_counter()
    serial = pt.sweep(study, client="serial", progress=False)
    serial_s = time.perf_counter() - start

    start = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        client.run(lambda: __import__("pnd_theory") and None)  # the workers' imports, timed apart
        ready = time.perf_counter()
        parallel = pt.sweep(study, client=client, progress=False)
        computed = time.perf_counter()
    cluster_s = time.perf_counter() - start
    sweep_s = computed - ready

    numbers = [c for c in serial.columns if c != "seconds"]
    pd.testing.assert_frame_equal(serial[numbers], parallel[numbers])
    result = {
        "description": "wall time of one 64-cell pt.sweep of pt.train (2 strategies x 4 p x 8 seeds, width 8, "
                       f"{args.epochs} full-batch epochs on 64 samples each), serially in one process and on a "
                       "LocalCluster of one-thread worker processes; the same numbers both ways",
        "cells": len(serial),
        "epochs": args.epochs,
        "workers": args.workers,
        "cpus": cpus,
        "load_average_before": list(load_before),
        "serial_seconds": serial_s,
        "cluster_seconds_total": cluster_s,
        "cluster_seconds_sweep_only": sweep_s,
        "cluster_start_and_close_seconds": cluster_s - sweep_s,
        "speedup_total": serial_s / cluster_s,
        "speedup_sweep_only": serial_s / sweep_s,
        "mean_cell_seconds_serial": float(serial.seconds.mean()),
        "mean_cell_seconds_cluster": float(parallel.seconds.mean()),
        "identical_tables": True,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
