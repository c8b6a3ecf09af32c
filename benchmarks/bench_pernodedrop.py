"""Benchmark: forward+backward of PerNodeDropLinear against Linear+Dropout and a naive layer.

Cases (all ``features x features`` weights, a batch of ``--batch`` samples, drop
probability ``--p``):

* ``linear+dropout``: ``nn.Linear`` followed by ``nn.Dropout`` (the reference; noise
  on the outputs, one draw per output unit);
* ``pnd-exact-drop`` / ``pnd-exact-gaussian``: :class:`PerNodeDropLinear`, one mask
  per sample and connection, computed inside the fused kernels (numba on CPU, Triton on
  CUDA) from a counter-based generator, never stored;
* ``pnd-exact-gaussian-conditional``: the same law with ``gaussian_draw="conditional"``:
  forward draws each output's noise directly, backward the rest of the masks given it (one
  pass over the masks instead of two);
* ``chunked-drop`` / ``chunked-gaussian``: the previous exact path, kept here as a
  baseline: masks drawn with ``torch.rand`` chunk by chunk (``--max-mask-elements``) and
  regenerated in backward;
* ``pnd-gaussian-local``: ``PerNodeDropLinear(stir="gaussian",
  local_reparameterization=True)``, the fast Gaussian path (right forward law, wrong
  gradient noise);
* ``naive-drop``: the same law as ``pnd-exact-drop`` by plain autograd through a
  fully materialized ``(batch, out, in)`` Bernoulli mask.

Time: the fastest of ``--repeats`` timed runs (after one warm-up) of one
forward+backward (``y.backward(g)`` with a fixed random ``g``), all cases in the
same process and run, interleaved round-robin (so background load on a shared
machine affects all cases alike; the fastest run is the least disturbed one, the
median is recorded too); the ratio is to ``linear+dropout`` of this run.

Memory ("peak extra"), at ``--batch`` and at each of ``--memory-batches``:

* CUDA: ``torch.cuda.max_memory_allocated()`` during one forward+backward minus
  ``torch.cuda.memory_allocated()`` just before it.
* CPU: each case runs in a fresh subprocess; after a warm-up forward+backward it
  resets the kernel's peak-RSS counter (``echo 5 > /proc/self/clear_refs``),
  reads ``VmRSS``, runs one forward+backward and reads ``VmHWM``: the peak
  resident memory during that forward+backward minus the resident memory just before
  it (the child runs with ``MALLOC_MMAP_THRESHOLD_=1048576`` so that freed blocks of
  1 MiB or more go back to the OS).  Where ``clear_refs`` cannot be written, it falls
  back to ``ru_maxrss`` after the run minus ``VmRSS`` before (an upper bound), and says so.

The results go to ``--json`` (default ``benchmarks/results/bench_pernodedrop_<device>.json``).

Threads: ``--threads N`` sets torch's and numba's counts; the counts in force (torch, numba,
the fused kernels, each BLAS library through threadpoolctl) are read after every round of
timed runs and recorded, and the script refuses to write results (exit status 1) when any
differs from ``N``.  It also times, in a new process, the first forward+backward of an exact
Bernoulli layer (the kernels load from numba's on-disk cache).

Usage (the results files: ``bench_pernodedrop_cpu.json`` on one thread,
``bench_pernodedrop_cpu_2threads.json`` on two)::

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bench_pernodedrop.py --threads 1 --repeats 3
    python benchmarks/bench_pernodedrop.py --threads 2 --repeats 3
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn
from torch.autograd.function import once_differentiable

try:
    from pnd_theory.nn import PerNodeDropLinear
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from pnd_theory.nn import PerNodeDropLinear
from pnd_theory.laws._sampling import draw_seed, sample_mask, seeded_generator

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------
# the previous exact path (baseline): torch.rand masks chunk by chunk, regenerated in backward
# ----------------------------------------------------------------------------
class _PerSampleMaskedLinearFn(torch.autograd.Function):
    r"""``z_k = (W \circ M_k) x_k (+ b)`` for a 2-D input, masks regenerated from a seed.

    Forward and backward both walk the batch in chunks of ``chunk`` samples and
    draw each chunk's ``(chunk, out, in)`` mask with :func:`_sample_mask` from a
    generator seeded with ``seed`` on the input's device, in the same order, so
    backward sees exactly the forward's masks. Only the input and the weight
    are saved for backward.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, p, stir, chunk, seed):  # noqa: D102
        n = x.shape[0]
        out_f, in_f = weight.shape
        x = x.contiguous()
        z = torch.empty((n, out_f), device=x.device, dtype=torch.result_type(x, weight))
        gen = seeded_generator(seed, x.device)
        buf = torch.empty((min(n, chunk), out_f, in_f), device=x.device, dtype=weight.dtype)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            m = sample_mask((e - s, out_f, in_f), p, stir, generator=gen, out=buf[: e - s])
            m.mul_(weight)  # masked weights W o M_k, in place
            # z_k = x_k^T (W o M_k)^T: a (1 x in)(in x out) product per sample (faster than M_k x_k)
            torch.bmm(x[s:e].unsqueeze(1), m.transpose(1, 2), out=z[s:e].unsqueeze(1))
            del m
        del buf
        if bias is not None:
            z.add_(bias)
        ctx.save_for_backward(x, weight)
        ctx.p, ctx.stir, ctx.chunk, ctx.seed = p, stir, chunk, seed
        ctx.has_bias = bias is not None
        return z

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_z):  # noqa: D102
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        grad_z = grad_z.contiguous()
        if need_b and ctx.has_bias:
            grad_b = grad_z.sum(0)
        if need_x or need_w:
            n = x.shape[0]
            out_f, in_f = weight.shape
            if need_x:
                grad_x = torch.empty_like(x)
            if need_w:
                grad_w = torch.zeros_like(weight)
            gen = seeded_generator(ctx.seed, x.device)
            c = min(n, ctx.chunk)
            buf = torch.empty((c, out_f, in_f), device=x.device, dtype=weight.dtype)
            abuf = torch.empty_like(buf) if (need_x and need_w) else None
            for s in range(0, n, ctx.chunk):
                e = min(n, s + ctx.chunk)
                m = sample_mask((e - s, out_f, in_f), ctx.p, ctx.stir, generator=gen, out=buf[: e - s])
                gz = grad_z[s:e]
                if need_x:
                    # d/dx_k = (W o M_k)^T g_k
                    a = torch.mul(m, weight, out=abuf[: e - s]) if need_w else m.mul_(weight)
                    torch.bmm(gz.unsqueeze(1), a, out=grad_x[s:e].unsqueeze(1))
                    del a
                if need_w:
                    # d/dW = sum_k M_k o (g_k x_k^T): multiply M_k by x_k in place, then
                    # contract the batch with g_k (one strided GEMM per output unit)
                    m.mul_(x[s:e].unsqueeze(1))
                    grad_w += torch.bmm(gz.t().unsqueeze(1), m.transpose(0, 1)).squeeze(1)
                del m
            del buf, abuf
        return grad_x, grad_w, grad_b, None, None, None, None


