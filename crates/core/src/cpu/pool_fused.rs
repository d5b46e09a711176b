//! Fused 2×2, stride-2 max pooling kernels for compiled plans (f32, NCHW, contiguous).
//!
//! Eager runs `x + bias`, `relu`, `max_pool2d` (values and i64 indices) as three passes and,
//! backward, `max_pool2d_backward` (a zeroed `[N, C, H, W]` plane plus a scatter) followed by
//! ReLU's mask `where(relu <= c, 0, g)` over the full-size map. A compiled plan that sees
//! exactly that chain (`graph::compile`'s `pool_relu` pass) runs these instead:
//!
//! - [`bias_relu_max_pool_2x2`]: one pass reading the convolution's output and writing the
//!   pooled map and its indices; the biased and ReLU'd full-size maps are never stored.
//! - [`max_pool_2x2_relu_backward`]: one pass writing every element of the input gradient,
//!   with the ReLU mask read from the *pooled* map: at a window's recorded maximum the ReLU
//!   output equals the pooled value, and everywhere else the gradient is `+0.0` whatever
//!   the mask says (so the full-size ReLU output is not needed).
//!   Optionally it also sums each plane (the convolution's bias gradient) in eager's order.
//! - [`bias_relu_max_pool_2x2_strided`]: the forward on one image held with strides (the
//!   direct convolution's scratch; `cpu::conv_pool_fused`).
//!
//! On AVX-512 the rows run in intrinsics (`cpu::pool_row_avx512`, the same expressions).
//!
//! Both compute every element with the eager kernels' expressions (the same f32 add, ReLU
//! `x > 0 || x is NaN ? x : 0`, max rule `v > best || v is NaN` with the first maximum
//! winning, and `0.0 + g` for the scattered gradient), so their results are bit-identical
//! to the eager ops (tested against the eager ops in `graph/compile/pool_relu_tests.rs`).

#[cfg(target_arch = "x86_64")]
use super::avx512;
use crate::parallel::{for_each_chunk_mut, for_each_chunk_pair_mut, PAR_THRESHOLD};
use crate::{Error, Result};

/// Geometry of a fused 2×2 pooling: `planes = N·C` planes of `h×w` input, `c` channels
/// (plane `k` has channel `k % c`), output `(h / 2)×(w / 2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pool2x2 {
    pub planes: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
}

impl Pool2x2 {
    pub(crate) fn in_len(&self) -> usize {
        self.h * self.w
    }
    pub(crate) fn out_len(&self) -> usize {
        (self.h / 2) * (self.w / 2)
    }
    pub(crate) fn check(&self, op: &str, lens: &[(&str, usize, usize)]) -> Result<()> {
        if self.c == 0
            || !self.planes.is_multiple_of(self.c)
            || self.h < 2
            || self.w < 2
            || self.w >= 1 << 23
        {
            return Err(Error::msg(format!(
                "{op}: bad geometry {self:?} (need h, w >= 2, w < 2^23 and planes a multiple of c)"
            )));
        }
        for &(name, got, want) in lens {
            if got != want {
                return Err(Error::msg(format!(
                    "{op}: `{name}` has {got} elements, expected {want} for {self:?}"
                )));
            }
        }
        Ok(())
    }
    /// Planes per parallel task (all of them when the work is small).
    fn per_task(&self) -> usize {
        let work = self.planes * self.in_len();
        if work < PAR_THRESHOLD {
            self.planes.max(1)
        } else {
            crate::parallel::chunk_len(self.planes, 4)
        }
    }
}

