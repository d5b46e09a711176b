#!/usr/bin/env bash
# Builds the CUDA test binaries and the bench here (no GPU needed) and copies them, with
# run.sh, into a folder for one GPU call (default: <repo>/.device, which git ignores).
#   crates/cuda/device/bundle.sh [out_dir] [profile: release|dev]
# Then on the GPU machine: carry ".device" and run `bash .device/run.sh`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
out="${1:-$root/.device}"
profile="${2:-release}"
cd "$root"
flag=(--profile "$profile")
mkdir -p "$out/bin"
rm -f "$out"/bin/*
# Integration-test binaries: cargo prints "Executable tests/x.rs (target/.../deps/x-hash)".
# (The library's unit tests need no GPU and stay here.) Binaries are stripped and gzipped
# to fit the 64 MiB a device call may carry.
cargo test -p mlfw-cuda "${flag[@]}" --tests --no-run 2>&1 | tee "$out/build.log" |
  sed -n 's/.*Executable tests\/.*(\(.*\))$/\1/p' | while read -r exe; do
    name="$(basename "$exe")"
    strip -o "$out/bin/test-${name%-*}" "$exe"
  done
# The NCCL process group (world size 1 on one GPU).
cargo test -p mlfw-distributed --features nccl "${flag[@]}" --test nccl --no-run 2>&1 | tee -a "$out/build.log" |
  sed -n 's/.*Executable tests\/.*(\(.*\))$/\1/p' | while read -r exe; do
    strip -o "$out/bin/test-nccl" "$exe"
  done
cargo build -p mlfw-cuda "${flag[@]}" --example bench
dir="$( [ "$profile" = dev ] && echo debug || echo "$profile")"
strip -o "$out/bin/bench" "target/$dir/examples/bench"
# The whole-framework checks on the GPU: the PyTorch ops parity runner, the LeNet-5 trace,
# and `mlfw bench`, with the fixtures they read.
cargo build -p mlfw-nn "${flag[@]}" --example torch_parity
cargo build -p mlfw-optim "${flag[@]}" --example lenet_trace
cargo build -p mlfw-cli "${flag[@]}"
for x in examples/torch_parity examples/lenet_trace mlfw; do
  strip -o "$out/bin/$(basename "$x")" "target/$dir/$x"
done
mkdir -p "$out/fixtures"
cp tests/fixtures/torch-ref/{ops,special,lenet5_init,lenet5_trace}.safetensors "$out/fixtures/"
gzip -f "$out"/bin/*
cp "$here/run.sh" "$out/run.sh"
ls -la "$out/bin"
du -sh "$out"
