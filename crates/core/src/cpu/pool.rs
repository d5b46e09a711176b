//! Max, average and adaptive-average 2-D pooling over NCHW tensors, with backward passes.
//!
//! Inputs are made contiguous, then each `H×W` plane (one per (n, c)) is pooled on its own;
//! planes are spread over the thread pool when the tensor is large. Window rules follow
//! PyTorch's CPU kernels: max pooling pads with −inf, propagates NaN and records the first
//! maximum as `h * W + w`; average pooling clips windows to the padded input for the
//! `count_include_pad` divisor (so ceil_mode's overhanging windows count only real + pad cells);
//! adaptive windows are `[floor(i·H/oH), ceil((i+1)·H/oH))` (those two in `pool_avg.rs`).
//! f16/bf16 compute in f32.

use super::map::{contiguous_cow, to_dtype};
pub(crate) use into::{max_pool2d_backward_f32_into, max_pool2d_f32_into};

#[path = "pool_avg.rs"]
mod avg;
#[path = "pool_into.rs"]
mod into;
use crate::parallel::{for_each_chunk_mut, for_each_chunk_pair_mut, num_threads, PAR_THRESHOLD};
use crate::params::Pool2dParams;
use crate::{CpuStorage, DType, Error, Layout, Result, Shape};
pub(crate) use avg::{
    adaptive_avg_pool2d, adaptive_avg_pool2d_backward, avg_pool2d, avg_pool2d_backward,
};

