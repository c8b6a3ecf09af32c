"""Cost of the closed-form penalty against the forward product U V^T X (ratios, one run).

Target: at width 4096 with n_in = n_out = 512, ``expected_penalty`` for the
diagonal and block-diagonal laws costs no more than a few forward products ``U (V^T X)``.
Run: ``python benchmarks/bench_penalty.py [--width 4096 --features 512 --samples 512]``; writes
``benchmarks/results/penalty.json``.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

import pnd_theory as pt


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--features", type=int, default=512)
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, d, N = args.features, args.width, args.samples
    U, V = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    X = rng.normal(size=(n, N))
    S = pt.second_moment(X)
    forward = median_time(lambda: U @ (V.T @ X), args.repeats)
    print(f"n_in = n_out = {n}, width = {d}, N = {N}; forward U (V^T X): {forward * 1e3:.1f} ms")
    print(f"{'strategy':<50} {'time (ms)':>10} {'/ forward':>10}")
    rows = []
    for s in (pt.Dropout(0.5), pt.DropBlock(0.5, 8), pt.NodeDropout([0.3] * d), pt.PerNodeDrop(0.5, "input"),
              pt.PerNodeDrop(0.5, "both"), pt.DropConnect(0.5, "output")):
        t = median_time(lambda: pt.expected_penalty(s, U, V, S), args.repeats)
        print(f"{repr(s)[:50]:<50} {t * 1e3:10.1f} {t / forward:10.2f}")
        rows.append({"strategy": repr(s)[:60], "seconds": t, "ratio_to_forward": t / forward})
    out = Path(__file__).parent / "results" / "penalty.json"
    out.parent.mkdir(exist_ok=True)
    ratios = {r["strategy"]: r["ratio_to_forward"] for r in rows}
    out.write_text(json.dumps({"features": n, "width": d, "samples": N, "forward_seconds": forward, "rows": rows,
                               "ratio_min": min(ratios.values()), "ratio_max": max(ratios.values())}, indent=1))


if __name__ == "__main__":
    main()
