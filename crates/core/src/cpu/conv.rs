//! 2-D convolution and its two backward passes, by im2col/col2im feeding `gemm`.
//!
//! Per image, the input is unfolded into `col[C·kH·kW, P]` (P = oH·oW; row `(c, i, j)` holds
//! what kernel tap `(i, j)` of channel `c` sees at every output position). With
//! K = C/g·kH·kW per group, every kernel is then one matrix product per group:
//! - forward: `outᵀ[P, O] = colᵀ[P, K] · Wᵀ[K, O]`, one product per image;
//! - input grad: `dcolᵀ[P, K] = dYᵀ[P, O] · W[O, K]` per image, then col2im adds `dcol` back;
//! - weight grad: `dWᵀ[K, O] = col[K, B·P] · dYᵀ[B·P, O]` over a chunk of B images at once,
//!   chunks summed at the end.
//!
//! The products are written transposed so that gemm's long `m` side is the spatial size P
//! (hundreds) rather than the few output channels; gemm reads every operand through strides,
//! so nothing is transposed in memory. A 1×1, stride-1, unpadded kernel needs no im2col: the
//! image already is `col`. Images are spread over the thread pool, each thread with its own
//! scratch. f16/bf16 compute in f32.
//!
//! Three paths, fastest first: stride-1 f32 convolutions with few weights run the direct
//! AVX-512 kernels of [`super::conv_direct`]; other stride-1 convolutions the "wide" im2col of
//! [`super::conv_wide`] (one contiguous copy per `col` row, images stacked per gemm); the rest
//! (strides > 1, 1×1 kernels) the general im2col here.

use super::conv_direct;
use super::conv_wide::{self, Wide};
use super::f32_view::{as_f32, as_f32_mut, as_f32_uninit};
use super::map::{contiguous_cow, to_dtype};
use crate::parallel::{self, for_each_chunk_mut, num_threads};
use crate::params::Conv2dParams;
use crate::{CpuStorage, DType, Error, Layout, Result, WithDType};
use gemm::Parallelism;
use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;

/// Multiply-adds under which a convolution stays on one thread.
pub(super) const PAR_WORK: usize = 1 << 18;
/// Target size (elements) of one weight-gradient chunk's `col` scratch.
const CHUNK_ELEMS: usize = 1 << 17;

/// Lends `f` this thread's reusable scratch of at least `len` elements. Contents are stale:
/// callers overwrite what they read. The buffer is taken out while lent, so a nested call
/// (should one ever happen) just allocates its own.
pub(super) fn with_scratch<T: WithDType, R>(len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    thread_local! {
        static BUFS: RefCell<HashMap<TypeId, Box<dyn Any>>> = RefCell::new(HashMap::new());
    }
    let key = TypeId::of::<T>();
    let mut buf: Vec<T> = BUFS
        .with(|b| b.borrow_mut().remove(&key))
        .and_then(|b| b.downcast::<Vec<T>>().ok())
        .map(|b| *b)
        .unwrap_or_default();
    if buf.len() < len {
        buf.resize(len, T::ZERO);
    }
    let r = f(&mut buf[..len]);
    BUFS.with(|b| b.borrow_mut().insert(key, Box::new(buf)));
    r
}

/// The geometry of one convolution, checked for consistency.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geom {
    pub(super) n: usize,
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) o: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
    pub(super) groups: usize,
    pub(super) p: Conv2dParams,
}

