#!/usr/bin/env bash
# The GPU checks as one short script (GPU time is short). Run from the repository root on a machine with CUDA.
# Python: $PYTHON, else .venv-bench/bin/python (`benchmarks/setup-env`: torch 2.14.1 is a CUDA build, with the real
# torchvision, timm and Ultralytics for the `packages` target), else `python` (netspec installed with
# `pip install -e '.[bench]'` beside a CUDA torch; the packages target then lists what it skipped).
# Writes into ${OUT:-gpu-results}/. Each step is bounded so the whole script fits about 10 minutes.
set -u
py=${PYTHON:-$([ -x .venv-bench/bin/python ] && echo .venv-bench/bin/python || echo python)}
out=${OUT:-gpu-results}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1
for dtype in float32 bfloat16 float16; do  # memory, kernels (SDPA never the math fallback), networks (autocast)
  timeout 150 "$py" benchmarks/run.py --device cuda --dtype "$dtype" --quick --channels-last \
    --only memory,kernels,networks,packages --output "$out/RESULTS-$dtype.md" > "$out/run-$dtype.log" 2>&1
done
for spec in resnet50 se_resnet50; do  # images/s at batch 256, 224x224, AMP, channels_last
  for amp in bf16 fp16; do
    timeout 45 "$py" -m netspec bench "specs/$spec.yaml" --device cuda --batch 256 --size 224 --amp "$amp" \
      --channels-last --steps 20 --warmup 5 --json > "$out/bench-$spec-$amp.json" 2> "$out/bench-$spec-$amp.err"
  done
done
ls -l "$out"