class ChunkedPerSampleLinear(nn.Module):
    """The previous exact layer: :class:`_PerSampleMaskedLinearFn` with a fresh seed per call."""

    def __init__(self, in_features, out_features, p, stir, max_mask_elements, device=None, dtype=None):
        super().__init__()
        lin = nn.Linear(in_features, out_features, device=device, dtype=dtype)
        self.weight, self.bias, self.p, self.stir = lin.weight, lin.bias, p, stir
        self.chunk = max(1, max_mask_elements // (in_features * out_features))

    def forward(self, x):
        return _PerSampleMaskedLinearFn.apply(x, self.weight, self.bias, self.p, self.stir, self.chunk, draw_seed())


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


CASES = ["linear+dropout", "pnd-exact-drop", "pnd-exact-gaussian", "pnd-exact-gaussian-conditional", "chunked-drop",
         "chunked-gaussian", "pnd-gaussian-local", "naive-drop"]
MEMORY_CASES = ["linear+dropout", "pnd-exact-drop", "pnd-exact-gaussian", "pnd-exact-gaussian-conditional",
                "chunked-drop"]


def _version(module):
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def cpu_name():
    """The CPU's model name and the instruction-set target the compiled kernels use."""
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), model)
    except OSError:
        pass
    try:
        import llvmlite.binding as llvm

        return f"{model} (LLVM target {llvm.get_host_cpu_name()})"
    except ImportError:
        return model