impl Geom {
    /// Builds and checks the geometry from input `[n, c, h, w]`, weight `[o, c/g, kh, kw]` and
    /// (when known) output `[oh, ow]`.
    fn new(
        op: &str,
        (n, c, h, w): (usize, usize, usize, usize),
        (o, cg, kh, kw): (usize, usize, usize, usize),
        out: Option<(usize, usize)>,
        p: &Conv2dParams,
    ) -> Result<Self> {
        let g = p.groups;
        if g == 0 || cg * g != c || o % g != 0 || kh == 0 || kw == 0 {
            return Err(Error::msg(format!(
                "{op}: inconsistent geometry: input channels {c}, weight [{o}, {cg}, {kh}, {kw}], groups {g}"
            )));
        }
        if p.dilation.0 == 0 || p.dilation.1 == 0 {
            return Err(Error::msg(format!("{op}: dilation must be positive")));
        }
        let (oh, ow) = p.out_hw((h, w), (kh, kw)).ok_or_else(|| {
            Error::msg(format!(
                "{op}: input {h}x{w} is smaller than the dilated kernel {kh}x{kw} (padding {:?})",
                p.padding
            ))
        })?;
        if let Some(got) = out {
            if got != (oh, ow) {
                return Err(Error::msg(format!(
                    "{op}: grad_out spatial size {got:?} does not match the expected {:?}",
                    (oh, ow)
                )));
            }
        }
        Ok(Geom {
            n,
            c,
            h,
            w,
            o,
            kh,
            kw,
            oh,
            ow,
            groups: g,
            p: *p,
        })
    }
    /// Output positions per image.
    pub(super) fn np(&self) -> usize {
        self.oh * self.ow
    }
    /// Rows of `col` per group.
    pub(super) fn k(&self) -> usize {
        self.c / self.groups * self.kh * self.kw
    }
    /// Output channels per group.
    pub(super) fn og(&self) -> usize {
        self.o / self.groups
    }
    /// Elements of one input image.
    pub(super) fn img(&self) -> usize {
        self.c * self.h * self.w
    }
    /// Rows of `col` for all groups.
    pub(super) fn rows(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Total multiply-adds.
    pub(super) fn work(&self) -> usize {
        self.n * self.o * self.np() * self.k()
    }
    /// True when `col` is the image itself (1×1 kernel, stride 1, no padding).
    pub(super) fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.p.stride == (1, 1) && self.p.padding == (0, 0)
    }
}

fn dims4(l: &Layout, op: &str) -> Result<(usize, usize, usize, usize)> {
    match *l.dims() {
        [a, b, c, d] => Ok((a, b, c, d)),
        _ => Err(Error::msg(format!(
            "{op}: expected a 4-D tensor, got {}",
            l.shape()
        ))),
    }
}

/// Output indices `[lo, hi)` along one axis whose input index `o·s + tap − pad` is in `0..len`.
fn valid_range(out: usize, s: usize, tap: usize, pad: usize, len: usize) -> (usize, usize) {
    let lo = if tap >= pad {
        0
    } else {
        (pad - tap).div_ceil(s)
    };
    let hi = if len + pad <= tap {
        0
    } else {
        (len + pad - tap).div_ceil(s)
    };
    let (lo, hi) = (lo.min(out), hi.min(out));
    (lo, hi.max(lo))
}

/// Copies `s` into `d` (same length) with fixed-size, possibly overlapping block moves: the
/// rows im2col copies are often 5–30 elements, where a `memcpy` call costs more than the copy.
#[inline(always)]
fn copy_short<T: Copy>(d: &mut [T], s: &[T]) {
    #[inline(always)]
    fn block<T: Copy, const B: usize>(d: &mut [T], s: &[T], at: usize) {
        let src: &[T; B] = s[at..at + B].try_into().expect("block in range");
        let dst: &mut [T; B] = (&mut d[at..at + B]).try_into().expect("block in range");
        *dst = *src;
    }
    let n = d.len().min(s.len());
    match n {
        0 => {}
        1 => d[0] = s[0],
        2..=3 => {
            block::<T, 2>(d, s, 0);
            block::<T, 2>(d, s, n - 2);
        }
        4..=7 => {
            block::<T, 4>(d, s, 0);
            block::<T, 4>(d, s, n - 4);
        }
        8..=63 => {
            let mut at = 0;
            while at + 8 <= n {
                block::<T, 8>(d, s, at);
                at += 8;
            }
            if at < n {
                block::<T, 8>(d, s, n - 8);
            }
        }
        _ => d[..n].copy_from_slice(&s[..n]),
    }
}

