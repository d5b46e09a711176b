// Lets g++ compile the NVRTC kernel sources for the host: `syntax_check.sh` parses them, and
// the host-emulation unit tests (src/kernels/host_emulation.rs) run the grid-stride kernels
// single-threaded (blockDim = gridDim = 1, reductions with BS = 1) against the CPU backend.
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <cstring>
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define asm(...)
struct dim3_ { unsigned int x, y, z; };
static dim3_ blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0}, blockDim = {1, 1, 1}, gridDim = {1, 1, 1};
inline void __syncthreads() {}
template <typename To, typename From> inline To bits_(From f) { To t; std::memcpy(&t, &f, sizeof t); return t; }
inline float __int_as_float(int x) { return bits_<float>(x); }
inline float __uint_as_float(unsigned int x) { return bits_<float>(x); }
inline unsigned int __float_as_uint(float x) { return bits_<unsigned int>(x); }
inline double __longlong_as_double(long long x) { return bits_<double>(x); }
inline float __double2float_rz(double x) {
  int old = std::fegetround();
  std::fesetround(FE_TOWARDZERO);
  volatile double v = x;
  volatile float f = (float)v;
  std::fesetround(old);
  return f;
}
inline float __fmul_rn(float a, float b) { return a * b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline float atomicAdd(float* p, float v) { float o = *p; *p += v; return o; }
inline double atomicAdd(double* p, double v) { double o = *p; *p += v; return o; }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) { unsigned long long o = *p; *p += v; return o; }
inline unsigned int atomicCAS(unsigned int* p, unsigned int c, unsigned int v) { unsigned int o = *p; if (o == c) *p = v; return o; }
// f16 <-> f32 for the host (the kernels use PTX cvt instructions).
inline float shim_h2f(unsigned short h) { _Float16 x; std::memcpy(&x, &h, 2); return (float)x; }
inline unsigned short shim_f2h(float f) { _Float16 x = (_Float16)f; unsigned short h; std::memcpy(&h, &x, 2); return h; }
using std::min; using std::max; using std::isnan;
