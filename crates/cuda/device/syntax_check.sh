#!/usr/bin/env bash
# Parses every NVRTC kernel module with g++ and a CUDA shim (device/cuda_shim.h): catches
# syntax and type slips on machines without CUDA. Not a substitute for NVRTC on a GPU.
#   crates/cuda/device/syntax_check.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="$(mktemp -d)"
MLFW_DUMP_KERNELS="$dir" cargo test -q -p mlfw-cuda --lib dump_sources_when_asked >/dev/null
fails=0
for f in "$dir"/*.cu; do
  if ! g++ -std=c++17 -fsyntax-only -Wall -Wno-unused-variable -Wno-unused-function \
      -Wno-type-limits -include "$here/cuda_shim.h" -x c++ "$f" 2>"$f.err"; then
    echo "== $(basename "$f")"; head -20 "$f.err"; fails=$((fails + 1))
  elif [ -s "$f.err" ]; then
    echo "== $(basename "$f") (warnings)"; head -10 "$f.err"
  fi
done
echo "$(ls "$dir"/*.cu | wc -l) modules parsed, $fails failed"
rm -rf "$dir"
exit "$fails"
