//! Indexing kernels: index_select, gather, scatter_add, index_add. Indices are i64 and were
//! range-checked by mlfw-core before the call.

/// CUDA C source (per dtype).
pub const SRC: &str = r#"
// x contiguous [pre, size, post] -> y [pre, nids, post]; ids contiguous [nids].
extern "C" __global__ void index_select(u64 n, u64 size, u64 nids, u64 post, const T* x, const i64* ids, T* y) {
  GRID_LOOP(i, n) {
    u64 q = i % post, t = i / post;
    u64 j = t % nids, p = t / nids;
    y[i] = x[(p * size + (u64)ids[j]) * post + q];
  }
}

// Element i of the ids view `li`: returns its ids offset; *oa is the offset in `a` of the same
// coordinates leaving out `dim`; *ob the offset in `b` of the same coordinates (all dims).
__device__ __forceinline__ u64 walk(u64 i, const Lay& li, const Lay& a, int dim, u64* oa, const Lay& b, u64* ob) {
  u64 oi = li.off, x = a.off, y = b.off;
  for (int d = (int)li.rank - 1; d >= 0; --d) {
    u64 c = i % li.dims[d];
    i /= li.dims[d];
    oi += c * li.st[d];
    if (d != dim) x += c * a.st[d];
    y += c * b.st[d];
  }
  *oa = x;
  *ob = y;
  return oi;
}

// out[c] = x[c with c_dim = ids[c]], over the coordinates c of the ids view.
extern "C" __global__ void gather(u64 n, int dim, const T* x, Lay lx, const i64* ids, Lay li, T* y) {
  GRID_LOOP(i, n) {
    u64 ox, unused;
    u64 oi = walk(i, li, lx, dim, &ox, li, &unused);
    y[i] = x[ox + (u64)ids[oi] * lx.st[dim]];
  }
}

// out (contiguous copy of self, layout lo) at [c with c_dim = ids[c]] += src[c].
extern "C" __global__ void scatter_add(u64 n, int dim, T* out, Lay lo, const i64* ids, Lay li, const T* src, Lay ls) {
  GRID_LOOP(i, n) {
    u64 oo, os;
    u64 oi = walk(i, li, lo, dim, &oo, ls, &os);
    atomic_add(out + oo + (u64)ids[oi] * lo.st[dim], src[os]);
  }
}

// out contiguous [pre, size, post]; src contiguous [pre, nids, post]; out[p, ids[j], q] += src[p, j, q].
extern "C" __global__ void index_add(u64 n, u64 size, u64 nids, u64 post, T* out, const i64* ids, const T* src) {
  GRID_LOOP(i, n) {
    u64 q = i % post, t = i / post;
    u64 j = t % nids, p = t / nids;
    atomic_add(out + (p * size + (u64)ids[j]) * post + q, src[i]);
  }
}
"#;
