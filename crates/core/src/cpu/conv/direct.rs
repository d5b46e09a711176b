//! Direct f32 convolution kernels for AVX-512: no im2col, no gemm packing.
//!
//! In the wide layout of [`super::wide`], tap `t = (c, i, j)` of output position `p`
//! reads `xp[off(t) + p]` of the zero-padded image: for a fixed tap, consecutive outputs
//! read consecutive inputs. So each kernel here walks taps in its inner loop and keeps a
//! block of outputs in 16-lane registers, loading straight from the padded image:
//! - forward: `out[o][p] = Σ_t W[o][t] · xp[off(t) + p]`, blocks of output channels × positions;
//! - input grad: `dxp[off(t) + p] += Σ_o W[o][t] · dy[o][p]`, blocks of taps × positions;
//! - weight grad: `dW[o][t] = Σ_{image, p} dy[o][p] · xp[off(t) + p]`, blocks of channels ×
//!   taps, each a 16-lane partial sum reduced once per chunk of images.
//!
//! For LeNet-sized layers (a few thousand weights) this does the arithmetic of im2col + gemm
//! with none of its copies. Taken for f32, groups 1, stride 1, the wide layout, and weights
//! of at most [`MAX_WEIGHTS`] elements, on CPUs with AVX-512F; other cases use the gemm paths
//! (as does everything when `MLFW_CONV_DIRECT=0`, for comparison).
//! Positions are padded to whole register blocks and garbage columns of `dy` are zeros, so
//! the kernels need no masks; buffers carry enough zero slack for the overhanging reads.

use super::geom::{over_batch, with_scratch, Geom};
use super::wide::{self, Wide};
use crate::parallel;
use std::mem::MaybeUninit;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Largest weight tensor (elements) the direct kernels take.
pub(super) const MAX_WEIGHTS: usize = 4096;
/// f32 lanes of one AVX-512 register.
const L: usize = 16;

/// True when this CPU and geometry suit the direct kernels.
pub(super) fn usable(g: &Geom) -> bool {
    g.groups == 1 && g.o * g.k() <= MAX_WEIGHTS && g.k() > 0 && g.o > 0 && has_avx512()
}

/// AVX-512F is present and the kernels are not switched off with `MLFW_CONV_DIRECT=0`.
pub(super) fn has_avx512() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *OFF.get_or_init(|| std::env::var("MLFW_CONV_DIRECT").is_ok_and(|v| v.trim() == "0")) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Sizes shared by the three kernels.
pub(super) struct Plan {
    /// `off(t)` for every tap, padded with zeros to a whole tap block.
    pub(super) offs: Vec<usize>,
    /// Wide positions rounded up to whole register blocks.
    pub(super) np: usize,
    /// Elements of one padded image including the zero slack for overhanging reads.
    pub(super) img: usize,
    /// Elements of one padded image without slack.
    pub(super) body: usize,
}

impl Plan {
    pub(super) fn new(g: &Geom, w: &Wide, block: usize, taps: usize) -> Plan {
        let k = g.k();
        let mut offs = Vec::with_capacity(k.next_multiple_of(taps));
        for c in 0..g.c {
            for i in 0..g.kh {
                for j in 0..g.kw {
                    offs.push(w.offset(g, c, i, j));
                }
            }
        }
        offs.resize(k.next_multiple_of(taps), 0);
        let np = w.np.next_multiple_of(block);
        let body = g.c * w.plane;
        // Reads reach off(t) + np − 1 ≤ body + (kW−1)·dW + (np − P') − 1.
        let slack = (g.kw - 1) * g.p.dilation.1 + (np - w.np) + L;
        Plan {
            offs,
            np,
            img: body + slack,
            body,
        }
    }
}

/// Writes image `x[C, H, W]` into `xp` (`Plan::img` elements) zero-padded, slack zeroed.
pub(super) fn pad_into(x: &[f32], xp: &mut [f32], g: &Geom, w: &Wide, plan: &Plan) {
    wide::pad(x, &mut xp[..plan.body], g, w);
    xp[plan.body..].fill(0.0);
}