/// `N` windows of one output row: `a`/`b` hold `2·N` inputs of the even/odd input row.
/// Each window's maximum is stored as its offset from the window's first element (0, 1,
/// `w`, `w + 1`), kept as f32 (exact) so every lane op has one width and the selects
/// become vector compares and blends.
#[inline(always)]
fn block<const N: usize>(
    a: &[f32],
    b: &[f32],
    (bias, w): (f32, f32),
    vo: &mut [f32],
    co: &mut [f32],
) {
    let (a, b) = (&a[..2 * N], &b[..2 * N]);
    // The maximum of the biased taps, first one winning, NaN sticking (eager's rule).
    let mut best: [f32; N] = std::array::from_fn(|l| a[2 * l] + bias);
    let mut code = [0f32; N];
    let taps: [[f32; N]; 3] = [
        std::array::from_fn(|l| a[2 * l + 1] + bias),
        std::array::from_fn(|l| b[2 * l] + bias),
        std::array::from_fn(|l| b[2 * l + 1] + bias),
    ];
    for (t, v) in [1f32, w, w + 1.0].into_iter().zip(taps) {
        for l in 0..N {
            #[allow(clippy::eq_op)]
            let s = (v[l] > best[l]) | (v[l] != v[l]);
            best[l] = if s { v[l] } else { best[l] };
            code[l] = if s { t } else { code[l] };
        }
    }
    // ReLU commutes with the maximum; where the maximum is not positive (nor NaN) every
    // ReLU'd tap is 0 and eager's first-maximum rule keeps tap 0.
    for l in 0..N {
        #[allow(clippy::eq_op)]
        let keep = (best[l] > 0.0) | (best[l] != best[l]);
        best[l] = if keep { best[l] } else { 0.0 };
        code[l] = if keep { code[l] } else { 0.0 };
    }
    vo[..N].copy_from_slice(&best);
    co[..N].copy_from_slice(&code);
}

/// Blocks of `N` windows over a row of `ow >= N`; the last block overlaps the previous one
/// instead of a scalar tail.
#[inline(always)]
fn blocks<const N: usize>(a: &[f32], b: &[f32], bias: (f32, f32), vo: &mut [f32], co: &mut [f32]) {
    let ow = vo.len();
    let mut c0 = 0;
    loop {
        let c = c0.min(ow - N);
        block::<N>(&a[2 * c..], &b[2 * c..], bias, &mut vo[c..], &mut co[c..]);
        if c + N == ow {
            break;
        }
        c0 += N;
    }
}

/// One output row: values into `vo`, the maxima's offsets into `co`.
fn row(a: &[f32], b: &[f32], bias: (f32, f32), vo: &mut [f32], co: &mut [f32]) {
    match vo.len() {
        n if n >= 8 => blocks::<8>(a, b, bias, vo, co),
        n if n >= 4 => blocks::<4>(a, b, bias, vo, co),
        n => {
            for c in 0..n {
                block::<1>(&a[2 * c..], &b[2 * c..], bias, &mut vo[c..], &mut co[c..]);
            }
        }
    }
}

/// `max_pool2d(relu(x + bias[c]), 2, 2)` with PyTorch's indices (`h * W + w` within each
/// plane). `x` is `[N, C, H, W]` contiguous (`planes·h·w` elements), `bias` has `C`
/// elements; `out` and `idx` have `planes·(h/2)·(w/2)` elements. An odd last row or column
/// is outside every window (floor mode).
///
/// # Errors
/// Slices whose lengths do not fit the geometry.
pub(crate) fn bias_relu_max_pool_2x2(
    x: &[f32],
    bias: &[f32],
    g: Pool2x2,
    out: &mut [f32],
    idx: &mut [i64],
) -> Result<()> {
    let (ol, il) = (g.out_len(), g.in_len());
    g.check(
        "bias_relu_max_pool_2x2",
        &[
            ("x", x.len(), g.planes * il),
            ("bias", bias.len(), g.c),
            ("out", out.len(), g.planes * ol),
            ("indices", idx.len(), g.planes * ol),
        ],
    )?;
    let per = g.per_task();
    for_each_chunk_pair_mut(out, per * ol, idx, per * ol, |t, vs, is| {
        dispatch!(fwd_planes(x, bias, g, t * per, vs, is))
    });
    Ok(())
}

/// Planes of at least this many elements are summed in parallel blocks by eager's
/// reduction (`cpu::reduce::sum_f64`, blocks of 2^16), an order the fused bias gradient
/// does not reproduce: [`max_pool_2x2_relu_backward`] refuses them.
pub(crate) const BIAS_SUM_MAX_PLANE: usize = 1 << 17;