def build(case, d, p, mme, device, dtype):
    if case == "linear+dropout":
        return nn.Sequential(nn.Linear(d, d, device=device, dtype=dtype), nn.Dropout(p))
    if case in ("pnd-exact-drop", "pnd-exact-gaussian"):
        return PerNodeDropLinear(d, d, p=p, stir=case.rsplit("-", 1)[1], device=device, dtype=dtype)
    if case in ("chunked-drop", "chunked-gaussian"):
        return ChunkedPerSampleLinear(d, d, p, case.rsplit("-", 1)[1], mme, device=device, dtype=dtype)
    if case == "pnd-exact-gaussian-conditional":
        return PerNodeDropLinear(d, d, p=p, stir="gaussian", gaussian_draw="conditional", device=device, dtype=dtype)
    if case == "pnd-gaussian-local":
        return PerNodeDropLinear(d, d, p=p, stir="gaussian", local_reparameterization=True,
                                 device=device, dtype=dtype)
    if case == "naive-drop":
        return NaiveMaterializedDrop(d, d, p, device=device, dtype=dtype)
    raise ValueError(f"unknown case {case!r}")


def setup(case, args, batch=None):
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    batch = batch or args.batch
    torch.manual_seed(0)
    model = build(case, args.features, args.p, args.max_mask_elements, device, dtype).train()
    x = torch.randn(batch, args.features, device=device, dtype=dtype, requires_grad=True)
    g = torch.randn(batch, args.features, device=device, dtype=dtype)
    return model, x, g


def step(model, x, g):
    model.zero_grad(set_to_none=True)
    x.grad = None
    model(x).backward(g)


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def set_threads(n):
    """Ask torch and numba for ``n`` threads (numba at most its pool); :func:`thread_counts`
    reads back what was in force."""
    import numba

    torch.set_num_threads(n)
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))


