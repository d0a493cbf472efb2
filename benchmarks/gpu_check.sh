#!/usr/bin/env bash
# The GPU check of issue 19, one script (under 8 minutes on one GPU): cells per minute of
# the one engine for the MNIST-1D MLP and CNN and the CIFAR-10 ResNet (random tensors of
# its shape) at K = 1, 4, 16, 64 stacked, float32 and bf16, with --compile, and the
# MNIST-1D optimizer sweep at --per-device 1, 2, 4; the GPU's utilisation is sampled
# alongside (nvidia-smi, once a second). Writes the tables to $OUT (default: benchmarks/)
# for RESULTS.md.
#
#   benchmarks/gpu_check.sh             # on a GPU machine
#   benchmarks/gpu_check.sh --dry-run   # on a CPU: every path once, tiny sizes, seconds
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-benchmarks}"
mkdir -p "$OUT"
PY="${PYTHON:-.venv/bin/python}"
if [[ "${1:-}" != "--dry-run" ]] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/gpu_device.txt"
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits \
    -l 1 > "$OUT/gpu_utilisation.csv" &
  SAMPLER=$!
  trap 'kill $SAMPLER 2>/dev/null || true' EXIT
fi
"$PY" benchmarks/gpu.py "$@" --out "$OUT/gpu_results.md"
if [[ -n "${SAMPLER:-}" ]]; then
  kill "$SAMPLER" 2>/dev/null || true
  awk -F', ' '{n++; u+=$2; if ($2>m) m=$2} END {if (n) printf "\nGPU utilisation over %d s: mean %.0f%%, max %d%%\n", n, u/n, m}' \
    "$OUT/gpu_utilisation.csv" | tee -a "$OUT/gpu_results.md"
fi
