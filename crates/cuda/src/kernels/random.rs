//! Counter-based random numbers, bit-identical to `mlfw_core::random` (compiled with
//! `--fmad=false` so that `lo + (hi - lo) * u` rounds exactly as on the CPU).

/// CUDA C source (per dtype).
pub const SRC: &str = r#"
extern "C" __global__ void rand_uniform(u64 n, double lo, double hi, u64 seed, u64 off, T* y) {
  GRID_LOOP(i, n) { y[i] = std_(lo + (hi - lo) * uniform_at(seed, off + i)); }
}

// Element i uses counters 2k and 2k+1 with k = off + i (Box-Muller), as normal_at.
extern "C" __global__ void rand_normal(u64 n, double mean, double sd, u64 seed, u64 off, T* y) {
  GRID_LOOP(i, n) {
    u64 k = off + i;
    double u1 = uniform_at(seed, 2 * k);
    double u2 = uniform_at(seed, 2 * k + 1);
    double z = sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
    y[i] = std_(mean + sd * z);
  }
}
"#;