/// Writes `dy[O, oH, oW]` at the wide positions of `dyw[rows][np]`, zeros elsewhere
/// (garbage columns, the rounded-up tail, and rows `O..rows`).
fn widen_into(dy: &[f32], dyw: &mut [f32], g: &Geom, w: &Wide, np: usize) {
    wide::widen(dy, dyw, np, g, w);
    for o in 0..g.o {
        dyw[o * np + w.np..(o + 1) * np].fill(0.0);
    }
    dyw[g.o * np..].fill(0.0);
}

/// Output-channel block × vectors per position block of the forward kernel, chosen to waste
/// the fewest padded channels.
fn fwd_shape(o: usize) -> (usize, usize) {
    [(8, 3), (6, 4), (4, 6)]
        .into_iter()
        .min_by_key(|&(ob, _)| (o.next_multiple_of(ob), usize::MAX - ob))
        .unwrap_or((8, 3))
}

/// Forward into `out[N, O, oH, oW]` (every element written), adding `bias[o]` when given.
pub(super) fn fwd(
    x: &[f32],
    wt: &[f32],
    bias: Option<&[f32]>,
    g: &Geom,
    w: &Wide,
    out: &mut [MaybeUninit<f32>],
) {
    let fw = FwdWide::new(wt, g, w);
    let np = g.np();
    over_batch(g, out, g.o * np, fw.scratch(), |i, oi, buf| {
        let wide = fw.image(x, i, buf);
        for (o, dst) in oi.chunks_exact_mut(np).enumerate() {
            let b = bias.map_or(0.0, |b| b[o]);
            for (y, row) in dst.chunks_exact_mut(g.ow).enumerate() {
                let src = &wide[o * fw.plan.np + y * w.wp..][..g.ow];
                // SAFETY: AVX-512F was detected; `row` and `src` both hold `ow` elements.
                unsafe { add_row(row.as_mut_ptr().cast::<f32>(), src.as_ptr(), g.ow, b) };
            }
        }
    });
}

/// Forward for compiled plans' fused epilogues: instead of storing `out[N, O, oH, oW]`,
/// hands image `i`'s output to `epi(i, wide, (plane stride, row stride), a_i, b_i)` while it
/// is still in the thread's scratch (L1/L2). `wide[o·ps + y·rs + x]` is output `(o, y, x)`
/// before `fwd`'s `+ 0.0` (which only turns `-0.0` into `+0.0`); `a_i`/`b_i` are image `i`'s
/// `a_img`/`b_img`-element chunks of `a`/`b`. Images run in parallel chunks like [`fwd`].
#[allow(clippy::too_many_arguments)]
pub(super) fn fwd_each<A: Send, B: Send>(
    x: &[f32],
    wt: &[f32],
    g: &Geom,
    w: &Wide,
    (a, a_img): (&mut [A], usize),
    (b, b_img): (&mut [B], usize),
    epi: impl Fn(usize, &[f32], (usize, usize), &mut [A], &mut [B]) + Sync,
) {
    let fw = FwdWide::new(wt, g, w);
    if a_img == 0 || b_img == 0 || g.n == 0 {
        return;
    }
    let per = super::geom::images_per_task(g);
    parallel::for_each_chunk_pair_mut(a, per * a_img, b, per * b_img, |ci, ac, bc| {
        with_scratch(fw.scratch(), |buf| {
            for (k, (ai, bi)) in ac.chunks_mut(a_img).zip(bc.chunks_mut(b_img)).enumerate() {
                let i = ci * per + k;
                let wide = fw.image(x, i, buf);
                epi(i, wide, (fw.plan.np, w.wp), ai, bi);
            }
        })
    });
}

