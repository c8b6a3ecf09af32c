"""Cost of the exact moments of the SGD iterates (pt.stationary_moments, pt.iterate_moments).

For n = n_out * width coordinates of ``U`` the structured route applies the second-moment map
in O(N n^2) per contraction and solves the stationary equation by GMRES preconditioned by the
Stein solve; the simple reference forms the dense n^2 x n^2 matrix of the map (one application
per basis matrix) and solves it directly, O(n^6), feasible only for small n.  Both run on one
BLAS thread (threadpoolctl); the results record the thread count and the versions.

Run: ``python benchmarks/bench_iterates.py``; writes ``benchmarks/results/iterates.json``.
"""

import json
import platform
import time
from pathlib import Path

import numpy as np
import scipy
from threadpoolctl import threadpool_limits

import pnd_theory as pt
from pnd_theory.studies.iterates import _problem

LR = 0.01
SIZES = [(2, 10, 50), (4, 10, 50), (10, 30, 200)]  # n_out, width (= n_in, V=None), N


def dense_reference(strategy, X, Y, batch):
    """Stationary covariance from the dense matrix of the second-moment map."""
    mom, batch, n_out, d = _problem(strategy, X, Y, None, batch)
    n = n_out * d
    W = mom.W()
    A = np.eye(n) - 2 * LR * W
    m = np.linalg.solve(W, mom.beta.reshape(-1))
    columns = []
    for e in np.eye(n * n):
        P = e.reshape(n, n)
        columns.append((A @ P @ A + 4 * LR ** 2 * (mom.noise_map(P, batch) - W @ P @ W)).reshape(-1))
    T = np.array(columns).T
    noise = 4 * LR ** 2 * mom.gradient_covariance(m, batch)
    return np.linalg.solve(np.eye(n * n) - T, noise.reshape(-1)).reshape(n, n)


def main():
    rows = []
    rng = np.random.default_rng(0)
    with threadpool_limits(1):
        for n_out, d, N in SIZES:
            X, Y = rng.normal(size=(d, N)), rng.normal(size=(n_out, N))
            for strategy in (pt.Dropout(0.3), pt.DropConnect(0.3, "output")):
                t = time.perf_counter()
                st = pt.stationary_moments(strategy, X, Y, LR, batch_size=8)
                t_stat = time.perf_counter() - t
                t = time.perf_counter()
                pt.iterate_moments(strategy, X, Y, np.zeros((n_out, d)), LR, 10, batch_size=8)
                t_step = (time.perf_counter() - t) / 10
                row = {"strategy": repr(strategy), "n_out": n_out, "width": d, "N": N, "n": n_out * d,
                       "batch_size": 8, "lr": LR, "stationary_seconds": t_stat, "step_seconds": t_step,
                       "max_stable_lr": st.max_stable_lr}
                if n_out * d <= 40:
                    t = time.perf_counter()
                    C = dense_reference(strategy, X, Y, 8)
                    row["dense_seconds"] = time.perf_counter() - t
                    row["dense_max_relative_difference"] = float(np.abs(C - st.covariance).max()
                                                                 / np.abs(C).max())
                print(row)
                rows.append(row)
    out = Path(__file__).parent / "results" / "iterates.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"threads": 1, "python": platform.python_version(), "numpy": np.__version__,
                               "scipy": scipy.__version__, "pnd_theory": pt.__version__,
                               "machine": platform.machine(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