/// The gradient of `max_pool2d(relu(y), 2, 2)` with respect to `y`, as eager computes it
/// with `where(relu <= c0, 0, max_pool2d_backward(gy, idx))`: `dx[idx[o]] = 0.0 + gy[o]`
/// unless `pooled[o] <= c0` (then `0.0`), every other element `0.0`. `gy`, `pooled`, `idx`
/// have `planes·(h/2)·(w/2)` elements, `dx` has `planes·h·w`.
///
/// With `bias_grad` (`c` elements, needs `c >= 2`), also writes `dx.sum([0, 2, 3])` — the
/// bias gradient — exactly as eager's reduction orders it (`cpu::reduce`: each plane summed
/// in f64 over 8 lanes of `chunks_exact(8)` plus the tail, the planes of a channel added in
/// batch order, rounded once to f32), so it is bit-identical; each plane is summed while it
/// is still in L1, four planes at a time (independent chains).
///
/// # Errors
/// Slices whose lengths do not fit the geometry; an index outside its 2×2 window; a bias
/// gradient for fewer than 2 channels or planes of [`BIAS_SUM_MAX_PLANE`] or more elements.
pub(crate) fn max_pool_2x2_relu_backward(
    gy: &[f32],
    pooled: &[f32],
    idx: &[i64],
    c0: f32,
    g: Pool2x2,
    dx: &mut [f32],
    bias_grad: Option<&mut [f32]>,
) -> Result<()> {
    let op = "max_pool_2x2_relu_backward";
    let (ol, il) = (g.out_len(), g.in_len());
    g.check(
        op,
        &[
            ("grad", gy.len(), g.planes * ol),
            ("pooled", pooled.len(), g.planes * ol),
            ("indices", idx.len(), g.planes * ol),
            ("dx", dx.len(), g.planes * il),
            (
                "bias_grad",
                bias_grad.as_ref().map_or(g.c, |b| b.len()),
                g.c,
            ),
        ],
    )?;
    if bias_grad.is_some() && (g.c < 2 || il >= BIAS_SUM_MAX_PLANE) {
        return Err(Error::msg(format!(
            "{op}: the fused bias gradient needs at least 2 channels and planes of fewer than {BIAS_SUM_MAX_PLANE} elements ({g:?})"
        )));
    }
    let per = g.per_task();
    let bad = std::sync::atomic::AtomicBool::new(false);
    let mut sums = vec![0f64; if bias_grad.is_some() { g.planes } else { 0 }];
    let sum_chunk = if sums.is_empty() { 1 } else { per };
    let sums_len = sums.len();
    let body = |t: usize, ds: &mut [f32], ss: &mut [f64]| {
        if dispatch!(bwd_planes(gy, pooled, idx, c0, g, t * per, ds, ss)) {
            bad.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    if sums_len == 0 {
        for_each_chunk_mut(dx, per * il, |t, ds| body(t, ds, &mut []));
    } else {
        for_each_chunk_pair_mut(dx, per * il, &mut sums, sum_chunk, body);
    }
    if bad.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Error::msg(format!(
            "{op}: an index lies outside its 2x2 window (indices not from a 2x2 stride-2 max pool)"
        )));
    }
    if let Some(db) = bias_grad {
        bias_grad_from_plane_sums(&sums, g.c, db);
    }
    Ok(())
}

/// [`max_pool_2x2_relu_backward`] of image `i` alone (planes `i·c..(i + 1)·c` of `g`):
/// writes its `c·h·w` gradient into `dx` and, when `sums` is not empty, each plane's sum
/// (eager's order, f64, `c` of them) into `sums`. Single-threaded, for callers that
/// parallelise over images (`cpu::conv_pool_fused`). `gy`, `pooled`, `idx` are the whole
/// batch's, of lengths already checked against `g`.
///
/// # Errors
/// An index outside its 2×2 window.
pub(crate) fn max_pool_2x2_relu_backward_image(
    (gy, pooled, idx): (&[f32], &[f32], &[i64]),
    c0: f32,
    g: Pool2x2,
    i: usize,
    dx: &mut [f32],
    sums: &mut [f64],
) -> Result<()> {
    if dispatch!(bwd_planes(gy, pooled, idx, c0, g, i * g.c, dx, sums)) {
        return Err(Error::msg(
            "max_pool_2x2_relu_backward: an index lies outside its 2x2 window (indices not from a 2x2 stride-2 max pool)",
        ));
    }
    Ok(())
}

