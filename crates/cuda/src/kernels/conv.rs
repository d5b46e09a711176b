//! im2col / col2im for the convolution fallback used when cuDNN is absent.

/// CUDA C source (per dtype; used for float dtypes).
pub const SRC: &str = r#"
struct ConvGeo { u64 N, C, H, W, OH, OW; int kh, kw, sh, sw, ph, pw, dh, dw; };

// x contiguous [N, C, H, W] -> col [N, C*kh*kw, OH*OW] (zeros where the window hits padding).
extern "C" __global__ void im2col(u64 n, ConvGeo g, const T* x, T* col) {
  GRID_LOOP(i, n) {
    u64 ow = i % g.OW, t = i / g.OW;
    u64 oh = t % g.OH; t /= g.OH;
    u64 kj = t % g.kw; t /= g.kw;
    u64 ki = t % g.kh; t /= g.kh;
    u64 c = t % g.C, b = t / g.C;
    long long h = (long long)(oh * g.sh) - g.ph + (long long)(ki * g.dh);
    long long w = (long long)(ow * g.sw) - g.pw + (long long)(kj * g.dw);
    bool in = h >= 0 && h < (long long)g.H && w >= 0 && w < (long long)g.W;
    col[i] = in ? x[((b * g.C + c) * g.H + (u64)h) * g.W + (u64)w] : sta((ACC)0);
  }
}

// col [N, C*kh*kw, OH*OW] -> dx [N, C, H, W], each input pixel summing the columns that read it.
extern "C" __global__ void col2im(u64 n, ConvGeo g, const T* col, T* dx) {
  GRID_LOOP(i, n) {
    u64 w = i % g.W, t = i / g.W;
    u64 h = t % g.H; t /= g.H;
    u64 c = t % g.C, b = t / g.C;
    ACC s = 0;
    for (int ki = 0; ki < g.kh; ++ki) {
      long long hh = (long long)h + g.ph - (long long)ki * g.dh;
      if (hh < 0 || hh % g.sh) continue;
      u64 oh = (u64)(hh / g.sh);
      if (oh >= g.OH) continue;
      for (int kj = 0; kj < g.kw; ++kj) {
        long long ww = (long long)w + g.pw - (long long)kj * g.dw;
        if (ww < 0 || ww % g.sw) continue;
        u64 ow = (u64)(ww / g.sw);
        if (ow >= g.OW) continue;
        u64 row = (b * g.C + c) * (u64)(g.kh * g.kw) + (u64)(ki * g.kw + kj);
        s += lda(col[row * g.OH * g.OW + oh * g.OW + ow]);
      }
    }
    dx[i] = sta(s);
  }
}
"#;
