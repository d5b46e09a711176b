//! The header every kernel module starts with: index types, the strided-layout struct,
//! grid-stride loops, math overloads, and conversions for every dtype (f16/bf16 without
//! `cuda_fp16.h`, so NVRTC needs no include path).

/// CUDA C source of the common header.
pub const COMMON: &str = r#"
typedef unsigned long long u64;
typedef long long i64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;

#define MAXD 12
// Mirrors mlfw_cuda::lay::Lay (repr(C)).
struct Lay { u64 off; u32 rank; u32 contig; u64 dims[MAXD]; u64 st[MAXD]; };

// Storage index of logical (row-major) element i.
__device__ __forceinline__ u64 lidx(const Lay& l, u64 i) {
  if (l.contig) return l.off + i;
  u64 o = l.off;
  for (int d = (int)l.rank - 1; d >= 0; --d) {
    u64 n = l.dims[d];
    u64 q = i / n;
    o += (i - q * n) * l.st[d];
    i = q;
  }
  return o;
}

#define GRID_LOOP(i, n) \
  for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (u64)(n); i += (u64)blockDim.x * gridDim.x)

// Math on float and double by overloading (no reliance on std overloads).
#define MF1(name, f, d) \
  __device__ __forceinline__ float name(float x) { return f(x); } \
  __device__ __forceinline__ double name(double x) { return d(x); }
MF1(m_exp, expf, exp)
MF1(m_log, logf, log)
MF1(m_sqrt, sqrtf, sqrt)
MF1(m_sin, sinf, sin)
MF1(m_cos, cosf, cos)
MF1(m_tanh, tanhf, tanh)
MF1(m_erf, erff, erf)
MF1(m_fabs, fabsf, fabs)
__device__ __forceinline__ float m_pow(float x, float y) { return powf(x, y); }
__device__ __forceinline__ double m_pow(double x, double y) { return pow(x, y); }
__device__ __forceinline__ float m_fmax(float x, float y) { return fmaxf(x, y); }
__device__ __forceinline__ double m_fmax(double x, double y) { return fmax(x, y); }
__device__ __forceinline__ float m_fmin(float x, float y) { return fminf(x, y); }
__device__ __forceinline__ double m_fmin(double x, double y) { return fmin(x, y); }
// Unfused multiply (the CPU computes x * m + a with two roundings).
__device__ __forceinline__ float mul_rn(float x, float y) { return __fmul_rn(x, y); }
__device__ __forceinline__ double mul_rn(double x, double y) { return __dmul_rn(x, y); }
__device__ __forceinline__ float neg_inf_f() { return __int_as_float(0xff800000); }
__device__ __forceinline__ double neg_inf_d() { return __longlong_as_double(0xfff0000000000000LL); }

// ---- half and bfloat16, stored as u16 ----
__device__ __forceinline__ float f16_to_f(u16 h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ u16 f_to_f16(float f) { u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
__device__ __forceinline__ float bf16_to_f(u16 h) { return __uint_as_float(((u32)h) << 16); }
__device__ __forceinline__ u16 f_to_bf16(float f) {
  u32 u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40u);  // quiet NaN, as the half crate
  u += 0x7fffu + ((u >> 16) & 1u);                                       // round to nearest even
  return (u16)(u >> 16);
}
// double -> float rounding to odd: a following round to 16 bits then equals one direct rounding.
__device__ __forceinline__ float d_to_f_odd(double d) {
  float f = __double2float_rz(d);
  if (d == d && (double)f != d) f = __uint_as_float(__float_as_uint(f) | 1u);
  return f;
}

// ---- per-dtype conversions: lda_X/sta_X to/from the compute type, ldd_X/std_X to/from double.
// std_X follows mlfw_core::WithDType::from_f64 (Rust `as` casts: saturating, NaN -> 0).
__device__ __forceinline__ float  lda_f32(float x) { return x; }
__device__ __forceinline__ float  sta_f32(float x) { return x; }
__device__ __forceinline__ double ldd_f32(float x) { return (double)x; }
__device__ __forceinline__ float  std_f32(double x) { return (float)x; }

__device__ __forceinline__ double lda_f64(double x) { return x; }
__device__ __forceinline__ double sta_f64(double x) { return x; }
__device__ __forceinline__ double ldd_f64(double x) { return x; }
__device__ __forceinline__ double std_f64(double x) { return x; }

__device__ __forceinline__ float  lda_f16(u16 x) { return f16_to_f(x); }
__device__ __forceinline__ u16    sta_f16(float x) { return f_to_f16(x); }
__device__ __forceinline__ double ldd_f16(u16 x) { return (double)f16_to_f(x); }
__device__ __forceinline__ u16    std_f16(double x) { return f_to_f16(d_to_f_odd(x)); }

__device__ __forceinline__ float  lda_bf16(u16 x) { return bf16_to_f(x); }
__device__ __forceinline__ u16    sta_bf16(float x) { return f_to_bf16(x); }
__device__ __forceinline__ double ldd_bf16(u16 x) { return (double)bf16_to_f(x); }
__device__ __forceinline__ u16    std_bf16(double x) { return f_to_bf16(d_to_f_odd(x)); }

__device__ __forceinline__ double ldd_i64(i64 x) { return (double)x; }
__device__ __forceinline__ i64 std_i64(double x) {
  if (x != x) return 0;
  if (x >= 9223372036854775808.0) return 9223372036854775807LL;
  if (x <= -9223372036854775808.0) return (-9223372036854775807LL - 1);
  return (i64)x;
}
__device__ __forceinline__ double lda_i64(i64 x) { return (double)x; }
__device__ __forceinline__ i64 sta_i64(double x) { return std_i64(x); }

__device__ __forceinline__ double ldd_u8(u8 x) { return (double)x; }
__device__ __forceinline__ u8 std_u8(double x) {
  if (x != x || x <= 0.0) return 0;
  if (x >= 255.0) return 255;
  return (u8)x;
}
__device__ __forceinline__ double lda_u8(u8 x) { return (double)x; }
__device__ __forceinline__ u8 sta_u8(double x) { return std_u8(x); }

__device__ __forceinline__ double ldd_bool(u8 x) { return x ? 1.0 : 0.0; }
__device__ __forceinline__ u8 std_bool(double x) { return x != 0.0 ? 1 : 0; }
__device__ __forceinline__ double lda_bool(u8 x) { return x ? 1.0 : 0.0; }
__device__ __forceinline__ u8 sta_bool(double x) { return std_bool(x); }

// ---- counter-based random numbers, identical to mlfw_core::random ----
__device__ __forceinline__ u64 splitmix64(u64 z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
__device__ __forceinline__ double uniform_at(u64 seed, u64 c) {
  u64 h = splitmix64(seed ^ splitmix64(c));
  return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}
"#;
