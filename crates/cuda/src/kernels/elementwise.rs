//! Elementwise kernels over strided/broadcast layouts: unary, binary, compare, where, copies.
//! Op codes match `ops::elementwise` on the host; semantics match mlfw-core's `cpu/map.rs`.

/// CUDA C source (per dtype).
pub const SRC: &str = r#"
__device__ __forceinline__ T unary_op(int op, T tv, double p0, double p1) {
#if IS_FLOAT
  ACC x = lda(tv);
  ACC r;
  const double SQRT_2_OVER_PI = 0.7978845608028654;
  const double GELU_C = 0.044715;
  switch (op) {
    case 0: r = -x; break;
    case 1: r = m_fabs(x); break;
    case 2: r = m_exp(x); break;
    case 3: r = m_log(x); break;
    case 4: r = m_sqrt(x); break;
    case 5: r = (ACC)1 / m_sqrt(x); break;
    case 6: r = m_sin(x); break;
    case 7: r = m_cos(x); break;
    case 8: r = m_tanh(x); break;
    case 9: if (x >= (ACC)0) { r = (ACC)1 / ((ACC)1 + m_exp(-x)); } else { ACC e = m_exp(x); r = e / ((ACC)1 + e); } break;
    case 10: r = (x > (ACC)0 || x != x) ? x : (ACC)0; break;  // NaN passes through
    case 11: { double xf = (double)x; r = (ACC)(0.5 * xf * (1.0 + erf(xf * 0.70710678118654752440))); } break;
    case 12: { double xf = (double)x; r = (ACC)(0.5 * xf * (1.0 + tanh(SQRT_2_OVER_PI * (xf + GELU_C * xf * xf * xf)))); } break;
    case 13: r = x > (ACC)0 ? (ACC)1 : (x < (ACC)0 ? (ACC)-1 : x * (ACC)0); break;  // sign(NaN) = NaN
    case 14: r = (ACC)1 / x; break;
    case 15: r = x * x; break;
    case 16: r = x > (ACC)0 ? x : x * (ACC)p0; break;
    case 17: r = (p0 == 2.0) ? x * x : m_pow(x, (ACC)p0); break;
    case 18: r = (x != x) ? x : m_fmin(m_fmax(x, (ACC)p0), (ACC)p1); break;
    case 19: r = mul_rn(x, (ACC)p0) + (ACC)p1; break;
    case 20: r = m_erf(x); break;  // erff for f32/f16/bf16, erf for f64
    default: r = x;
  }
  return sta(r);
#else
  T x = tv;
  switch (op) {
    case 0: return (T)(0ULL - (u64)x);
    case 1: return ((i64)x < 0) ? (T)(0ULL - (u64)x) : x;  // (i64): no unsigned `x < 0`
    case 10: return (x > (T)0) ? x : (T)0;
    case 13: return (x > (T)0) ? (T)1 : (((i64)x < 0) ? (T)(0ULL - 1ULL) : (T)0);
    case 15: return std_(mul_rn(ldd(x), ldd(x)));
    case 18: return std_(fmin(fmax(ldd(x), p0), p1));
    case 19: return std_(mul_rn(ldd(x), p0) + p1);
    default: return x;
  }
#endif
}

extern "C" __global__ void ew_unary(u64 n, int op, double p0, double p1, const T* x, Lay lx, T* y) {
  GRID_LOOP(i, n) { y[i] = unary_op(op, x[lidx(lx, i)], p0, p1); }
}

__device__ __forceinline__ T binary_op(int op, T a, T b) {
#if IS_FLOAT
  ACC x = lda(a), y = lda(b);
  switch (op) {
    case 0: return sta(x + y);
    case 1: return sta(x - y);
    case 2: return sta(x * y);
    case 3: return sta(x / y);
    case 4: return (x != x || x > y) ? a : b;
    case 5: return (x != x || x < y) ? a : b;
    case 6: return sta(m_pow(x, y));
  }
  return a;
#elif IS_BOOL
  switch (op) {
    case 2: case 5: return (a && b) ? 1 : 0;
    case 0: case 4: return (a || b) ? 1 : 0;
  }
  return a;
#else
  switch (op) {
    case 0: return (T)((u64)a + (u64)b);
    case 1: return (T)((u64)a - (u64)b);
    case 2: return (T)((u64)a * (u64)b);
    case 4: return a > b ? a : b;
    case 5: return a < b ? a : b;
  }
  return a;
#endif
}

extern "C" __global__ void ew_binary(u64 n, int op, const T* a, Lay la, const T* b, Lay lb, T* y) {
  GRID_LOOP(i, n) { y[i] = binary_op(op, a[lidx(la, i)], b[lidx(lb, i)]); }
}

extern "C" __global__ void ew_cmp(u64 n, int op, const T* a, Lay la, const T* b, Lay lb, u8* y) {
  GRID_LOOP(i, n) {
    CMPT x = CMPV(a[lidx(la, i)]);
    CMPT z = CMPV(b[lidx(lb, i)]);
    bool r;
    switch (op) {
      case 0: r = x == z; break;
      case 1: r = x != z; break;
      case 2: r = x < z; break;
      case 3: r = x <= z; break;
      case 4: r = x > z; break;
      default: r = x >= z; break;
    }
    y[i] = r ? 1 : 0;
  }
}

extern "C" __global__ void ew_where(u64 n, const u8* c, Lay lc, const T* t, Lay lt, const T* f, Lay lf, T* y) {
  GRID_LOOP(i, n) { y[i] = c[lidx(lc, i)] ? t[lidx(lt, i)] : f[lidx(lf, i)]; }
}

// The view lx as a contiguous buffer.
extern "C" __global__ void ew_copy(u64 n, const T* x, Lay lx, T* y) {
  GRID_LOOP(i, n) { y[i] = x[lidx(lx, i)]; }
}

// Writes the view lx of x into the view ly of y (same shape).
extern "C" __global__ void ew_copy_into(u64 n, const T* x, Lay lx, T* y, Lay ly) {
  GRID_LOOP(i, n) { y[lidx(ly, i)] = x[lidx(lx, i)]; }
}
"#;