/// Unfolds one image `x[C, H, W]` into `col` (row stride `rs`, `P` columns used per row).
fn im2col<T: Copy + Default>(x: &[T], col: &mut [T], rs: usize, g: &Geom) {
    let (sh, sw) = g.p.stride;
    let (ph, pw) = g.p.padding;
    let (dh, dw) = g.p.dilation;
    let zero = T::default();
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            let (rlo, rhi) = valid_range(g.oh, sh, i * dh, ph, g.h);
            for j in 0..g.kw {
                let row = (c * g.kh + i) * g.kw + j;
                let dst = &mut col[row * rs..row * rs + g.np()];
                let (lo, hi) = valid_range(g.ow, sw, j * dw, pw, g.w);
                // Zero only what no input reaches: whole rows outside [rlo, rhi), row edges.
                if lo == hi || rlo >= rhi {
                    dst.fill(zero);
                    continue;
                }
                dst[..rlo * g.ow].fill(zero);
                dst[rhi * g.ow..].fill(zero);
                let len = hi - lo;
                let mut at = (rlo * sh + i * dh - ph) * g.w + lo * sw + j * dw - pw;
                for r in rlo..rhi {
                    let row = &mut dst[r * g.ow..(r + 1) * g.ow];
                    row[..lo].fill(zero);
                    row[hi..].fill(zero);
                    let d = &mut row[lo..hi];
                    if sw == 1 {
                        copy_short(d, &plane[at..at + len]);
                    } else {
                        for (v, s) in d.iter_mut().zip(plane[at..].iter().step_by(sw)) {
                            *v = *s;
                        }
                    }
                    at += sh * g.w;
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds `col` (row stride `rs`) into the image `dx[C, H, W]`.
fn col2im<T: Copy + std::ops::AddAssign>(col: &[T], rs: usize, dx: &mut [T], g: &Geom) {
    let (sh, sw) = g.p.stride;
    let (ph, pw) = g.p.padding;
    let (dh, dw) = g.p.dilation;
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            let (rlo, rhi) = valid_range(g.oh, sh, i * dh, ph, g.h);
            for j in 0..g.kw {
                let row = (c * g.kh + i) * g.kw + j;
                let src = &col[row * rs..row * rs + g.np()];
                let (lo, hi) = valid_range(g.ow, sw, j * dw, pw, g.w);
                if lo == hi {
                    continue;
                }
                let iw0 = lo * sw + j * dw - pw;
                for r in rlo..rhi {
                    let s = &src[r * g.ow + lo..r * g.ow + hi];
                    let ih = r * sh + i * dh - ph;
                    let d = &mut plane[ih * g.w..(ih + 1) * g.w];
                    if sw == 1 {
                        for (d, s) in d[iw0..iw0 + hi - lo].iter_mut().zip(s) {
                            *d += *s;
                        }
                    } else {
                        for (d, s) in d[iw0..].iter_mut().step_by(sw).zip(s) {
                            *d += *s;
                        }
                    }
                }
            }
        }
    }
}

/// One matrix operand: a slice and its (row, column) strides in elements.
struct Mat<'a, T> {
    data: &'a [T],
    rs: usize,
    cs: usize,
}

/// `dst[m, n] = (acc ? dst : 0) + lhs[m, k] · rhs[k, n]`, all through strides, on this
/// thread (callers spread images over the pool).
fn matmul_into<T: WithDType>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    (dst_rs, dst_cs): (usize, usize),
    lhs: Mat<T>,
    rhs: Mat<T>,
    acc: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !acc {
            for r in 0..m {
                for c in 0..n {
                    dst[r * dst_rs + c * dst_cs] = T::ZERO;
                }
            }
        }
        return;
    }
    let last = |rs: usize, cs: usize, r: usize, c: usize| (r - 1) * rs + (c - 1) * cs;
    // Bounds are checked once here so that the unsafe call below cannot read or write out of range.
    assert!(
        last(dst_rs, dst_cs, m, n) < dst.len()
            && last(lhs.rs, lhs.cs, m, k) < lhs.data.len()
            && last(rhs.rs, rhs.cs, k, n) < rhs.data.len(),
        "conv: gemm operand out of bounds"
    );
    // SAFETY: the assert above shows every index `r*rs + c*cs` gemm touches (r < rows, c < cols)
    // lies inside its slice; `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            acc,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

/// Forward product of every group: `out[O, n] = W[O, K] · col[K, n]`, computed as
/// `outᵀ = colᵀ · Wᵀ` so that gemm's long side is the `n` positions; `n` is the row length of
/// both `col` and `out`.
pub(super) fn fwd_product<T: WithDType>(g: &Geom, w: &[T], col: &[T], n: usize, out: &mut [T]) {
    let (k, og) = (g.k(), g.og());
    for grp in 0..g.groups {
        matmul_into(
            (n, og, k),
            &mut out[grp * og * n..],
            (1, n),
            Mat {
                data: &col[grp * k * n..],
                rs: 1,
                cs: n,
            },
            Mat {
                data: &w[grp * og * k..],
                rs: 1,
                cs: k,
            },
            false,
        );
    }
}

