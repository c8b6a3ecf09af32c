"""Benchmark: forward+backward of PerNodeDropLinear against Linear+Dropout and a naive layer.

Cases (all ``features x features`` weights, a batch of ``--batch`` samples, drop
probability ``--p``):

* ``linear+dropout``: ``nn.Linear`` followed by ``nn.Dropout`` (the reference; noise
  on the outputs, one draw per output unit);
* ``pnd-exact-drop`` / ``pnd-exact-gaussian``: :class:`PerNodeDropLinear`, one mask
  per sample and connection, chunked (``--max-mask-elements``), masks regenerated
  in backward;
* ``pnd-gaussian-local``: ``PerNodeDropLinear(stir="gaussian",
  local_reparameterization=True)``, the fast Gaussian path;
* ``naive-drop``: the same law as ``pnd-exact-drop`` by plain autograd through a
  fully materialized ``(batch, out, in)`` Bernoulli mask.

Time: median over ``--repeats`` timed runs (after one warm-up) of one
forward+backward (``y.backward(g)`` with a fixed random ``g``), all cases in the
same process and run, interleaved round-robin (so background load on a shared
machine affects all cases alike); the ratio is to ``linear+dropout`` of this run.

Memory ("peak extra"):

* CUDA: ``torch.cuda.max_memory_allocated()`` during one forward+backward minus
  ``torch.cuda.memory_allocated()`` just before it (tensors of the caching
  allocator; the parameters, the input and ``g`` are in the baseline).
* CPU: each case runs in a fresh subprocess; after a warm-up forward+backward it
  resets the kernel's peak-RSS counter (``echo 5 > /proc/self/clear_refs``),
  reads ``VmRSS``, runs one forward+backward and reads ``VmHWM``: the peak
  resident memory of the process during that forward+backward minus its
  resident memory just before it. This is physical memory touched (torch's CPU
  child runs with ``MALLOC_MMAP_THRESHOLD_=1048576`` so that glibc returns every
  block of 1 MiB or more to the OS when freed: the baseline holds no cached free
  memory and transient buffers are counted at their peak). Where ``clear_refs`` cannot be written, it falls back to
  ``ru_maxrss`` after the run minus ``VmRSS`` before, without the warm-up
  (an upper bound including one-time allocations), and says so.

Usage::

    python benchmarks/bench_pernodedrop.py --device cpu --repeats 3
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

try:
    from pnd_theory.nn import PerNodeDropLinear
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from pnd_theory.nn import PerNodeDropLinear


class NaiveMaterializedDrop(nn.Module):
    """``z_k = (W o M_k) x_k + b`` with the whole ``(batch, out, in)`` mask in memory."""

    def __init__(self, in_features, out_features, p, device=None, dtype=None):
        super().__init__()
        lin = nn.Linear(in_features, out_features, device=device, dtype=dtype)
        self.weight, self.bias, self.p = lin.weight, lin.bias, p

    def forward(self, x):
        keep = 1.0 - self.p
        m = (torch.rand((x.shape[0], *self.weight.shape), device=x.device, dtype=x.dtype) >= self.p)
        m = m.to(x.dtype) / keep
        return torch.bmm(self.weight * m, x.unsqueeze(-1)).squeeze(-1) + self.bias


CASES = ["linear+dropout", "pnd-exact-drop", "pnd-exact-gaussian", "pnd-gaussian-local", "naive-drop"]


def build(case, d, p, mme, device, dtype):
    if case == "linear+dropout":
        return nn.Sequential(nn.Linear(d, d, device=device, dtype=dtype), nn.Dropout(p))
    if case == "pnd-exact-drop":
        return PerNodeDropLinear(d, d, p=p, stir="drop", max_mask_elements=mme, device=device, dtype=dtype)
    if case == "pnd-exact-gaussian":
        return PerNodeDropLinear(d, d, p=p, stir="gaussian", max_mask_elements=mme, device=device, dtype=dtype)
    if case == "pnd-gaussian-local":
        return PerNodeDropLinear(d, d, p=p, stir="gaussian", local_reparameterization=True,
                                 device=device, dtype=dtype)
    if case == "naive-drop":
        return NaiveMaterializedDrop(d, d, p, device=device, dtype=dtype)
    raise ValueError(f"unknown case {case!r}")


def setup(case, args):
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    model = build(case, args.features, args.p, args.max_mask_elements, device, dtype).train()
    x = torch.randn(args.batch, args.features, device=device, dtype=dtype, requires_grad=True)
    g = torch.randn(args.batch, args.features, device=device, dtype=dtype)
    return model, x, g


def step(model, x, g):
    model.zero_grad(set_to_none=True)
    x.grad = None
    model(x).backward(g)


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_cases(cases, args):
    """Median fwd+bwd seconds per case; cases interleaved round-robin so that
    background load on a shared machine hits all of them alike."""
    setups = {case: setup(case, args) for case in cases}
    for case in cases:  # warm-up
        step(*setups[case])
    sync(args.device)
    times = {case: [] for case in cases}
    for _ in range(args.repeats):
        for case in cases:
            t0 = time.perf_counter()
            step(*setups[case])
            sync(args.device)
            times[case].append(time.perf_counter() - t0)
    return {case: statistics.median(ts) for case, ts in times.items()}


def cuda_peak(case, args):
    model, x, g = setup(case, args)
    step(model, x, g)
    model.zero_grad(set_to_none=True)
    x.grad = None
    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step(model, x, g)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - base) / 2**20


def _proc_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def cpu_peak_in_this_process(case, args):
    """Peak RSS increase (MiB) during one forward+backward (see module docstring)."""
    model, x, g = setup(case, args)
    try:
        step(model, x, g)
        model.zero_grad(set_to_none=True)
        x.grad = None
        gc.collect()
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        base = _proc_kib("VmRSS")
        step(model, x, g)
        return (_proc_kib("VmHWM") - base) / 1024, "VmHWM-VmRSS"
    except OSError:
        base = _proc_kib("VmRSS")
        step(model, x, g)
        return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024, "ru_maxrss-VmRSS(upper bound)"


def cpu_peak(case, args):
    cmd = [sys.executable, os.path.abspath(__file__), "--_memory-case", case, "--device", args.device,
           "--batch", str(args.batch), "--features", str(args.features), "--p", str(args.p),
           "--dtype", args.dtype, "--max-mask-elements", str(args.max_mask_elements)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    # glibc: serve every block >= 1 MiB by mmap and unmap it on free, so that the
    # resident set is the live memory (no retained free heap in the baseline)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="1048576")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    res = json.loads(out.strip().splitlines()[-1])
    return res["mib"], res["how"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--features", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--p", type=float, default=0.5)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--max-mask-elements", type=int, default=2**24)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ",".join(CASES))
    ap.add_argument("--_memory-case", dest="memory_case", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.memory_case is not None:  # child process of the CPU memory measurement
        mib, how = cpu_peak_in_this_process(args.memory_case, args)
        print(json.dumps({"mib": mib, "how": how}))
        return

    cases = [c for c in args.cases.split(",") if c]
    if "linear+dropout" not in cases:
        cases.insert(0, "linear+dropout")
    on_cuda = torch.device(args.device).type == "cuda"
    d, b = args.features, args.batch
    chunk = max(1, args.max_mask_elements // (d * d))
    print(f"device={args.device}"
          + (f" ({torch.cuda.get_device_name()})" if on_cuda else f" (torch threads={torch.get_num_threads()})")
          + f"  torch={torch.__version__}  batch={b}  features={d}x{d}  p={args.p}  dtype={args.dtype}"
          + f"  repeats={args.repeats}  max_mask_elements={args.max_mask_elements} (chunk={chunk} samples)")
    times = time_cases(cases, args)
    gc.collect()
    rows = []
    for case in cases:
        mem, how = (cuda_peak(case, args), "cuda max_memory_allocated") if on_cuda else cpu_peak(case, args)
        rows.append((case, times[case], mem, how))
        gc.collect()
    t_ref = rows[0][1]
    print(f"{'case':<22}{'fwd+bwd ms (median)':>21}{'ratio to Linear+Dropout':>25}{'peak extra MiB':>16}")
    for case, t, mem, _ in rows:
        print(f"{case:<22}{1e3 * t:>21.1f}{t / t_ref:>25.2f}{mem:>16.1f}")
    print(f"memory measured as: {rows[0][3]}")
    byname = {r[0]: r for r in rows}
    if "pnd-gaussian-local" in byname:
        r = byname["pnd-gaussian-local"][1] / t_ref
        print(f"target Gaussian fast path within 3x of Linear+Dropout: {'met' if r <= 3 else 'NOT met'} ({r:.2f}x)")
    if "pnd-exact-drop" in byname and "naive-drop" in byname:
        e, n = byname["pnd-exact-drop"], byname["naive-drop"]
        print(f"target exact drop faster than naive: {'met' if e[1] < n[1] else 'NOT met'} "
              f"({e[1] / n[1]:.2f}x the naive time); memory {e[2]:.0f} MiB vs naive {n[2]:.0f} MiB "
              f"(mask-chunk bound {chunk * d * d * (4 if args.dtype == 'float32' else 8) / 2**20:.0f} MiB per buffer)")


if __name__ == "__main__":
    main()