/// Plane geometry: input `h×w`, output `oh×ow`, number of planes.
#[derive(Debug, Clone, Copy)]
struct Planes {
    count: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

impl Planes {
    fn new(input: &[usize], out: (usize, usize), op: &str) -> Result<Self> {
        match *input {
            [n, c, h, w] => Ok(Planes {
                count: n * c,
                h,
                w,
                oh: out.0,
                ow: out.1,
            }),
            _ => Err(Error::msg(format!(
                "{op}: expected a 4-D [N, C, H, W] shape, got {input:?}"
            ))),
        }
    }
    fn in_len(&self) -> usize {
        self.h * self.w
    }
    fn out_len(&self) -> usize {
        self.oh * self.ow
    }
}

/// Applies `f(plane index, output plane)` to every plane, in parallel when large.
fn per_plane<B: Send>(
    dst: &mut [B],
    len: usize,
    work: usize,
    f: impl Fn(usize, &mut [B]) + Send + Sync,
) {
    if len == 0 {
        return;
    }
    let count = dst.len() / len;
    let per = if work >= PAR_THRESHOLD {
        planes_per_task(count)
    } else {
        count.max(1)
    };
    for_each_chunk_mut(dst, per * len, |c, chunk| {
        for (k, d) in chunk.chunks_mut(len).enumerate() {
            f(c * per + k, d);
        }
    });
}

/// Max pooling window along one axis: first valid input index and end (exclusive).
fn max_window(o: usize, s: usize, p: usize, k: usize, d: usize, len: usize) -> (usize, usize) {
    let start = (o * s) as isize - p as isize;
    let end = (start + ((k - 1) * d + 1) as isize).min(len as isize);
    let mut first = start;
    if first < 0 {
        first += (-first as usize).div_ceil(d) as isize * d as isize;
    }
    (first as usize, end.max(first) as usize)
}

/// Output size of pooling for input `[N, C, H, W]`.
fn pool_out(l: &Layout, p: &Pool2dParams, op: &str) -> Result<Planes> {
    let d = l.dims();
    let bad = || Error::msg(format!("{op}: input {} is too small for {p:?}", l.shape()));
    if d.len() != 4 || p.kernel.0 == 0 || p.kernel.1 == 0 || p.dilation.0 == 0 {
        return Err(bad());
    }
    if p.dilation.1 == 0 || 2 * p.padding.0 > p.kernel.0 || 2 * p.padding.1 > p.kernel.1 {
        return Err(bad());
    }
    let oh = p.out_len(d[2], 0).ok_or_else(bad)?;
    let ow = p.out_len(d[3], 1).ok_or_else(bad)?;
    Planes::new(d, (oh, ow), op)
}

/// Float types the pooling kernels run in natively.
trait PoolFloat: num_traits::Float + Default + Send + Sync + std::ops::AddAssign + 'static {}
impl PoolFloat for f32 {}
impl PoolFloat for f64 {}

/// Planes per task: a few tasks per thread.
fn planes_per_task(count: usize) -> usize {
    count.div_ceil(num_threads() * 4).max(1)
}

/// Applies `f(first plane, values, indices)` to runs of whole output planes, in parallel when large.
fn per_plane_pair<T: Send>(
    vals: &mut [T],
    idx: &mut [i64],
    len: usize,
    work: usize,
    f: impl Fn(usize, &mut [T], &mut [i64]) + Send + Sync,
) {
    if len == 0 {
        return;
    }
    let count = vals.len() / len;
    if work >= PAR_THRESHOLD && count > 1 {
        let per = planes_per_task(count);
        for_each_chunk_pair_mut(vals, per * len, idx, per * len, |t, v, i| f(t * per, v, i));
    } else {
        f(0, vals, idx);
    }
}

/// `v` replaces the running maximum when larger or NaN (so the last NaN wins, as PyTorch).
#[inline(always)]
fn take<T: PoolFloat>(v: T, best: &mut T, at: &mut i64, i: i64) {
    let s = v > *best || v.is_nan();
    *best = if s { v } else { *best };
    *at = if s { i } else { *at };
}

/// One block of `N` 2×2 windows: `a`/`b` hold `2·N` inputs of the even/odd input row.
/// Tap codes 0..3 (a0, a1, b0, b1) are kept as `T` so that every lane op has one width
/// and the selects become SIMD compares and blends.
#[inline(always)]
fn max_block_2x2<T: PoolFloat, const N: usize>(
    a: &[T],
    b: &[T],
    (base, w): (i64, i64),
    vo: &mut [T],
    io: &mut [i64],
) {
    let a: &[T] = &a[..2 * N];
    let b: &[T] = &b[..2 * N];
    let mut best: [T; N] = std::array::from_fn(|l| a[2 * l]);
    let a1: [T; N] = std::array::from_fn(|l| a[2 * l + 1]);
    let b0: [T; N] = std::array::from_fn(|l| b[2 * l]);
    let b1: [T; N] = std::array::from_fn(|l| b[2 * l + 1]);
    let mut c = [T::zero(); N];
    let taps = [
        T::one(),
        T::one() + T::one(),
        T::one() + T::one() + T::one(),
    ];
    for (tap, v) in taps.into_iter().zip([a1, b0, b1]) {
        for l in 0..N {
            #[allow(clippy::eq_op)]
            let s = (v[l] > best[l]) | (v[l] != v[l]);
            best[l] = if s { v[l] } else { best[l] };
            c[l] = if s { tap } else { c[l] };
        }
    }
    vo[..N].copy_from_slice(&best);
    let offs = [0, 1, w, w + 1];
    for (l, (i, c)) in io[..N].iter_mut().zip(c).enumerate() {
        *i = base + 2 * l as i64 + offs[c.to_usize().unwrap_or(0) & 3];
    }
}

/// 2×2, stride-2 windows of one output row from input rows `a` (even) and `b` (odd);
/// `base` is the plane index of `a[0]`, `w` the input row stride. Blocks of 8 (or 4) windows;
/// the last block overlaps the previous one instead of running a scalar tail.
fn max_row_2x2<T: PoolFloat>(a: &[T], b: &[T], base: i64, w: i64, vo: &mut [T], io: &mut [i64]) {
    fn run<T: PoolFloat, const N: usize>(
        a: &[T],
        b: &[T],
        (base, w): (i64, i64),
        vo: &mut [T],
        io: &mut [i64],
    ) {
        let ow = vo.len();
        let mut c0 = 0;
        loop {
            let c = c0.min(ow - N);
            let at = (base + 2 * c as i64, w);
            max_block_2x2::<T, N>(&a[2 * c..], &b[2 * c..], at, &mut vo[c..], &mut io[c..]);
            if c + N == ow {
                break;
            }
            c0 += N;
        }
    }
    let ow = vo.len();
    if ow >= 8 {
        run::<T, 8>(a, b, (base, w), vo, io);
    } else if ow >= 4 {
        run::<T, 4>(a, b, (base, w), vo, io);
    } else {
        for c in 0..ow {
            let (mut best, mut at) = (a[2 * c], 0);
            take(a[2 * c + 1], &mut best, &mut at, 1);
            take(b[2 * c], &mut best, &mut at, w);
            take(b[2 * c + 1], &mut best, &mut at, w + 1);
            vo[c] = best;
            io[c] = base + 2 * c as i64 + at;
        }
    }
}

fn max_pool_t<T: PoolFloat>(x: &[T], g: &Planes, p: &Pool2dParams) -> (Vec<T>, Vec<i64>) {
    let ol = g.out_len();
    let mut vals = vec![T::zero(); g.count * ol];
    let mut idx = vec![0i64; g.count * ol];
    max_pool_into_t(x, g, p, &mut vals, &mut idx);
    (vals, idx)
}

/// [`max_pool_t`] into `vals` and `idx` (`count·oH·oW` each): every element is written.
fn max_pool_into_t<T: PoolFloat>(
    x: &[T],
    g: &Planes,
    p: &Pool2dParams,
    vals: &mut [T],
    idx: &mut [i64],
) {
    let (ol, il) = (g.out_len(), g.in_len());
    // Fast path for non-overlapping windows inside the input (LeNet's 2×2, stride 2).
    let tiled = p.kernel == p.stride && p.padding == (0, 0) && p.dilation == (1, 1);
    let (kh, kw) = p.kernel;
    let fits = g.oh * kh <= g.h && g.ow * kw <= g.w;
    per_plane_pair(vals, idx, ol, x.len(), |k0, vs, is| {
        let planes = vs.chunks_mut(ol).zip(is.chunks_mut(ol));
        for (k, (vs, is)) in (k0..).zip(planes) {
            let xs = &x[k * il..(k + 1) * il];
            if tiled && fits && (kh, kw) == (2, 2) {
                for r in 0..g.oh {
                    let a = &xs[2 * r * g.w..2 * r * g.w + 2 * g.ow];
                    let b = &xs[(2 * r + 1) * g.w..(2 * r + 1) * g.w + 2 * g.ow];
                    let (vo, io) = (&mut vs[r * g.ow..][..g.ow], &mut is[r * g.ow..][..g.ow]);
                    max_row_2x2(a, b, (2 * r * g.w) as i64, g.w as i64, vo, io);
                }
            } else if tiled && fits {
                for (o, (v, i)) in vs.iter_mut().zip(is.iter_mut()).enumerate() {
                    let base = (o / g.ow) * kh * g.w + (o % g.ow) * kw;
                    let (mut best, mut at) = (xs[base], base as i64);
                    for ih in 0..kh {
                        let row = &xs[base + ih * g.w..base + ih * g.w + kw];
                        for (j, &v) in row.iter().enumerate() {
                            take(v, &mut best, &mut at, (base + ih * g.w + j) as i64);
                        }
                    }
                    (*v, *i) = (best, at);
                }
            } else {
                max_pool_generic(xs, g, p, vs, is);
            }
        }
    });
}

/// Any window geometry: padding, dilation, overlap, ceil_mode overhang.
fn max_pool_generic<T: PoolFloat>(
    xs: &[T],
    g: &Planes,
    p: &Pool2dParams,
    vs: &mut [T],
    is: &mut [i64],
) {
    for r in 0..g.oh {
        let (h0, h1) = max_window(r, p.stride.0, p.padding.0, p.kernel.0, p.dilation.0, g.h);
        for c in 0..g.ow {
            let (w0, w1) = max_window(c, p.stride.1, p.padding.1, p.kernel.1, p.dilation.1, g.w);
            let mut best = T::neg_infinity();
            let mut at = h0 * g.w + w0;
            for ih in (h0..h1).step_by(p.dilation.0) {
                let row = &xs[ih * g.w..(ih + 1) * g.w];
                for iw in (w0..w1).step_by(p.dilation.1) {
                    let v = row[iw];
                    if v > best || v.is_nan() {
                        best = v;
                        at = ih * g.w + iw;
                    }
                }
            }
            vs[r * g.ow + c] = best;
            is[r * g.ow + c] = at as i64;
        }
    }
}

fn max_pool_backward_t<T: PoolFloat>(gy: &[T], idx: &[i64], g: &Planes) -> Vec<T> {
    let mut dx = vec![T::zero(); g.count * g.in_len()];
    max_pool_backward_into_t(gy, idx, g, &mut dx);
    dx
}

/// [`max_pool_backward_t`] into `dx` (`count·H·W`, zeroed first, then accumulated).
fn max_pool_backward_into_t<T: PoolFloat>(gy: &[T], idx: &[i64], g: &Planes, dx: &mut [T]) {
    dx.fill(T::zero());
    let (ol, il) = (g.out_len(), g.in_len());
    per_plane(dx, il, gy.len() + il * g.count, |k, d| {
        let ps = gy[k * ol..(k + 1) * ol]
            .iter()
            .zip(&idx[k * ol..(k + 1) * ol]);
        for (&v, &i) in ps {
            d[i as usize] += v;
        }
    });
}

fn dx_work(g: &Planes) -> usize {
    g.count * (g.in_len() + g.out_len())
}

/// Runs `f32`/`f64` kernels on a float view; halves go through f32 and back.
fn float_op(
    s: &CpuStorage,
    l: &Layout,
    op: &'static str,
    f32k: impl Fn(&[f32]) -> Vec<f32>,
    f64k: impl Fn(&[f64]) -> Vec<f64>,
) -> Result<CpuStorage> {
    Ok(match s {
        CpuStorage::F32(v) => CpuStorage::F32(f32k(&contiguous_cow(v, l))),
        CpuStorage::F64(v) => CpuStorage::F64(f64k(&contiguous_cow(v, l))),
        CpuStorage::F16(_) | CpuStorage::BF16(_) => {
            let CpuStorage::F32(v) = to_dtype(s, l, DType::F32) else {
                unreachable!("to_dtype returns the requested dtype")
            };
            let r = CpuStorage::F32(f32k(&v));
            to_dtype(&r, &Layout::contiguous(r.len()), s.dtype())
        }
        other => {
            return Err(Error::UnsupportedDType {
                op,
                dtype: other.dtype(),
            })
        }
    })
}

/// Max pooling of `[N, C, H, W]`: values and i64 indices `h * W + w` within each plane.
pub(crate) fn max_pool2d(
    x: &CpuStorage,
    l: &Layout,
    p: &Pool2dParams,
) -> Result<(CpuStorage, CpuStorage)> {
    let op = "max_pool2d";
    let g = pool_out(l, p, op)?;
    Ok(match x {
        CpuStorage::F32(v) => {
            let (o, i) = max_pool_t(&contiguous_cow(v, l), &g, p);
            (CpuStorage::F32(o), CpuStorage::I64(i))
        }
        CpuStorage::F64(v) => {
            let (o, i) = max_pool_t(&contiguous_cow(v, l), &g, p);
            (CpuStorage::F64(o), CpuStorage::I64(i))
        }
        CpuStorage::F16(_) | CpuStorage::BF16(_) => {
            let x32 = to_dtype(x, l, DType::F32);
            let (o, i) = max_pool2d(&x32, &Layout::contiguous(l.shape().clone()), p)?;
            (to_dtype(&o, &Layout::contiguous(o.len()), x.dtype()), i)
        }
        other => {
            return Err(Error::UnsupportedDType {
                op,
                dtype: other.dtype(),
            })
        }
    })
}

/// Gradient of max pooling: adds grad_out (`g`) at the recorded indices of an `input`-shaped zero tensor.
pub(crate) fn max_pool2d_backward(
    gy: &CpuStorage,
    l: &Layout,
    idx: &CpuStorage,
    il: &Layout,
    input: &Shape,
) -> Result<CpuStorage> {
    let op = "max_pool2d_backward";
    let CpuStorage::I64(iv) = idx else {
        return Err(Error::UnsupportedDType {
            op,
            dtype: idx.dtype(),
        });
    };
    let (g, ids) = backward_geom(l, iv, il, input)?;
    float_op(
        gy,
        l,
        op,
        |v| max_pool_backward_t(v, &ids, &g),
        |v| max_pool_backward_t(v, &ids, &g),
    )
}

/// The planes of a max-pooling gradient and its indices, checked.
fn backward_geom<'a>(
    l: &Layout,
    iv: &'a [i64],
    il: &Layout,
    input: &Shape,
) -> Result<(Planes, std::borrow::Cow<'a, [i64]>)> {
    let op = "max_pool2d_backward";
    let d = l.dims();
    if d.len() != 4 || il.dims() != d || input.dims().len() != 4 || input.dims()[..2] != d[..2] {
        return Err(Error::msg(format!(
            "{op}: grad_out {}, indices {} and input {input} do not fit",
            l.shape(),
            il.shape()
        )));
    }
    let g = Planes::new(input.dims(), (d[2], d[3]), op)?;
    let ids = contiguous_cow(iv, il);
    if let Some(&bad) = ids.iter().find(|&&i| i < 0 || i as usize >= g.in_len()) {
        return Err(Error::IndexOutOfRange {
            op,
            index: bad,
            size: g.in_len(),
        });
    }
    Ok((g, ids))
}
