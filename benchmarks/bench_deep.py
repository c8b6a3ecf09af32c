"""Cost of the deep closed form against one forward product (ratios, one run).

At depth 4 with every width 512 (inputs and outputs included) and N = 512 samples,
``pt.deep.expected_penalty`` (second-moment propagation) and ``pt.deep.expected_loss`` for
several noise descriptions, each timed against the forward product ``W_4 W_3 W_2 W_1 X``.
BLAS runs on one thread (threadpoolctl) so that the ratios do not depend on the load of a
shared machine.  Writes ``benchmarks/results/deep.json``.
Run: ``python benchmarks/bench_deep.py [--width 512 --depth 4 --samples 512 --repeats 5]``.
"""

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import pnd_theory as pt

try:
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None


def median_time(fn, repeats):
    fn()  # warm up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def cases(depth):
    hidden_layers = depth - 1
    return {
        "Dropout on every hidden layer": dict(hidden=[pt.Dropout(0.3)] * hidden_layers),
        "DropBlock(b=8) on every hidden layer": dict(hidden=[pt.DropBlock(0.3, 8)] * hidden_layers),
        "PerNodeDrop on an inner matrix": dict(weight_noise=[None, pt.Bernoulli(0.3)] + [None] * (depth - 2)),
        "Dropout everywhere + PerNodeDrop on every matrix": dict(hidden=[pt.Dropout(0.3)] * hidden_layers,
                                                                 weight_noise=[pt.Bernoulli(0.2)] * depth),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "deep.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    n, L, N = args.width, args.depth, args.samples
    Ws = [rng.normal(size=(n, n)) / np.sqrt(n) for _ in range(L)]
    X = rng.normal(size=(n, N))
    Y = rng.normal(size=(n, N))
    S = X @ X.T / N

    def forward():
        H = X
        for W in Ws:
            H = W @ H
        return H

    limits = threadpool_limits(limits=1) if threadpool_limits else None  # ratios on one core: no contention noise
    t_forward = median_time(forward, args.repeats)
    print(f"depth {L}, widths {n}, N = {N}; forward W_{L} ... W_1 X: {t_forward * 1e3:.2f} ms")
    print(f"{'noise':<52} {'penalty ms':>10} {'/ fwd':>7} {'loss ms':>9} {'/ fwd':>7}")
    rows = []
    for label, kw in cases(L).items():
        t_pen = median_time(lambda: pt.deep.expected_penalty(Ws, S, **kw), args.repeats)
        t_loss = median_time(lambda: pt.deep.expected_loss(Ws, X, Y, **kw), args.repeats)
        rows.append({"noise": label, "penalty_seconds": t_pen, "penalty_over_forward": t_pen / t_forward,
                     "loss_seconds": t_loss, "loss_over_forward": t_loss / t_forward})
        print(f"{label:<52} {t_pen * 1e3:10.2f} {t_pen / t_forward:7.2f} {t_loss * 1e3:9.2f} {t_loss / t_forward:7.2f}")
    result = {
        "description": "median time of the deep closed form (second-moment propagation) against one forward "
                       "product W_L ... W_1 X, numpy float64, one run",
        "depth": L, "width": n, "samples": N, "repeats": args.repeats,
        "forward_seconds": t_forward, "cases": rows,
        "machine": {"processor": platform.processor() or platform.machine(), "numpy": np.__version__,
                    "blas_threads": 1 if limits is not None else "default"},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
