"""Throughput of ``monte_carlo_loss`` against its floor: one forward product per mask draw.

For each strategy, time ``monte_carlo_loss(..., samples=T)`` and divide by ``T`` forward
products ``U (V^T X)`` of the same sizes timed right after it (each ratio from one pair of
timings, so that background load hits both alike) (the floor: a draw cannot cost
less than evaluating the network once).  Ratios, not seconds, are what to compare across
machines.

Threads: ``--threads N`` sets torch's and numba's counts; the counts in force (torch, numba, the
fused kernels, each BLAS library) are read after the timed runs and recorded with the versions
and the CPU, and the script refuses to write results (exit status 1) when any differs from
``N``.  Run: ``NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bench_montecarlo.py
--threads 1`` (writes ``benchmarks/results/montecarlo_cpu_1thread.json``) or ``--device cuda``
(``montecarlo_cuda.json``).
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import pnd_theory as pt
from bench_pernodedrop import _version, cpu_name, set_threads, thread_counts, thread_mismatches


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--n-in", type=int, default=32)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--n-out", type=int, default=16)
    parser.add_argument("--n-samples", type=int, default=256)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--json", default=None, help="where to write the results")
    args = parser.parse_args()
    if args.threads:
        set_threads(args.threads)
    U, V, X, Y = pt.random_problem(args.n_in, args.width, args.n_out, args.n_samples, seed=0)
    dev = torch.device(args.device)
    Ut, Vt, Xt = (torch.as_tensor(a, device=dev) for a in (U, V, X))

    def forward_time():
        return median_time(lambda: [Ut @ (Vt.T @ Xt) for _ in range(50)], args.repeats) / 50

    forward = forward_time()
    print(f"device {dev}, n_in={args.n_in} width={args.width} n_out={args.n_out} N={args.n_samples}, "
          f"{args.draws} draws; one forward U (V^T X): {forward * 1e6:.1f} us")
    print(f"{'strategy':<52} {'draws/s':>10} {'per draw / forward':>20}")
    rows = {}
    for s in (pt.Dropout(0.5), pt.DropBlock(0.5, 4), pt.DropConnect(0.5, "output"),
              pt.PerNodeDrop(0.5, "input"), pt.PerNodeDrop(0.5, "input", stir="gaussian"),
              pt.PerNodeDrop(0.5, "both"), pt.DropConnect(0.5, "both", per_sample=True)):
        t = median_time(lambda: pt.monte_carlo_loss(s, U, V, X, Y, samples=args.draws, device=dev), args.repeats)
        floor = forward_time()  # timed right after, so that both see the same load
        print(f"{repr(s)[:52]:<52} {args.draws / t:10.0f} {t / args.draws / floor:20.1f}")
        rows[repr(s)] = {"draws_per_second": args.draws / t, "forward_seconds": floor,
                         "ratio_to_forward": t / args.draws / floor}
    threads = thread_counts()  # read after the timed runs: what was in force while they ran
    if dev.type == "cpu" and args.threads:
        bad = thread_mismatches([threads], args.threads)
        if bad:
            sys.exit(f"bench_montecarlo: not writing results: {', '.join(bad)}")
    default = f"montecarlo_{dev.type}" + (f"_{args.threads}thread" if dev.type == "cpu" and args.threads else "")
    out = Path(args.json) if args.json else Path(__file__).parent / "results" / f"{default}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"device": str(dev), "threads": threads, "cpu": cpu_name(),
                               "versions": {"torch": torch.__version__, "numba": _version("numba"),
                                            "numpy": np.__version__, "python": platform.python_version()},
                               "n_in": args.n_in, "width": args.width, "n_out": args.n_out,
                               "n_samples": args.n_samples, "draws": args.draws, "forward_seconds": forward,
                               "rows": rows}, indent=1))
    print(f"threads in force: torch {threads['torch']}, numba {threads['numba']}, kernels {threads['kernels']}; "
          f"wrote {out}")


if __name__ == "__main__":
    main()