/// The forward's per-call state: the tap plan and the weights as `[K][O']`.
struct FwdWide<'a> {
    g: &'a Geom,
    w: &'a Wide,
    plan: Plan,
    wk: Vec<f32>,
    /// Output-channel block, vectors per position block, padded channel count.
    ob: usize,
    nv: usize,
    op: usize,
}

impl<'a> FwdWide<'a> {
    fn new(wt: &[f32], g: &'a Geom, w: &'a Wide) -> Self {
        let (ob, nv) = fwd_shape(g.o);
        let plan = Plan::new(g, w, nv * L, 1);
        let (k, op) = (g.k(), g.o.next_multiple_of(ob));
        // Weights as [K][O'] (zero columns up to O') so one tap's channels are adjacent.
        let mut wk = vec![0f32; k * op];
        for o in 0..g.o {
            for t in 0..k {
                wk[t * op + o] = wt[o * k + t];
            }
        }
        FwdWide {
            g,
            w,
            plan,
            wk,
            ob,
            nv,
            op,
        }
    }

    /// Scratch elements per thread: the padded image and the wide output.
    fn scratch(&self) -> usize {
        self.plan.img + self.op * self.plan.np
    }

    /// Computes image `i`'s wide output in `buf` (`scratch()` elements) and returns it.
    fn image<'b>(&self, x: &[f32], i: usize, buf: &'b mut [f32]) -> &'b [f32] {
        let (g, plan, (ob, nv, op)) = (self.g, &self.plan, (self.ob, self.nv, self.op));
        let (xp, wide) = buf.split_at_mut(plan.img);
        pad_into(&x[i * g.img()..(i + 1) * g.img()], xp, g, self.w, plan);
        for o0 in (0..op).step_by(ob) {
            for p0 in (0..plan.np).step_by(nv * L) {
                // SAFETY: AVX-512F was detected (`usable`); reads stay inside `xp` (off(t) + p0
                // + nv·16 ≤ plan.img by construction of the slack) and `wk` (o0 + ob ≤ op);
                // writes stay inside `wide` (o0 + ob ≤ op rows of plan.np).
                unsafe {
                    let dst = wide.as_mut_ptr().add(o0 * plan.np + p0);
                    let (src, wts) = (xp.as_ptr().add(p0), self.wk.as_ptr().add(o0));
                    match (ob, nv) {
                        (8, 3) => fwd_block::<8, 3>(src, &plan.offs, wts, op, dst, plan.np),
                        (6, 4) => fwd_block::<6, 4>(src, &plan.offs, wts, op, dst, plan.np),
                        _ => fwd_block::<4, 6>(src, &plan.offs, wts, op, dst, plan.np),
                    }
                }
            }
        }
        wide
    }
}

/// `dst[..n] = src[..n] + b`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn add_row(dst: *mut f32, src: *const f32, n: usize, b: f32) {
    let bv = _mm512_set1_ps(b);
    let mut i = 0;
    while i + L <= n {
        _mm512_storeu_ps(dst.add(i), _mm512_add_ps(_mm512_loadu_ps(src.add(i)), bv));
        i += L;
    }
    if i < n {
        let m: __mmask16 = (1u16 << (n - i)) - 1;
        let v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, src.add(i)), bv);
        _mm512_mask_storeu_ps(dst.add(i), m, v);
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn add_row(_: *mut f32, _: *const f32, _: usize, _: f32) {
    unreachable!("direct kernels need AVX-512")
}