def thread_counts():
    """The thread counts in force: torch's intra-op count, numba's (its pool size,
    ``NUMBA_NUM_THREADS``, and the count set for the caller), the count the fused kernels run
    on (``min(torch, numba's pool)``), and each BLAS / OpenMP library's (threadpoolctl)."""
    import numba
    from threadpoolctl import threadpool_info

    info = {"torch": torch.get_num_threads(), "numba": numba.get_num_threads(),
            "numba_pool": numba.config.NUMBA_NUM_THREADS, "NUMBA_NUM_THREADS": os.environ.get("NUMBA_NUM_THREADS"),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    info["kernels"] = max(1, min(info["torch"], info["numba_pool"]))
    info["libraries"] = [{k: lib.get(k) for k in ("user_api", "internal_api", "num_threads", "version")}
                         for lib in threadpool_info()]
    return info


def thread_mismatches(readings, wanted):
    """What differs from ``wanted`` threads in any of ``readings`` (empty: all as asked)."""
    bad = set()
    for r in readings:
        for key in ("torch", "numba", "kernels"):
            if r[key] != wanted:
                bad.add(f"{key} threads {r[key]} (asked {wanted})")
        for lib in r["libraries"]:
            if lib["user_api"] == "blas" and lib["num_threads"] != wanted:
                bad.add(f"{lib['internal_api']} threads {lib['num_threads']} (asked {wanted})")
    return sorted(bad)


def time_cases(cases, args):
    """Fastest and median fwd+bwd seconds per case; cases interleaved round-robin so that
    background load on a shared machine hits all of them alike.  The thread counts are read
    after each round of timed runs (the kernels must not have changed them)."""
    setups = {case: setup(case, args) for case in cases}
    for case in cases:  # warm-up (and compilation of the kernels)
        step(*setups[case])
    sync(args.device)
    times = {case: [] for case in cases}
    readings = []
    for _ in range(args.repeats):
        for case in cases:
            t0 = time.perf_counter()
            step(*setups[case])
            sync(args.device)
            times[case].append(time.perf_counter() - t0)
        readings.append(thread_counts())
    return ({case: min(ts) for case, ts in times.items()}, {case: statistics.median(ts) for case, ts in times.items()},
            readings)


FIRST_STEP_SCRIPT = """
import time
t0 = time.perf_counter()
import torch
from pnd_theory.nn import PerNodeDropLinear
torch.set_num_threads({threads})
layer = PerNodeDropLinear({d}, {d}, p={p})
x = torch.randn({b}, {d}, requires_grad=True)
t1 = time.perf_counter()
layer(x).sum().backward()
print(time.perf_counter() - t1, t1 - t0)
"""


def first_step_seconds(args):
    """Seconds of the first forward+backward of an exact Bernoulli layer in a new process (the
    kernels load from numba's on-disk cache, filled by this run's warm-up), and of its imports."""
    code = FIRST_STEP_SCRIPT.format(threads=args.threads or torch.get_num_threads(), d=args.features, p=args.p,
                                    b=args.batch)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.join(HERE, "..")).stdout
    step_s, import_s = (float(v) for v in out.split())
    return step_s, import_s


def cuda_peak(case, args, batch):
    model, x, g = setup(case, args, batch)
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
    return (torch.cuda.max_memory_allocated() - base) / 2**20, "cuda max_memory_allocated"


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