/// Input-gradient product of every group: `dcol[K, n] = Wᵀ · dy[O, n]` (as
/// `dcolᵀ = dyᵀ · W`); `n` is the row length of both `dy` and `dcol`.
pub(super) fn bwd_input_product<T: WithDType>(
    g: &Geom,
    w: &[T],
    dy: &[T],
    n: usize,
    dcol: &mut [T],
) {
    let (k, og) = (g.k(), g.og());
    for grp in 0..g.groups {
        matmul_into(
            (n, k, og),
            &mut dcol[grp * k * n..],
            (1, n),
            Mat {
                data: &dy[grp * og * n..],
                rs: 1,
                cs: n,
            },
            Mat {
                data: &w[grp * og * k..],
                rs: k,
                cs: 1,
            },
            false,
        );
    }
}

/// Weight-gradient product of every group, accumulated: `dWᵀ[K, O] += col[K, n] · dyᵀ[n, O]`
/// into `acc` (`[O, K]`); `n` is the row length of both `col` and `dy`.
pub(super) fn bwd_weight_product<T: WithDType>(
    g: &Geom,
    col: &[T],
    dy: &[T],
    n: usize,
    acc: &mut [T],
) {
    let (k, og) = (g.k(), g.og());
    for grp in 0..g.groups {
        matmul_into(
            (k, og, n),
            &mut acc[grp * og * k..],
            (1, k),
            Mat {
                data: &col[grp * k * n..],
                rs: n,
                cs: 1,
            },
            Mat {
                data: &dy[grp * og * n..],
                rs: 1,
                cs: n,
            },
            true,
        );
    }
}

/// Runs `f(image index, its chunk of out, scratch)` over the batch: images spread over the
/// pool when the batch and the work are big enough, else on this thread.
pub(super) fn over_batch<T, U, F>(g: &Geom, out: &mut [U], out_img: usize, scratch: usize, f: F)
where
    T: WithDType,
    U: Send,
    F: Fn(usize, &mut [U], &mut [T]) + Send + Sync,
{
    let threads = num_threads();
    if out_img == 0 || g.n == 0 {
        return;
    }
    let per = if threads > 1 && g.n >= threads && g.work() >= PAR_WORK {
        g.n.div_ceil(threads * 4).max(1)
    } else {
        g.n
    };
    for_each_chunk_mut(out, per * out_img, |ci, chunk| {
        with_scratch(scratch, |buf| {
            for (k, o) in chunk.chunks_mut(out_img).enumerate() {
                f(ci * per + k, o, buf);
            }
        })
    });
}

fn fwd<T: WithDType>(x: &[T], w: &[T], g: &Geom) -> Vec<T> {
    let np = g.np();
    let len = g.n * g.o * np;
    if let (Some(wide), true, Some(xf), Some(wf)) =
        (Wide::new(g), conv_direct::usable(g), as_f32(x), as_f32(w))
    {
        let mut out = Vec::<T>::with_capacity(len);
        if let Some(o) = as_f32_uninit(&mut out.spare_capacity_mut()[..len]) {
            conv_direct::fwd(xf, wf, None, g, &wide, o);
            // SAFETY: the direct kernel wrote every output element.
            unsafe { out.set_len(len) };
            return out;
        }
    }
    let mut out = vec![T::ZERO; len];
    if let Some(wide) = Wide::new(g) {
        conv_wide::fwd(x, w, g, &wide, &mut out);
        return out;
    }
    let scratch = if g.pointwise() { 0 } else { g.rows() * np };
    over_batch(g, &mut out, g.o * np, scratch, |i, oi, col| {
        let xi = &x[i * g.img()..(i + 1) * g.img()];
        let col: &[T] = if g.pointwise() {
            xi
        } else {
            im2col(xi, col, np, g);
            &col[..]
        };
        fwd_product(g, w, col, np, oi);
    });
    out
}

