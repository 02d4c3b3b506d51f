#!/usr/bin/env bash
# One short GPU check for a lent GPU machine (docs/results.md, "On a GPU"): the CUDA tests,
# the lean-vs-naive loss table, training and rendering speed, all into $OUT (or out/gpu).
# The GPU image has PyTorch but no mediapipe: only tests and benches that need no face mesh run.
# Each step has its own time limit, so one that hangs or fails leaves the others' figures.
# Usage (from the repository root): PYTHONPATH=. bash puppet/tools/gpu_check.sh
# A real training run on the same machine: puppet/tools/gpu_run.py.
set -uo pipefail
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$OUT/gpu.txt"
timeout 90 "$PY" -m pytest -q -m cuda tests/test_cuda.py -k "not rendering_on_gpu" 2>&1 | tee "$OUT/cuda_tests.txt"
timeout 60 "$PY" -m puppet bench loss --sizes 1024,4096,16384,65536 --device cuda --json "$OUT/loss.json" 2>&1 | tee "$OUT/loss.txt"
timeout 60 "$PY" -m puppet bench train --models default-128,large-256 --steps 30 --device cuda \
    --json "$OUT/train.json" 2>&1 | tee "$OUT/train.txt"
timeout 60 "$PY" -m puppet bench render --device cuda --frames 128 --json "$OUT/render.json" 2>&1 | tee "$OUT/render.txt"
