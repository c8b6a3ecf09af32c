#!/usr/bin/env bash
# The CUDA paths in one go, on a machine with a GPU (under five minutes):
#   1. the GPU tests (pytest -m gpu: the Triton kernels against the reference masks, the
#      layer's law, torch.compile on CUDA),
#   2. the layer benchmark (fused exact Bernoulli / Gaussian against nn.Linear + nn.Dropout,
#      the chunked path and the naive full-mask layer; peak extra memory at batch 256 and 1024),
#   3. the Monte Carlo benchmark (per-draw cost against one forward product).
# It prints the ratios and writes benchmarks/results/bench_pernodedrop_cuda.json and
# benchmarks/results/montecarlo_cuda.json.  Run from anywhere: bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("gpu_check: no CUDA device here; nothing to check")
print(f"gpu_check: {torch.cuda.get_device_name()}, torch {torch.__version__}")
try:
    import triton
    print(f"gpu_check: triton {triton.__version__}")
except ImportError:
    print("gpu_check: triton is not installed: CUDA takes the chunked torch route (pip install triton)")
PY
echo "== GPU tests"
timeout 150 python -m pytest -q -p no:cacheprovider -m gpu tests/
echo "== layer benchmark (CUDA)"
timeout 100 python benchmarks/bench_pernodedrop.py --device cuda --repeats 5
echo "== Monte Carlo benchmark (CUDA)"
timeout 40 python benchmarks/bench_montecarlo.py --device cuda --draws 2000 --repeats 3
