//! Row reductions (one block of `BS` threads per output row, shared-memory tree) and
//! row-wise (log-)softmax. The host permutes reduced dims last, so row `r` is logical
//! elements `[r*inner, (r+1)*inner)` of the layout `lx`.

/// CUDA C source (per dtype).
pub const SRC: &str = r#"
#ifndef BS
#define BS 256  // must equal ops::THREADS
#endif

// Sum: floats accumulate in double (as the CPU does); integers in wrapping 64-bit.
extern "C" __global__ void reduce_sum(u64 rows, u64 inner, const T* x, Lay lx, T* y) {
  __shared__ SUMT sh[BS];
  for (u64 row = blockIdx.x; row < rows; row += gridDim.x) {
    u64 base = row * inner;
    SUMT acc = 0;
    for (u64 j = threadIdx.x; j < inner; j += BS) acc += SUM_LOAD(x[lidx(lx, base + j)]);
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned int s = BS / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
      __syncthreads();
    }
    if (threadIdx.x == 0) y[row] = SUM_STORE(sh[0]);
    __syncthreads();
  }
}

// Max/min propagating NaN (the first NaN met wins, as on the CPU). inner >= 1.
__device__ __forceinline__ T pick_mm(T a, T b, int is_min) {
  if (ISNAN(a)) return a;
  if (ISNAN(b)) return b;
  if (is_min) return CMPV(a) <= CMPV(b) ? a : b;
  return CMPV(a) >= CMPV(b) ? a : b;
}

extern "C" __global__ void reduce_maxmin(u64 rows, u64 inner, int is_min, const T* x, Lay lx, T* y) {
  __shared__ T sh[BS];
  for (u64 row = blockIdx.x; row < rows; row += gridDim.x) {
    u64 base = row * inner;
    T acc = x[lidx(lx, base)];
    for (u64 j = threadIdx.x; j < inner; j += BS) acc = pick_mm(acc, x[lidx(lx, base + j)], is_min);
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned int s = BS / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) sh[threadIdx.x] = pick_mm(sh[threadIdx.x], sh[threadIdx.x + s], is_min);
      __syncthreads();
    }
    if (threadIdx.x == 0) y[row] = sh[0];
    __syncthreads();
  }
}

// Arg max/min: first index of the extreme; a NaN is the extreme (first NaN wins).
__device__ __forceinline__ bool arg_better(T b, u64 ib, T a, u64 ia, int is_min) {
  bool an = ISNAN(a), bn = ISNAN(b);
  if (an || bn) return (an && bn) ? (ib < ia) : bn;
  if (CMPV(b) == CMPV(a)) return ib < ia;
  return is_min ? (CMPV(b) < CMPV(a)) : (CMPV(b) > CMPV(a));
}

extern "C" __global__ void reduce_arg(u64 rows, u64 inner, int is_min, const T* x, Lay lx, i64* y) {
  __shared__ T sv[BS];
  __shared__ u64 si[BS];
  for (u64 row = blockIdx.x; row < rows; row += gridDim.x) {
    u64 base = row * inner;
    T best = x[lidx(lx, base)];
    u64 bi = 0;
    for (u64 j = threadIdx.x; j < inner; j += BS) {
      T v = x[lidx(lx, base + j)];
      if (arg_better(v, j, best, bi, is_min)) { best = v; bi = j; }
    }
    sv[threadIdx.x] = best;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (unsigned int s = BS / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s && arg_better(sv[threadIdx.x + s], si[threadIdx.x + s], sv[threadIdx.x], si[threadIdx.x], is_min)) {
        sv[threadIdx.x] = sv[threadIdx.x + s];
        si[threadIdx.x] = si[threadIdx.x + s];
      }
      __syncthreads();
    }
    if (threadIdx.x == 0) y[row] = (i64)si[0];
    __syncthreads();
  }
}

// (Log-)softmax over rows of length `row` (the last dim of lx); y contiguous.
// Max ignores NaN (as Rust's f32::max); an all -inf (or all NaN) row shifts by 0 (so gives
// NaN from 0/0), any other max is subtracted as is: a +inf max makes the row NaN, as in
// PyTorch. Sums in double.
extern "C" __global__ void softmax_rows(u64 rows, u64 row, int logm, const T* x, Lay lx, T* y) {
  __shared__ ACC smax[BS];
  __shared__ double ssum[BS];
  for (u64 r = blockIdx.x; r < rows; r += gridDim.x) {
    u64 base = r * row;
    ACC m = ACC_NEG_INF;
    for (u64 j = threadIdx.x; j < row; j += BS) m = m_fmax(m, lda(x[lidx(lx, base + j)]));
    smax[threadIdx.x] = m;
    __syncthreads();
    for (unsigned int s = BS / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) smax[threadIdx.x] = m_fmax(smax[threadIdx.x], smax[threadIdx.x + s]);
      __syncthreads();
    }
    m = smax[0];
    if (m == ACC_NEG_INF) m = (ACC)0;
    double acc = 0.0;
    for (u64 j = threadIdx.x; j < row; j += BS) acc += (double)m_exp(lda(x[lidx(lx, base + j)]) - m);
    ssum[threadIdx.x] = acc;
    __syncthreads();
    for (unsigned int s = BS / 2; s > 0; s >>= 1) {
      if (threadIdx.x < s) ssum[threadIdx.x] += ssum[threadIdx.x + s];
      __syncthreads();
    }
    double tot = ssum[0];
    if (logm) {
      ACC ls = (ACC)log(tot);
      for (u64 j = threadIdx.x; j < row; j += BS) y[base + j] = sta(lda(x[lidx(lx, base + j)]) - m - ls);
    } else {
      ACC inv = (ACC)(1.0 / tot);
      for (u64 j = threadIdx.x; j < row; j += BS) y[base + j] = sta(m_exp(lda(x[lidx(lx, base + j)]) - m) * inv);
    }
    __syncthreads();
  }
}
"#;