fn bwd_input<T: WithDType + std::ops::AddAssign>(dy: &[T], w: &[T], g: &Geom) -> Vec<T> {
    let np = g.np();
    let mut dx = vec![T::ZERO; g.n * g.img()];
    if let Some(wide) = Wide::new(g) {
        if let (true, Some(dy), Some(w), Some(d)) = (
            conv_direct::usable(g),
            as_f32(dy),
            as_f32(w),
            as_f32_mut(&mut dx),
        ) {
            conv_direct::bwd_input(dy, w, g, &wide, d);
        } else {
            conv_wide::bwd_input(dy, w, g, &wide, &mut dx);
        }
        return dx;
    }
    let scratch = if g.pointwise() { 0 } else { g.rows() * np };
    over_batch(g, &mut dx, g.img(), scratch, |i, dxi, dcol| {
        let dyi = &dy[i * g.o * np..(i + 1) * g.o * np];
        if g.pointwise() {
            bwd_input_product(g, w, dyi, np, dxi);
        } else {
            bwd_input_product(g, w, dyi, np, dcol);
            col2im(dcol, np, dxi, g);
        }
    });
    dx
}

fn bwd_weight<T: WithDType + std::ops::Add<Output = T>>(x: &[T], dy: &[T], g: &Geom) -> Vec<T> {
    let (np, k, rows) = (g.np(), g.k(), g.rows());
    let out_len = g.o * k;
    if g.n == 0 || np == 0 || out_len == 0 {
        return vec![T::ZERO; out_len];
    }
    if let (Some(wide), true, Some(xf), Some(dyf)) =
        (Wide::new(g), conv_direct::usable(g), as_f32(x), as_f32(dy))
    {
        let dw = conv_direct::bwd_weight(xf, dyf, g, &wide);
        let mut out = vec![T::ZERO; out_len];
        if let Some(o) = as_f32_mut(&mut out) {
            o.copy_from_slice(&dw);
        }
        return out;
    }
    let threads = num_threads();
    let per = (CHUNK_ELEMS / (rows * np).max(1)).clamp(1, g.n.div_ceil(threads));
    let chunks = g.n.div_ceil(per);
    let parallel = threads > 1 && chunks > 1 && g.work() >= PAR_WORK;
    let init = || vec![T::ZERO; out_len];
    // `col` and `dYᵀ` of one chunk live in the thread's scratch; the partial sum is the fold state.
    let wide = Wide::new(g);
    let step = |mut acc: Vec<T>, ci: usize| {
        let (i0, i1) = (ci * per, ((ci + 1) * per).min(g.n));
        if let Some(w) = &wide {
            conv_wide::bwd_weight_chunk(x, dy, g, w, (i0, i1), &mut acc);
            return acc;
        }
        let bp = (i1 - i0) * np;
        with_scratch((rows + g.o) * bp, |buf: &mut [T]| {
            let (col, dyt) = buf.split_at_mut(rows * bp);
            for (b, i) in (i0..i1).enumerate() {
                im2col(
                    &x[i * g.img()..(i + 1) * g.img()],
                    &mut col[b * np..],
                    bp,
                    g,
                );
                for o in 0..g.o {
                    let src = &dy[(i * g.o + o) * np..(i * g.o + o + 1) * np];
                    dyt[o * bp + b * np..o * bp + (b + 1) * np].copy_from_slice(src);
                }
            }
            bwd_weight_product(g, col, dyt, bp, &mut acc);
        });
        acc
    };
    if parallel {
        // One partial sum per thread, over every `tasks`-th chunk; summed at the end.
        let tasks = threads.min(chunks);
        let parts = parallel::map(tasks, |t| (t..chunks).step_by(tasks).fold(init(), step));
        let mut it = parts.into_iter();
        let first = it.next().unwrap_or_else(init);
        it.fold(first, |mut a, b| {
            a.iter_mut().zip(b).for_each(|(a, b)| *a = *a + b);
            a
        })
    } else {
        (0..chunks).fold(init(), step)
    }
}

/// Runs an f32 kernel on half-precision inputs and converts the result back.
fn via_f32(
    a: &CpuStorage,
    al: &Layout,
    b: &CpuStorage,
    bl: &Layout,
    f: impl Fn(&CpuStorage, &Layout, &CpuStorage, &Layout) -> Result<CpuStorage>,
) -> Result<CpuStorage> {
    let dt = a.dtype();
    let a32 = to_dtype(a, al, DType::F32);
    let b32 = to_dtype(b, bl, DType::F32);
    let r = f(
        &a32,
        &Layout::contiguous(al.shape().clone()),
        &b32,
        &Layout::contiguous(bl.shape().clone()),
    )?;
    Ok(to_dtype(&r, &Layout::contiguous(r.len()), dt))
}