def cpu_peak(case, args, batch):
    cmd = [sys.executable, os.path.abspath(__file__), "--_memory-case", case, "--device", args.device,
           "--batch", str(batch), "--features", str(args.features), "--p", str(args.p),
           "--dtype", args.dtype, "--max-mask-elements", str(args.max_mask_elements)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="1048576")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    res = json.loads(out.strip().splitlines()[-1])
    return res["mib"], res["how"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--memory-batches", default="256,1024", help="batch sizes of the memory measurement")
    ap.add_argument("--features", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--p", type=float, default=0.5)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--max-mask-elements", type=int, default=2**24, help="chunk bound of the chunked baseline")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    ap.add_argument("--cases", default=",".join(CASES), help="comma-separated subset of " + ",".join(CASES))
    ap.add_argument("--json", default=None, help="where to write the results (default: benchmarks/results/)")
    ap.add_argument("--_memory-case", dest="memory_case", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        set_threads(args.threads)

    if args.memory_case is not None:  # child process of the CPU memory measurement
        mib, how = cpu_peak_in_this_process(args.memory_case, args)
        print(json.dumps({"mib": mib, "how": how}))
        return

    cases = [c for c in args.cases.split(",") if c]
    if "linear+dropout" not in cases:
        cases.insert(0, "linear+dropout")
    on_cuda = torch.device(args.device).type == "cuda"
    d, b = args.features, args.batch
    header = {"device": args.device, "device_name": torch.cuda.get_device_name() if on_cuda else cpu_name(),
              "torch": torch.__version__, "numba": _version("numba"), "python": platform.python_version(),
              "threads": torch.get_num_threads(), "batch": b, "features": d,
              "p": args.p, "dtype": args.dtype, "repeats": args.repeats, "max_mask_elements": args.max_mask_elements}
    print("  ".join(f"{k}={v}" for k, v in header.items()))
    times, medians, readings = time_cases(cases, args)
    header["threads_during_timed_runs"] = readings[-1]
    bad = thread_mismatches(readings, args.threads) if args.threads else []
    if bad:
        sys.exit("refusing to write results: the timed runs did not run on the threads asked: " + "; ".join(bad))
    gc.collect()
    if not on_cuda and "pnd-exact-drop" in cases:
        header["first_step_new_process_seconds"], header["import_seconds"] = first_step_seconds(args)
    t_ref = times["linear+dropout"]
    memory = {}
    for batch in [int(v) for v in args.memory_batches.split(",") if v]:
        for case in [c for c in MEMORY_CASES if c in cases] + (["naive-drop"] if "naive-drop" in cases and batch == b else []):
            memory[f"{case}@{batch}"] = cuda_peak(case, args, batch) if on_cuda else cpu_peak(case, args, batch)
            gc.collect()
    rows = [{"case": c, "seconds": times[c], "median_seconds": medians[c], "ratio_to_linear_dropout": times[c] / t_ref,
             "peak_extra_mib": memory.get(f"{c}@{b}", (None,))[0]} for c in cases]
    print(f"{'case':<22}{'fwd+bwd ms (fastest)':>21}{'ratio to Linear+Dropout':>25}{'peak extra MiB':>16}")
    for r in rows:
        mem = "" if r["peak_extra_mib"] is None else f"{r['peak_extra_mib']:.1f}"
        print(f"{r['case']:<22}{1e3 * r['seconds']:>21.1f}{r['ratio_to_linear_dropout']:>25.2f}{mem:>16}")
    print("peak extra MiB by batch: " + ", ".join(f"{k} {v[0]:.1f}" for k, v in memory.items()))
    if memory:
        print(f"memory measured as: {next(iter(memory.values()))[1]}")
    targets = {}
    if "pnd-exact-drop" in times:
        r = times["pnd-exact-drop"] / t_ref
        targets["exact drop <= 6x Linear+Dropout"] = (r, r <= 6)
        if "naive-drop" in times:
            s = times["naive-drop"] / times["pnd-exact-drop"]
            targets["exact drop >= 10x faster than naive"] = (s, s >= 10)
        if "chunked-drop" in times:
            targets["exact drop speed-up over the chunked path"] = (times["chunked-drop"] / times["pnd-exact-drop"], None)
    if "pnd-exact-gaussian" in times:
        r = times["pnd-exact-gaussian"] / t_ref
        targets["exact gaussian <= 15x Linear+Dropout"] = (r, r <= 15)
    if "pnd-exact-gaussian-conditional" in times:
        r = times["pnd-exact-gaussian-conditional"] / t_ref
        targets["exact gaussian (conditional draw) <= 10x Linear+Dropout"] = (r, r <= 10)
    for key, (mib, _) in memory.items():
        if key.startswith("pnd-exact"):
            targets[f"extra memory {key} < 64 MiB"] = (mib, mib < 64)
    for name, (value, met) in targets.items():
        status = "" if met is None else ("met" if met else "NOT met")
        print(f"target {name}: {value:.2f} {status}")
    if "first_step_new_process_seconds" in header:
        t = header["first_step_new_process_seconds"]
        targets["first forward+backward in a new process < 1 s"] = (t, t < 1.0)
    suffix = f"_{args.threads}threads" if args.threads and args.threads != 1 else ""
    out = args.json or os.path.join(HERE, "results", f"bench_pernodedrop_{torch.device(args.device).type}{suffix}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as fh:
        json.dump({"setup": header, "rows": rows, "memory_mib": {k: v[0] for k, v in memory.items()},
                   "memory_how": next(iter(memory.values()))[1] if memory else None,
                   "targets": {k: {"value": v, "met": m} for k, (v, m) in targets.items()}}, fh, indent=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
