//! Pooling over contiguous NCHW planes (PyTorch's window rules), with backward passes that
//! scatter into a zeroed input gradient with atomics (windows may overlap).

/// CUDA C source (per dtype; used for float dtypes).
pub const SRC: &str = r#"
__device__ __forceinline__ i64 imin(i64 a, i64 b) { return a < b ? a : b; }
__device__ __forceinline__ i64 imax(i64 a, i64 b) { return a > b ? a : b; }

struct PoolGeo { u64 H, W, OH, OW; int kh, kw, sh, sw, ph, pw, dh, dw; int count_include_pad; int pad_; };

// Max pooling; idx = h * W + w within the plane (PyTorch: later NaNs win, first max wins).
extern "C" __global__ void max_pool_fwd(u64 n, PoolGeo g, const T* x, T* y, i64* idx) {
  GRID_LOOP(i, n) {
    u64 ow = i % g.OW, t = i / g.OW;
    u64 oh = t % g.OH, plane = t / g.OH;
    const T* xp = x + plane * g.H * g.W;
    i64 h0 = (i64)oh * g.sh - g.ph, w0 = (i64)ow * g.sw - g.pw;
    i64 h1 = imin(h0 + (i64)(g.kh - 1) * g.dh + 1, (i64)g.H);
    i64 w1 = imin(w0 + (i64)(g.kw - 1) * g.dw + 1, (i64)g.W);
    while (h0 < 0) h0 += g.dh;
    while (w0 < 0) w0 += g.dw;
    i64 bi = h0 * (i64)g.W + w0;
    ACC best = ACC_NEG_INF;
    for (i64 h = h0; h < h1; h += g.dh) {
      for (i64 w = w0; w < w1; w += g.dw) {
        i64 k = h * (i64)g.W + w;
        ACC v = lda(xp[k]);
        if (v > best || v != v) { best = v; bi = k; }
      }
    }
    y[i] = sta(best);
    idx[i] = bi;
  }
}

// dx (zeroed, [planes, H*W]) += g at the recorded indices.
extern "C" __global__ void max_pool_bwd(u64 n, u64 HW, u64 OHW, const T* go, const i64* idx, T* dx) {
  GRID_LOOP(i, n) {
    u64 plane = i / OHW;
    atomic_add(dx + plane * HW + (u64)idx[i], go[i]);
  }
}

// Window of output (oh, ow): clipped bounds and the divisor (PyTorch avg_pool2d).
__device__ __forceinline__ bool avg_window(const PoolGeo& g, u64 oh, u64 ow, i64* hs, i64* he, i64* ws, i64* we, ACC* div) {
  i64 h0 = (i64)oh * g.sh - g.ph, w0 = (i64)ow * g.sw - g.pw;
  i64 h1 = imin(h0 + (i64)g.kh, (i64)g.H + g.ph), w1 = imin(w0 + (i64)g.kw, (i64)g.W + g.pw);
  i64 pool = (h1 - h0) * (w1 - w0);
  h0 = imax(h0, (i64)0); w0 = imax(w0, (i64)0);
  h1 = imin(h1, (i64)g.H); w1 = imin(w1, (i64)g.W);
  *hs = h0; *he = h1; *ws = w0; *we = w1;
  *div = (ACC)(g.count_include_pad ? pool : (h1 - h0) * (w1 - w0));
  return h0 < h1 && w0 < w1;
}

extern "C" __global__ void avg_pool_fwd(u64 n, PoolGeo g, const T* x, T* y) {
  GRID_LOOP(i, n) {
    u64 ow = i % g.OW, t = i / g.OW;
    u64 oh = t % g.OH, plane = t / g.OH;
    const T* xp = x + plane * g.H * g.W;
    i64 hs, he, ws, we; ACC div;
    if (!avg_window(g, oh, ow, &hs, &he, &ws, &we, &div)) { y[i] = sta((ACC)0); continue; }
    ACC s = 0;
    for (i64 h = hs; h < he; ++h) for (i64 w = ws; w < we; ++w) s += lda(xp[h * (i64)g.W + w]);
    y[i] = sta(s / div);
  }
}

extern "C" __global__ void avg_pool_bwd(u64 n, PoolGeo g, const T* go, T* dx) {
  GRID_LOOP(i, n) {
    u64 ow = i % g.OW, t = i / g.OW;
    u64 oh = t % g.OH, plane = t / g.OH;
    i64 hs, he, ws, we; ACC div;
    if (!avg_window(g, oh, ow, &hs, &he, &ws, &we, &div)) continue;
    T v = sta(lda(go[i]) / div);
    T* dp = dx + plane * g.H * g.W;
    for (i64 h = hs; h < he; ++h) for (i64 w = ws; w < we; ++w) atomic_add(dp + h * (i64)g.W + w, v);
  }
}

// Adaptive windows: rows floor(o*In/Out) up to ceil((o+1)*In/Out), exclusive.
__device__ __forceinline__ u64 ad_start(u64 o, u64 out, u64 in) { return (o * in) / out; }
__device__ __forceinline__ u64 ad_end(u64 o, u64 out, u64 in) { return ((o + 1) * in + out - 1) / out; }

extern "C" __global__ void adaptive_avg_fwd(u64 n, u64 H, u64 W, u64 OH, u64 OW, const T* x, T* y) {
  GRID_LOOP(i, n) {
    u64 ow = i % OW, t = i / OW;
    u64 oh = t % OH, plane = t / OH;
    const T* xp = x + plane * H * W;
    u64 hs = ad_start(oh, OH, H), he = ad_end(oh, OH, H);
    u64 ws = ad_start(ow, OW, W), we = ad_end(ow, OW, W);
    ACC s = 0;
    for (u64 h = hs; h < he; ++h) for (u64 w = ws; w < we; ++w) s += lda(xp[h * W + w]);
    y[i] = sta(s / (ACC)((he - hs) * (we - ws)));
  }
}

extern "C" __global__ void adaptive_avg_bwd(u64 n, u64 H, u64 W, u64 OH, u64 OW, const T* go, T* dx) {
  GRID_LOOP(i, n) {
    u64 ow = i % OW, t = i / OW;
    u64 oh = t % OH, plane = t / OH;
    u64 hs = ad_start(oh, OH, H), he = ad_end(oh, OH, H);
    u64 ws = ad_start(ow, OW, W), we = ad_end(ow, OW, W);
    T v = sta(lda(go[i]) / (ACC)((he - hs) * (we - ws)));
    T* dp = dx + plane * H * W;
    for (u64 h = hs; h < he; ++h) for (u64 w = ws; w < we; ++w) atomic_add(dp + h * W + w, v);
  }
}
"#;
