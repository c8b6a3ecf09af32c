"""Cost of ``pt.explicit_penalty`` against one forward pass of the same model (ratios, one run).

Three ReLU or tanh MLPs ``n_in -> width -> width -> n_out`` on N samples (float32): dropout
before the readout (affine in the masks: the exact route), dropout before a hidden linear map
and ReLU (second order, Hessian probe only) and Gaussian dropout before a tanh (second order with
the Hessian diagonal).  The penalty is timed without its Monte Carlo (``samples=0``); the
Monte Carlo costs ``samples`` forward passes on top.  Torch runs on ``--threads`` threads; the
file is written only when that is the count in force.  Writes ``benchmarks/results/explicit.json``.
Run: ``python benchmarks/bench_explicit.py [--threads 1 --samples 512 --width 128 --repeats 3]``.
"""

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

import pnd_theory as pt
from pnd_theory.nn import GaussianDropout

from bench_deep import median_time  # the median of timed runs after a warm-up, as the other benchmarks time


def models(n_in, width, n_out, hessian_width):
    return {
        "Dropout before the readout (exact)":
            nn.Sequential(nn.Linear(n_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(width, n_out)),
        "Dropout before a hidden ReLU layer (second order)":
            nn.Sequential(nn.Linear(n_in, width), nn.ReLU(), nn.Dropout(0.5), nn.Linear(width, width), nn.ReLU(),
                          nn.Linear(width, n_out)),
        f"GaussianDropout before tanh, width {hessian_width} (second order, Hessian diagonal)":
            nn.Sequential(nn.Linear(n_in, hessian_width), GaussianDropout(0.1), nn.Tanh(),
                          nn.Linear(hessian_width, n_out)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--n-in", type=int, default=64)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--hessian-width", type=int, default=32)
    parser.add_argument("--n-out", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "explicit.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    X = torch.randn(args.samples, args.n_in)
    Y = torch.randn(args.samples, args.n_out)
    rows = []
    print(f"N = {args.samples}, n_in = {args.n_in}, width = {args.width}, n_out = {args.n_out}, "
          f"torch threads {torch.get_num_threads()}")
    for label, model in models(args.n_in, args.width, args.n_out, args.hessian_width).items():
        model.eval()
        with torch.no_grad():
            t_forward = median_time(lambda: model(X), max(args.repeats, 20))
        result = pt.explicit_penalty(model, X, Y, samples=0)
        t_penalty = median_time(lambda: pt.explicit_penalty(model, X, Y, samples=0), args.repeats)
        rows.append({"model": label, "exact": result.exact, "value": result.value,
                     "variables_per_sample": sum(s.variables for s in result.sites),
                     "forward_seconds": t_forward, "penalty_seconds": t_penalty,
                     "penalty_over_forward": t_penalty / t_forward})
        print(f"{label:<75} forward {t_forward * 1e3:8.3f} ms  penalty {t_penalty * 1e3:9.1f} ms  "
              f"{t_penalty / t_forward:9.1f}x  exact={result.exact}")
    if torch.get_num_threads() != args.threads:
        sys.exit(f"torch ran on {torch.get_num_threads()} threads, not the {args.threads} asked: nothing written")
    out = {
        "benchmark": "explicit_penalty against one forward pass (samples=0: no Monte Carlo)",
        "samples": args.samples, "n_in": args.n_in, "width": args.width, "n_out": args.n_out,
        "dtype": "float32", "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "numpy": np.__version__, "python": platform.python_version(), "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(), "repeats": args.repeats, "rows": rows,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