/// One block: `dst[o][v·16..] = Σ_t wts[t·ws + o] · src[offs[t] + v·16..]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fwd_block<const OB: usize, const NV: usize>(
    src: *const f32,
    offs: &[usize],
    wts: *const f32,
    ws: usize,
    dst: *mut f32,
    ds: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; OB];
    for (t, &off) in offs.iter().enumerate() {
        let s = src.add(off);
        let mut xv = [_mm512_setzero_ps(); NV];
        for (v, x) in xv.iter_mut().enumerate() {
            *x = _mm512_loadu_ps(s.add(v * L));
        }
        let wr = wts.add(t * ws);
        for (o, a) in acc.iter_mut().enumerate() {
            let wv = _mm512_set1_ps(*wr.add(o));
            for (a, &x) in a.iter_mut().zip(&xv) {
                *a = _mm512_fmadd_ps(wv, x, *a);
            }
        }
    }
    for (o, a) in acc.iter().enumerate() {
        for (v, &a) in a.iter().enumerate() {
            _mm512_storeu_ps(dst.add(o * ds + v * L), a);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn fwd_block<const OB: usize, const NV: usize>(
    _: *const f32,
    _: &[usize],
    _: *const f32,
    _: usize,
    _: *mut f32,
    _: usize,
) {
    unreachable!("direct kernels need AVX-512")
}

/// Taps per block and vectors per position block of the input-gradient kernel.
const BI_TB: usize = 8;
const BI_NV: usize = 3;

/// The input-gradient kernel's per-call state: the tap plan and the weights as `[O][K']`.
struct BwdInput<'a> {
    g: &'a Geom,
    w: &'a Wide,
    plan: Plan,
    wk: Vec<f32>,
}

impl<'a> BwdInput<'a> {
    fn new(wt: &[f32], g: &'a Geom, w: &'a Wide) -> Self {
        let plan = Plan::new(g, w, BI_NV * L, BI_TB);
        let (k, kp) = (g.k(), plan.offs.len());
        // Weights as [O][K'] with zero taps up to K'.
        let mut wk = vec![0f32; g.o * kp];
        for o in 0..g.o {
            wk[o * kp..o * kp + k].copy_from_slice(&wt[o * k..(o + 1) * k]);
        }
        BwdInput { g, w, plan, wk }
    }

    /// Scratch elements per thread: the padded input gradient and the widened `dy`.
    fn scratch(&self) -> usize {
        self.plan.img + self.g.o * self.plan.np
    }

    /// Image `i`'s input gradient `dxi` (`C·H·W`) from its dense output gradient `dyi`
    /// (`O·oH·oW`), in `buf` (`scratch()` elements).
    fn image(&self, dyi: &[f32], dxi: &mut [f32], buf: &mut [f32]) {
        let (g, w, plan) = (self.g, self.w, &self.plan);
        let (k, kp) = (g.k(), plan.offs.len());
        let (dxp, dyw) = buf.split_at_mut(plan.img);
        widen_into(dyi, dyw, g, w, plan.np);
        dxp.fill(0.0);
        for t0 in (0..kp).step_by(BI_TB) {
            for p0 in (0..plan.np).step_by(BI_NV * L) {
                let offs = &plan.offs[t0..(t0 + BI_TB).min(k)];
                // SAFETY: AVX-512F was detected; `dyw` holds O rows of plan.np ≥ p0 + 48,
                // `wk` O rows of K' ≥ t0 + 8; the adds reach off(t) + plan.np ≤ plan.img.
                unsafe {
                    bi_block(
                        dyw.as_ptr().add(p0),
                        plan.np,
                        g.o,
                        self.wk.as_ptr().add(t0),
                        kp,
                        dxp.as_mut_ptr().add(p0),
                        offs,
                    );
                }
            }
        }
        let (ph, pw) = g.p.padding;
        for (c, plane) in dxi.chunks_exact_mut(g.h * g.w).enumerate() {
            for (r, row) in plane.chunks_exact_mut(g.w).enumerate() {
                let at = c * w.plane + (ph + r) * w.wp + pw;
                row.copy_from_slice(&dxp[at..at + g.w]);
            }
        }
    }
}

/// Input gradient into `dx[N, C, H, W]`.
pub(super) fn bwd_input(dy: &[f32], wt: &[f32], g: &Geom, w: &Wide, dx: &mut [f32]) {
    let bi = BwdInput::new(wt, g, w);
    let np = g.np();
    over_batch(g, dx, g.img(), bi.scratch(), |i, dxi, buf| {
        bi.image(&dy[i * g.o * np..(i + 1) * g.o * np], dxi, buf)
    });
}

/// The input gradient (into `dx[N, C, H, W]`) and the weight gradient (returned) together,
/// with image `i`'s dense output gradient `[O, oH, oW]` written by `dense(i, buf)` into a
/// thread's scratch once and read by both kernels from there: [`bwd_weight_each`]'s
/// partition and order, and per image [`bwd_input`]'s arithmetic, so both results are
/// bit-identical to the two kernels run on the gradient `dense` writes.
pub(super) fn bwd_both_each(
    x: &[f32],
    wt: &[f32],
    g: &Geom,
    w: &Wide,
    dense: &(dyn Fn(usize, &mut [f32]) + Sync),
    dx: &mut [f32],
) -> Vec<f32> {
    thread_local! {
        static BUF: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let bi = BwdInput::new(wt, g, w);
    let (dense_len, img) = (g.o * g.np(), g.img());
    assert_eq!(dx.len(), g.n * img, "direct: input-gradient size");
    let dst = SendPtr(dx.as_mut_ptr());
    wgrad::bwd_weight_with(x, g, w, &|i, d, rs| {
        let mut buf = BUF.take();
        buf.resize(dense_len + bi.scratch(), 0.0);
        let (dyi, rest) = buf.split_at_mut(dense_len);
        dense(i, dyi);
        widen_into(dyi, d, g, w, rs);
        // SAFETY: image i's slice of `dx`, which only this call writes (each image is
        // filled once), inside the `&mut dx` that outlives the kernel.
        let dxi = unsafe { std::slice::from_raw_parts_mut(dst.get().add(i * img), img) };
        bi.image(dyi, dxi, rest);
        BUF.set(buf);
    })
}

/// A pointer the weight-gradient tasks share to write disjoint images of one output.
struct SendPtr(*mut f32);
// SAFETY: each task writes only its own images' slices (see `bwd_both_each`).
unsafe impl Sync for SendPtr {}
impl SendPtr {
    fn get(&self) -> *mut f32 {
        self.0
    }
}

/// One block of 8 taps × 48 positions: `dxp[offs[t] + v·16..] += Σ_o wts[o·ws + t] ·
/// dy[o·ds + v·16..]` (the adjoint of im2col fused in: each dcol row is added back where
/// the forward read it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn bi_block(
    dy: *const f32,
    ds: usize,
    o: usize,
    wts: *const f32,
    ws: usize,
    dxp: *mut f32,
    offs: &[usize],
) {
    let mut acc = [[_mm512_setzero_ps(); BI_NV]; BI_TB];
    for oc in 0..o {
        let s = dy.add(oc * ds);
        let mut yv = [_mm512_setzero_ps(); BI_NV];
        for (v, y) in yv.iter_mut().enumerate() {
            *y = _mm512_loadu_ps(s.add(v * L));
        }
        let wr = wts.add(oc * ws);
        for (t, a) in acc.iter_mut().enumerate() {
            let wv = _mm512_set1_ps(*wr.add(t));
            for (a, &y) in a.iter_mut().zip(&yv) {
                *a = _mm512_fmadd_ps(wv, y, *a);
            }
        }
    }
    for (a, &off) in acc.iter().zip(offs) {
        let d = dxp.add(off);
        for (v, &a) in a.iter().enumerate() {
            let p = d.add(v * L);
            _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), a));
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn bi_block(
    _: *const f32,
    _: usize,
    _: usize,
    _: *const f32,
    _: usize,
    _: *mut f32,
    _: &[usize],
) {
    unreachable!("direct kernels need AVX-512")
}

#[path = "direct_wgrad.rs"]
mod wgrad;
pub(super) use wgrad::{bwd_weight, bwd_weight_each};
