#!/usr/bin/env bash
# Runs the bundled CUDA tests, then the bench, on the GPU machine; prints a short table last.
#   bash .device/run.sh [bin_dir] [--quick]
# Exit status: number of failed test binaries (0 = all passed).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/bin}"
quick="${2:-}"
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/nccl/lib:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
export RUST_BACKTRACE=1
out="${OUT:-/tmp}"
# bundle.sh ships gzipped binaries; unpack them next to the logs.
if ls "$bin"/*.gz >/dev/null 2>&1; then
  mkdir -p /tmp/mlfw-bin
  for z in "$bin"/*.gz; do gunzip -c "$z" >"/tmp/mlfw-bin/$(basename "$z" .gz)"; done
  chmod +x /tmp/mlfw-bin/*
  bin=/tmp/mlfw-bin
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true
declare -a rows
fails=0
for t in "$bin"/test-*; do
  name="$(basename "$t")"
  start=$(date +%s%N)
  if timeout 240 "$t" --test-threads=4 --nocapture >"$out/$name.log" 2>&1; then status=pass; else status=FAIL; fails=$((fails + 1)); fi
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  summary="$(grep -E '^test result' "$out/$name.log" | tail -1 | sed 's/test result: //; s/; finished.*//')"
  skipped="$(grep -c '^skipping' "$out/$name.log" || true)"
  rows+=("$(printf '| %-22s | %-4s | %6d ms | %s%s |' "$name" "$status" "$ms" "$summary" "$([ "$skipped" != 0 ] && echo " ($skipped skipped)")")")
  if [ "$status" = FAIL ]; then
    grep -E 'panicked|Error|error' -A3 "$out/$name.log" | head -40
  fi
done
echo "== PyTorch parity on cuda =="
fx="$here/fixtures"
if [ -x "$bin/torch_parity" ]; then
  timeout 120 "$bin/torch_parity" "$fx/ops.safetensors" --device cuda 2>&1 | tee "$out/torch_parity.log" | tail -3 || fails=$((fails + 1))
  timeout 120 "$bin/lenet_trace" "$fx" --device cuda 2>&1 | tee "$out/lenet_trace.log" | tail -9 || fails=$((fails + 1))
  timeout 120 "$bin/torch_parity" "$fx/special.safetensors" --device cuda 2>&1 | tee "$out/special_parity.log" | tail -3 || fails=$((fails + 1))
  for b in 64 256; do
    timeout 60 "$bin/mlfw" bench --model lenet5 --batch-size "$b" --device cuda 2>&1 | tee -a "$out/lenet_bench.log"
  done
  echo "== mlfw bench --compile on cuda: fused NVRTC kernels + CUDA graph, then plain replay (MLFW_CUDA_GRAPH=0) =="
  export MLFW_CUDA_CACHE=/tmp/mlfw-kernels
  for b in 64 256; do
    timeout 90 "$bin/mlfw" bench --model lenet5 --batch-size "$b" --device cuda --compile 2>&1 | tee -a "$out/lenet_compiled_bench.log"
    MLFW_CUDA_GRAPH=0 timeout 90 "$bin/mlfw" bench --model lenet5 --batch-size "$b" --device cuda --compile 2>&1 | tee -a "$out/lenet_compiled_bench.log"
  done
  for amp in none bf16; do
    timeout 120 "$bin/mlfw" bench --model resnet18_cifar --batch-size 256 --device cuda --amp "$amp" 2>&1 | tee -a "$out/resnet_bench.log"
  done
  echo "== mlfw train on cuda (mnist-mini, 10 epochs), resume, --amp bf16 =="
  runs=/tmp/mlfw-runs; rm -rf "$runs"; export MLFW_HOME=/tmp/mlfw-home
  timeout 300 "$bin/mlfw" train --model lenet5 --dataset mnist-mini --device cuda --epochs 10 --out "$runs/full" --json 2>&1 | tail -1 | tee "$out/train.log" || fails=$((fails + 1))
  timeout 120 "$bin/mlfw" train --device cuda --epochs 2 --max-steps 50 --quiet --out "$runs/a" || fails=$((fails + 1))
  timeout 120 "$bin/mlfw" train --device cuda --epochs 1 --max-steps 50 --quiet --out "$runs/b" || fails=$((fails + 1))
  timeout 120 "$bin/mlfw" train --resume "$runs/b" --epochs 2 --quiet || fails=$((fails + 1))
  if cmp -s "$runs/a/last.safetensors" "$runs/b/last.safetensors"; then echo "resume on cuda: bit-identical"; else echo "resume on cuda: DIFFERENT"; fails=$((fails + 1)); fi
  timeout 120 "$bin/mlfw" train --device cuda --epochs 1 --amp bf16 --out "$runs/amp" --json 2>&1 | tail -1 | tee "$out/train_amp.log" || fails=$((fails + 1))
fi
echo "== bench =="
timeout 240 "$bin/bench" $quick 2>&1 | tee "$out/bench.log"
echo
echo "| test binary            | ok   | time      | result |"
echo "|------------------------|------|-----------|--------|"
printf '%s\n' "${rows[@]}"
exit "$fails"