/// The bias gradient from each plane's sum (`sums[j·c + m]`, image `j`, channel `m`) as
/// eager's `sum([0, 2, 3])` adds them: the planes of a channel in batch order, in f64,
/// rounded once.
pub(crate) fn bias_grad_from_plane_sums(sums: &[f64], c: usize, db: &mut [f32]) {
    let n = sums.len() / c.max(1);
    for (m, d) in db.iter_mut().enumerate() {
        // eager: `(0..outer).map(|j| sum_f64(plane j·C + m)).sum()`, then `as f32`.
        let s: f64 = (0..n).map(|j| sums[j * c + m]).sum();
        *d = s as f32;
    }
}

/// Calls `name_avx512(args)` where the CPU has AVX-512, else `name(args)` (the same code
/// compiled for the baseline; no FMA contraction happens, so results are identical).
macro_rules! dispatch {
    ($f:ident($($a:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if avx512() {
                // SAFETY: AVX-512F/VL/BW/DQ were detected at run time.
                unsafe { paste_avx512!($f($($a),*)) }
            } else {
                $f($($a),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $f($($a),*)
        }
    }};
}
macro_rules! paste_avx512 {
    (fwd_planes($($a:expr),*)) => { fwd_planes_avx512($($a),*) };
    (bwd_planes($($a:expr),*)) => { bwd_planes_avx512($($a),*) };
    (strided_planes($($a:expr),*)) => { strided_planes_avx512($($a),*) };
}
use {dispatch, paste_avx512};

/// One plane's pooling: input row `y` starts at `xs[y·rs]` (`rs >= w`), plane width `w`
/// (indices are `y·w + x`), `bv` the channel's bias; writes the `oh×ow` outputs. `AVX`:
/// rows in AVX-512 intrinsics (`pool_row_avx512`, the same results), only from the
/// `*_avx512` entry points.
#[inline(always)]
fn plane_body<const AVX: bool>(
    xs: &[f32],
    rs: usize,
    (w, bv): (usize, f32),
    vs: &mut [f32],
    is: &mut [i64],
) {
    let ow = w / 2;
    let oh = vs.len() / ow.max(1);
    #[cfg(target_arch = "x86_64")]
    if AVX {
        for r in 0..oh {
            let a = &xs[2 * r * rs..][..2 * ow];
            let b = &xs[(2 * r + 1) * rs..][..2 * ow];
            let (vo, io) = (&mut vs[r * ow..][..ow], &mut is[r * ow..][..ow]);
            let base = (2 * r * w) as i64;
            // SAFETY: AVX is only set by the AVX-512 entry points (detected at run time);
            // `a`, `b` hold 2·ow elements and `vo`, `io` ow.
            unsafe {
                super::pool_row_avx512::row(
                    a.as_ptr(),
                    b.as_ptr(),
                    ow,
                    (bv, w, base),
                    vo.as_mut_ptr(),
                    io.as_mut_ptr(),
                )
            };
        }
        return;
    }
    let mut codes = [0f32; 64];
    for r in 0..oh {
        let base = (2 * r * w) as i64;
        // Rows in pieces of at most 64 windows (the codes' stack buffer).
        let mut c0 = 0;
        while c0 < ow {
            let n = (ow - c0).min(64);
            let a = &xs[2 * r * rs + 2 * c0..][..2 * n];
            let b = &xs[(2 * r + 1) * rs + 2 * c0..][..2 * n];
            row(
                a,
                b,
                (bv, w as f32),
                &mut vs[r * ow + c0..][..n],
                &mut codes[..n],
            );
            let io = &mut is[r * ow + c0..][..n];
            for (c, (i, &code)) in io.iter_mut().zip(&codes[..n]).enumerate() {
                *i = base + 2 * (c0 + c) as i64 + code as i64;
            }
            c0 += n;
        }
    }
}

/// Forward of planes `k0..` into `vs`/`is` (whole output planes).
#[inline(always)]
fn fwd_body<const AVX: bool>(
    x: &[f32],
    bias: &[f32],
    g: Pool2x2,
    k0: usize,
    vs: &mut [f32],
    is: &mut [i64],
) {
    let (ol, il) = (g.out_len(), g.in_len());
    for (k, (vs, is)) in (k0..).zip(vs.chunks_mut(ol).zip(is.chunks_mut(ol))) {
        let xs = &x[k * il..(k + 1) * il];
        plane_body::<AVX>(xs, g.w, (g.w, bias[k % g.c]), vs, is);
    }
}

fn fwd_planes(x: &[f32], bias: &[f32], g: Pool2x2, k0: usize, vs: &mut [f32], is: &mut [i64]) {
    fwd_body::<false>(x, bias, g, k0, vs, is)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
unsafe fn fwd_planes_avx512(
    x: &[f32],
    bias: &[f32],
    g: Pool2x2,
    k0: usize,
    vs: &mut [f32],
    is: &mut [i64],
) {
    fwd_body::<true>(x, bias, g, k0, vs, is)
}

/// [`bias_relu_max_pool_2x2`] of one image held with strides: plane `o` (channel `o`, of
/// `bias.len()`) starts at `src[o·ps]`, its row `y` at `src[o·ps + y·rs]`; the planes are
/// `h×w` (`rs >= w`). Writes `bias.len()·(h/2)·(w/2)` values and indices; single-threaded
/// (the caller parallelises over images). Used by the direct convolution's fused epilogue
/// (`cpu::conv_pool_fused`).
///
/// # Errors
/// A geometry the strides or slices do not fit.
pub(crate) fn bias_relu_max_pool_2x2_strided(
    src: &[f32],
    (ps, rs): (usize, usize),
    bias: &[f32],
    (h, w): (usize, usize),
    out: &mut [f32],
    idx: &mut [i64],
) -> Result<()> {
    let c = bias.len();
    let g = Pool2x2 { planes: c, c, h, w };
    let ol = g.out_len();
    g.check(
        "bias_relu_max_pool_2x2_strided",
        &[("out", out.len(), c * ol), ("indices", idx.len(), c * ol)],
    )?;
    // The last read of plane `o` is row 2·(h/2) − 1, columns below 2·(w/2).
    let span = (2 * (h / 2) - 1) * rs + 2 * (w / 2);
    if rs < w || (c > 1 && ps < span) || (c - 1) * ps + span > src.len() {
        return Err(Error::msg(format!(
            "bias_relu_max_pool_2x2_strided: strides ({ps}, {rs}) over {} elements do not fit {c} planes of {h}x{w}",
            src.len()
        )));
    }
    dispatch!(strided_planes(src, (ps, rs), bias, w, out, idx));
    Ok(())
}

#[inline(always)]
fn strided_body<const AVX: bool>(
    src: &[f32],
    (ps, rs): (usize, usize),
    bias: &[f32],
    w: usize,
    out: &mut [f32],
    idx: &mut [i64],
) {
    let ol = out.len() / bias.len().max(1);
    for (o, (vs, is)) in out.chunks_mut(ol).zip(idx.chunks_mut(ol)).enumerate() {
        plane_body::<AVX>(&src[o * ps..], rs, (w, bias[o]), vs, is);
    }
}

fn strided_planes(
    src: &[f32],
    s: (usize, usize),
    bias: &[f32],
    w: usize,
    out: &mut [f32],
    idx: &mut [i64],
) {
    strided_body::<false>(src, s, bias, w, out, idx)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
unsafe fn strided_planes_avx512(
    src: &[f32],
    s: (usize, usize),
    bias: &[f32],
    w: usize,
    out: &mut [f32],
    idx: &mut [i64],
) {
    strided_body::<true>(src, s, bias, w, out, idx)
}

/// Backward of planes `k0..` into `ds` (whole input planes) and, when `ss` is not empty,
/// each plane's sum into `ss`; true when an index lay outside its window.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn bwd_body<const AVX: bool>(
    gy: &[f32],
    pooled: &[f32],
    idx: &[i64],
    c0: f32,
    g: Pool2x2,
    k0: usize,
    ds: &mut [f32],
    ss: &mut [f64],
) -> bool {
    let (ol, il) = (g.out_len(), g.in_len());
    let mut wrong = false;
    // The masked gradients of one plane (small rows only), in a buffer the thread keeps:
    // the compiled weight-gradient step calls this once per image.
    thread_local! {
        static VALS: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let mut vals = VALS.take();
    vals.resize(ol, 0.0);
    const GROUP: usize = 4;
    for (q, dg) in ds.chunks_mut(GROUP * il).enumerate() {
        for (kk, d) in dg.chunks_mut(il).enumerate() {
            let o = (k0 + q * GROUP + kk) * ol;
            let (gr, pr, ir) = (&gy[o..o + ol], &pooled[o..o + ol], &idx[o..o + ol]);
            // Rows of fewer than 8 windows measured slower in 16-lane blocks (LeNet's 10x10
            // maps: 0.051 vs 0.031 ms a step); they keep the fill and scatter.
            #[cfg(target_arch = "x86_64")]
            if AVX && g.w >= 16 {
                wrong |= !super::pool_row_avx512::bwd_plane((gr, pr, ir), c0, (g.h, g.w), d);
                continue;
            }
            // ReLU's mask as a bit mask (a branch on it would be mispredicted half the time).
            for ((v, &p), &gv) in vals.iter_mut().zip(pr).zip(gr) {
                let masked = ((p <= c0) as u32).wrapping_neg();
                *v = f32::from_bits((0.0 + gv).to_bits() & !masked);
            }
            // Each window's maximum lies in its own window (checked; the indices come from
            // the plan's forward step), so a zeroed plane plus one store per window is
            // eager's scatter.
            d.fill(0.0);
            let (w, ow) = (g.w as i64, g.w / 2);
            for (r, (irow, vrow)) in ir.chunks_exact(ow).zip(vals.chunks_exact(ow)).enumerate() {
                let mut first = 2 * r as i64 * w;
                for (&i, &v) in irow.iter().zip(vrow) {
                    // Branch-free: which of the four corners holds the maximum is data, and
                    // a branch on it was mispredicted about half the time (the largest cost
                    // of LeNet's second-layer backward). An index outside the window is
                    // flagged and its value stored at the window's first element instead,
                    // inside the plane; the caller then returns an error.
                    let k = i.wrapping_sub(first);
                    let ok = ((k as u64) < 2) | ((k.wrapping_sub(w) as u64) < 2);
                    wrong |= !ok;
                    let at = if ok { i } else { first };
                    if let Some(x) = d.get_mut(at as usize) {
                        *x = v;
                    }
                    first += 2;
                }
            }
        }
        if !ss.is_empty() {
            let s = &mut ss[q * GROUP..];
            match dg.len() / il {
                GROUP => {
                    let ps: [&[f32]; GROUP] = std::array::from_fn(|j| &dg[j * il..(j + 1) * il]);
                    s[..GROUP].copy_from_slice(&plane_sums(ps));
                }
                n => {
                    for j in 0..n {
                        s[j] = plane_sums([&dg[j * il..(j + 1) * il]])[0];
                    }
                }
            }
        }
    }
    VALS.set(vals);
    wrong
}

/// Each plane's sum exactly as eager's `cpu::reduce::sum_f64` orders it (below its parallel
/// size): f64 lanes `l` add elements `8·j + l` of `chunks_exact(8)` in order, the tail is
/// summed on its own, then `lanes.sum() + tail`. Elementwise lane adds only, so how the
/// compiler vectorizes the `P` independent chains does not change a bit.
#[inline(always)]
fn plane_sums<const P: usize>(ps: [&[f32]; P]) -> [f64; P] {
    let len = ps[0].len();
    let cut = len - len % 8;
    let mut acc = [[0f64; 8]; P];
    for j in (0..cut).step_by(8) {
        for (a, p) in acc.iter_mut().zip(&ps) {
            let x: &[f32; 8] = p[j..j + 8].try_into().expect("8 elements");
            for (a, &x) in a.iter_mut().zip(x) {
                *a += x as f64;
            }
        }
    }
    std::array::from_fn(|p| {
        let tail: f64 = ps[p][cut..].iter().map(|&x| x as f64).sum();
        acc[p].iter().sum::<f64>() + tail
    })
}

#[allow(clippy::too_many_arguments)]
fn bwd_planes(
    gy: &[f32],
    pooled: &[f32],
    idx: &[i64],
    c0: f32,
    g: Pool2x2,
    k0: usize,
    ds: &mut [f32],
    ss: &mut [f64],
) -> bool {
    bwd_body::<false>(gy, pooled, idx, c0, g, k0, ds, ss)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn bwd_planes_avx512(
    gy: &[f32],
    pooled: &[f32],
    idx: &[i64],
    c0: f32,
    g: Pool2x2,
    k0: usize,
    ds: &mut [f32],
    ss: &mut [f64],
) -> bool {
    bwd_body::<true>(gy, pooled, idx, c0, g, k0, ds, ss)
}

#[cfg(test)]
#[path = "pool_fused_tests.rs"]
mod tests;