/// Dispatches a two-input float kernel over dtypes; inputs are made contiguous first.
macro_rules! dispatch {
    ($op:expr, $a:expr, $al:expr, $b:expr, $bl:expr, $kernel:ident, $g:expr, $again:expr) => {
        match ($a, $b) {
            (CpuStorage::F32(x), CpuStorage::F32(y)) => Ok(CpuStorage::F32($kernel(
                &contiguous_cow(x, $al),
                &contiguous_cow(y, $bl),
                $g,
            ))),
            (CpuStorage::F64(x), CpuStorage::F64(y)) => Ok(CpuStorage::F64($kernel(
                &contiguous_cow(x, $al),
                &contiguous_cow(y, $bl),
                $g,
            ))),
            (CpuStorage::F16(_), CpuStorage::F16(_))
            | (CpuStorage::BF16(_), CpuStorage::BF16(_)) => via_f32($a, $al, $b, $bl, $again),
            (x, y) if x.dtype() == y.dtype() => Err(Error::UnsupportedDType {
                op: $op,
                dtype: x.dtype(),
            }),
            (x, y) => Err(Error::DTypeMismatch {
                op: $op,
                lhs: x.dtype(),
                rhs: y.dtype(),
            }),
        }
    };
}

/// Convolution without bias: input `[N, C, H, W]`, weight `[O, C/g, kH, kW]` → `[N, O, oH, oW]`.
pub(crate) fn conv2d(
    x: &CpuStorage,
    xl: &Layout,
    w: &CpuStorage,
    wl: &Layout,
    p: &Conv2dParams,
) -> Result<CpuStorage> {
    let g = Geom::new(
        "conv2d",
        dims4(xl, "conv2d")?,
        dims4(wl, "conv2d")?,
        None,
        p,
    )?;
    dispatch!("conv2d", x, xl, w, wl, fwd, &g, |a, al, b, bl| conv2d(
        a, al, b, bl, p
    ))
}

/// Gradient w.r.t. the input: grad_out `[N, O, oH, oW]`, weight → `[N, C, H, W]` for `input_hw`.
pub(crate) fn conv2d_backward_input(
    gy: &CpuStorage,
    gl: &Layout,
    w: &CpuStorage,
    wl: &Layout,
    p: &Conv2dParams,
    input_hw: (usize, usize),
) -> Result<CpuStorage> {
    let op = "conv2d_backward_input";
    let (n, o, oh, ow) = dims4(gl, op)?;
    let (wo, cg, kh, kw) = dims4(wl, op)?;
    if wo != o {
        return Err(Error::msg(format!(
            "{op}: grad_out has {o} channels but the weight has {wo} output channels"
        )));
    }
    let x = (n, cg * p.groups, input_hw.0, input_hw.1);
    let g = Geom::new(op, x, (o, cg, kh, kw), Some((oh, ow)), p)?;
    dispatch!(op, gy, gl, w, wl, bwd_input, &g, |a, al, b, bl| {
        conv2d_backward_input(a, al, b, bl, p, input_hw)
    })
}

/// Gradient w.r.t. the weight: input `[N, C, H, W]`, grad_out → `[O, C/g, kH, kW]`.
pub(crate) fn conv2d_backward_weight(
    x: &CpuStorage,
    xl: &Layout,
    gy: &CpuStorage,
    gl: &Layout,
    p: &Conv2dParams,
    kernel_hw: (usize, usize),
) -> Result<CpuStorage> {
    let op = "conv2d_backward_weight";
    let (n, c, h, w) = dims4(xl, op)?;
    let (gn, o, oh, ow) = dims4(gl, op)?;
    if gn != n || p.groups == 0 || c % p.groups != 0 {
        return Err(Error::msg(format!(
            "{op}: input {} and grad_out {} do not fit groups {}",
            xl.shape(),
            gl.shape(),
            p.groups
        )));
    }
    let wd = (o, c / p.groups, kernel_hw.0, kernel_hw.1);
    let g = Geom::new(op, (n, c, h, w), wd, Some((oh, ow)), p)?;
    dispatch!(op, x, xl, gy, gl, bwd_weight, &g, |a, al, b, bl| {
        conv2d_backward_weight(a, al, b, bl, p, kernel_hw)
    })
}
