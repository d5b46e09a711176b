#!/usr/bin/env bash
# Runs the bundled CUDA tests, then the bench, on the GPU machine; prints a short table last.
#   bash .device/run.sh [bin_dir] [--quick]
# Exit status: number of failed test binaries (0 = all passed).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${1:-$here/bin}"
quick="${2:-}"
export LD_LIBRARY_PATH=/usr/local/cuda-13.0/targets/x86_64-linux/lib:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cu13/lib:/opt/torch/.venv/lib/python3.12/site-packages/nvidia/cudnn/lib:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
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
  for b in 64 256; do
    timeout 60 "$bin/mlfw" bench --model lenet5 --batch-size "$b" --device cuda 2>&1 | tee -a "$out/lenet_bench.log"
  done
fi
echo "== bench =="
timeout 240 "$bin/bench" $quick 2>&1 | tee "$out/bench.log"
echo
echo "| test binary            | ok   | time      | result |"
echo "|------------------------|------|-----------|--------|"
printf '%s\n' "${rows[@]}"
exit "$fails"
