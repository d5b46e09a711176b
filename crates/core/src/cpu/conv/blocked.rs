//! Blocked direct convolution for many-channel stride-1 layers (AVX-512, f32): output
//! channels in the register lanes.
//!
//! The kernels of [`super::direct`] keep positions in the lanes, which suits LeNet's few
//! channels and large maps; ResNet's 3×3 layers have 64–512 channels on maps down to 4×4,
//! where a position block of 16 lanes is mostly garbage. Here a register holds 16 output
//! channels, and a block of [`OB`] = 32 channels × `R` output positions (`R` = 8–12) sits in
//! `2·R` registers while the reduction runs over input channels × taps, reading the input
//! as it lies (NCHW, zero-padded in the wide layout of [`super::wide`], so tap `t` of wide
//! position `p` is `xp[off(t) + p]`) and the weights repacked once per call as
//! `[O/32][K][32]`:
//! - forward: `out[p][o] = Σ_t xp[off(t) + p] · W[t][o]` (one broadcast, two FMAs per tap
//!   and position);
//! - input gradient: the same kernel on the transposed geometry — `dx` is the stride-1
//!   convolution of `dy` (padded by `d·(k−1) − pad`) with the flipped, transposed weights
//!   `W'[c][o][kH−1−i][kW−1−j]`;
//! - weight gradient: `dW[t][o] = Σ_{image, p} xp[off(t) + p] · dyᵀ[p][o]`, blocks of 32
//!   channels × [`TB`] taps in registers, `dy` transposed once to `[P'][O]` (zeros in the
//!   garbage columns).
//!
//! Taken (see [`super::Conv2dImpl`]) for f32, groups 1, the wide layout (stride 1), at
//! least 32 output channels and weights too large for the direct kernels; switched off with
//! the direct kernels by `MLFW_CONV_DIRECT=0`, or alone by `MLFW_CONV_BLOCKED=0`.

use super::direct::{has_avx512, pad_into, Plan, MAX_WEIGHTS};
use super::geom::{with_scratch, Geom, PAR_WORK};
use super::phase::Phase;
use super::wide::Wide;
use crate::parallel::{self, num_threads};
use crate::params::Conv2dParams;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Output channels per register block (two AVX-512 registers).
const OB: usize = 32;
/// f32 lanes of one AVX-512 register.
const L: usize = 16;
/// Taps per weight-gradient register block.
const TB: usize = 12;
/// Forward tasks per pool thread.
const TASKS_PER_THREAD: usize = 8;
/// Most elements of padded input kept per forward chunk of images.
const CHUNK_ELEMS: usize = 1 << 21;

/// True when this CPU and geometry suit the blocked kernels.
pub(super) fn usable(g: &Geom) -> bool {
    g.groups == 1 && g.o >= OB && g.c >= 8 && g.o * g.k() > MAX_WEIGHTS && enabled()
}

/// AVX-512F is present ([`has_avx512`], false under `MLFW_CONV_DIRECT=0`) and these kernels
/// are not switched off alone by `MLFW_CONV_BLOCKED=0` (for A/B runs: the layers then take
/// the wide im2col + gemm path).
fn enabled() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let off =
        *OFF.get_or_init(|| std::env::var("MLFW_CONV_BLOCKED").is_ok_and(|v| v.trim() == "0"));
    !off && has_avx512()
}

/// Where the kernels read their input: the wide layout of a stride-1 convolution, or the
/// stride phases of a strided one ([`Phase`]); either way tap `t` of wide output position
/// `p` is `xp[off(t) + p]`, with `wp` positions a row (`wp − oW` of them garbage) and `np`
/// per image.
#[derive(Debug, Clone, Copy)]
pub(super) struct Src {
    /// Wide positions per output row.
    wp: usize,
    /// Wide positions per image.
    np: usize,
    layout: Layout,
}

#[derive(Debug, Clone, Copy)]
enum Layout {
    Wide(Wide),
    Phase(Phase),
}

impl Src {
    pub(super) fn wide(w: Wide) -> Src {
        Src {
            wp: w.wp,
            np: w.np,
            layout: Layout::Wide(w),
        }
    }
    pub(super) fn phase(q: Phase) -> Src {
        Src {
            wp: q.wp,
            np: q.np,
            layout: Layout::Phase(q),
        }
    }
    fn plan(&self, g: &Geom, block: usize, taps: usize) -> Plan {
        match &self.layout {
            Layout::Wide(w) => Plan::new(g, w, block, taps),
            Layout::Phase(q) => q.plan(g, block, taps),
        }
    }
    /// Writes one input image `x[C, H, W]` in this layout into `xp` (`plan.img` elements).
    fn fill(&self, x: &[f32], xp: &mut [f32], g: &Geom, plan: &Plan) {
        match &self.layout {
            Layout::Wide(w) => pad_into(x, xp, g, w, plan),
            Layout::Phase(q) => q.fill(x, xp, g, plan),
        }
    }
}

/// Positions per register block: the largest of 12, 10, 8 that rounds `np` up by at most
/// 1/32, else the one that wastes the fewest.
fn positions(np: usize) -> usize {
    let waste = |r: usize| np.next_multiple_of(r) - np;
    [12, 10, 8]
        .into_iter()
        .find(|&r| 32 * waste(r) <= np)
        .or_else(|| [12, 10, 8].into_iter().min_by_key(|&r| waste(r)))
        .unwrap_or(12)
}

/// Weights `[O, K]` packed as `[O'/32][K][32]` (zero channels up to O'), one channel block
/// per pool task, in tiles of [`TB`] taps so that the 32 rows read and the block written
/// stay in L1.
fn pack(wt: &[f32], o_count: usize, k: usize) -> Vec<f32> {
    blocks_of(o_count.next_multiple_of(OB) * k, OB * k, |ob, blk| {
        let (o0, lanes) = (ob * OB, OB.min(o_count - ob * OB));
        for t0 in (0..k).step_by(TB) {
            let t1 = (t0 + TB).min(k);
            for lane in 0..OB {
                if lane < lanes {
                    let row = &wt[(o0 + lane) * k + t0..(o0 + lane) * k + t1];
                    for (t, &v) in (t0..t1).zip(row) {
                        blk[t * OB + lane].write(v);
                    }
                } else {
                    (t0..t1).for_each(|t| _ = blk[t * OB + lane].write(0.0));
                }
            }
        }
    })
}

/// A vector of `len` elements made of blocks of `block` elements, `fill(block index,
/// block)` writing every element of its block; blocks spread over the pool when the vector
/// has at least [`PAR_PACK`] elements. (The packed weights are written once, not zeroed
/// first: 512→512 3×3 weights are 9.4 MB.)
fn blocks_of(
    len: usize,
    block: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let mut p = Vec::with_capacity(len);
    let rows = if len >= PAR_PACK { block } else { len };
    parallel::for_each_chunk_mut(&mut p.spare_capacity_mut()[..len], rows, |ci, blocks| {
        for (bi, blk) in blocks.chunks_exact_mut(block).enumerate() {
            fill(ci * (rows / block) + bi, blk);
        }
    });
    // SAFETY: `len` is a multiple of `block`, and every block was written by `fill`.
    unsafe { p.set_len(len) };
    p
}

/// Packed weights (elements) from which [`pack`] and the input gradient's packing are
/// spread over the pool (a ResNet 64→64 3×3 layer has 36,864).
const PAR_PACK: usize = 1 << 14;

/// Forward into `out[N, O, oH, oW]` (every element written).
pub(super) fn fwd(x: &[f32], wt: &[f32], g: &Geom, w: &Src, out: &mut [MaybeUninit<f32>]) {
    let packed = pack(wt, g.o, g.k());
    fwd_packed(x, &packed, g, w, out);
}

/// Input gradient into `dx[N, C, H, W]` (every element written); `None` when the
/// transposed geometry does not suit the forward kernel (nothing written: the caller falls
/// back).
pub(super) fn bwd_input(
    dy: &[f32],
    wt: &[f32],
    g: &Geom,
    dx: &mut [MaybeUninit<f32>],
) -> Option<()> {
    let (g2, w2) = transposed(g)?;
    let (kk, k2) = (g.kh * g.kw, g2.k());
    // W'[c][(o, i, j)] = W[o][(c, kH−1−i, kW−1−j)]: one block of 32 input channels per pool
    // task, each writing its `[K'][32]` block while reading 32·kH·kW adjacent weights per o.
    let packed = blocks_of(g.c.next_multiple_of(OB) * k2, OB * k2, |cb, blk| {
        let (c0, lanes) = (cb * OB, OB.min(g.c - cb * OB));
        for (o, wo) in wt.chunks_exact(g.k()).enumerate() {
            let wc = &wo[c0 * kk..(c0 + lanes) * kk];
            for (lane, taps) in wc.chunks_exact(kk).enumerate() {
                // Tap (i, j) = i·kW + j goes to (kH−1−i)·kW + kW−1−j = kH·kW − 1 − tap.
                for (tap, &v) in taps.iter().enumerate() {
                    blk[(o * kk + kk - 1 - tap) * OB + lane].write(v);
                }
            }
            for t2 in o * kk..(o + 1) * kk {
                for d in &mut blk[t2 * OB + lanes..(t2 + 1) * OB] {
                    d.write(0.0);
                }
            }
        }
    });
    fwd_packed(dy, &packed, &g2, &Src::wide(w2), dx);
    Some(())
}

/// The geometry of the input gradient as a stride-1 forward convolution of `dy`, and its
/// wide layout, when they exist and suit the blocked kernel.
fn transposed(g: &Geom) -> Option<(Geom, Wide)> {
    let (dh, dw) = g.p.dilation;
    let pad = |d: usize, k: usize, p: usize| (d * (k - 1)).checked_sub(p);
    let p2 = Conv2dParams {
        stride: (1, 1),
        padding: (pad(dh, g.kh, g.p.padding.0)?, pad(dw, g.kw, g.p.padding.1)?),
        dilation: g.p.dilation,
        groups: 1,
    };
    let g2 = Geom::new(
        "conv2d_backward_input",
        (g.n, g.o, g.oh, g.ow),
        (g.c, g.o, g.kh, g.kw),
        None,
        &p2,
    )
    .ok()?;
    if (g2.oh, g2.ow) != (g.h, g.w) || g2.o < OB {
        return None;
    }
    Some((g2, Wide::new(&g2)?))
}

/// The forward kernel over the batch with weights already packed by [`pack`].
fn fwd_packed(x: &[f32], packed: &[f32], g: &Geom, w: &Src, out: &mut [MaybeUninit<f32>]) {
    let r = positions(w.np);
    let plan = w.plan(g, r, 1);
    let (k, np, obs) = (g.k(), g.np(), g.o.div_ceil(OB));
    let out_img = g.o * np;
    if out_img == 0 || g.n == 0 {
        return;
    }
    // Several tasks per thread, so that a thread slowed by other processes leaves its share
    // to the others (the weights are streamed per position block anyway, so smaller chunks
    // cost no extra traffic).
    let tasks = if g.work() >= PAR_WORK {
        num_threads() * TASKS_PER_THREAD
    } else {
        1
    };
    let per = g.n.div_ceil(tasks).min((CHUNK_ELEMS / plan.img).max(1));
    parallel::for_each_chunk_mut(out, per * out_img, |ci, chunk| {
        let count = chunk.len() / out_img;
        with_scratch(count * plan.img + plan.np * OB, |scratch: &mut [f32]| {
            let (xps, buf) = scratch.split_at_mut(count * plan.img);
            for (b, xp) in xps.chunks_exact_mut(plan.img).enumerate() {
                let i = ci * per + b;
                w.fill(&x[i * g.img()..(i + 1) * g.img()], xp, g, &plan);
            }
            for ob in 0..obs {
                let wts = &packed[ob * k * OB..(ob + 1) * k * OB];
                let o_here = OB.min(g.o - ob * OB);
                for (b, xp) in xps.chunks_exact(plan.img).enumerate() {
                    for p0 in (0..plan.np).step_by(r) {
                        // SAFETY: AVX-512F was detected (`usable`); reads reach xp[off(t) + p0 +
                        // r − 1] < plan.img (the plan's slack covers the rounded-up positions),
                        // wts[K·32]; writes buf[(p0 + r)·32] ≤ plan.np·32.
                        unsafe {
                            let (s, d) = (xp.as_ptr().add(p0), buf.as_mut_ptr().add(p0 * OB));
                            match r {
                                12 => fwd_block::<12>(s, &plan.offs, wts.as_ptr(), d),
                                10 => fwd_block::<10>(s, &plan.offs, wts.as_ptr(), d),
                                _ => fwd_block::<8>(s, &plan.offs, wts.as_ptr(), d),
                            }
                        }
                    }
                    let oi = &mut chunk[b * out_img..(b + 1) * out_img];
                    scatter(&buf[..w.np * OB], oi, ob * OB, o_here, g, w);
                }
            }
        });
    });
}

/// Writes the channel-minor block `buf[p'][32]` (wide positions) to channels `o0..o0 +
/// lanes` of one output image `oi[O][oH·oW]`, in tiles of 16 positions so the tile read
/// stays in L1 while its 32 channel rows are written.
fn scatter(buf: &[f32], oi: &mut [MaybeUninit<f32>], o0: usize, lanes: usize, g: &Geom, w: &Src) {
    let np = g.np();
    for y in 0..g.oh {
        for x0 in (0..g.ow).step_by(L) {
            let x1 = (x0 + L).min(g.ow);
            let tile = &buf[(y * w.wp + x0) * OB..(y * w.wp + x1) * OB];
            for lane in 0..lanes {
                let d0 = (o0 + lane) * np + y * g.ow;
                let dst = &mut oi[d0 + x0..d0 + x1];
                for (d, src) in dst.iter_mut().zip(tile.chunks_exact(OB)) {
                    d.write(src[lane]);
                }
            }
        }
    }
}

/// One block of 32 channels × `R` positions: `dst[r][o] = Σ_t src[offs[t] + r] · wts[t][o]`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fwd_block<const R: usize>(
    src: *const f32,
    offs: &[usize],
    wts: *const f32,
    dst: *mut f32,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    for (t, &off) in offs.iter().enumerate() {
        let w0 = _mm512_loadu_ps(wts.add(t * OB));
        let w1 = _mm512_loadu_ps(wts.add(t * OB + L));
        let s = src.add(off);
        for (r, a) in acc.iter_mut().enumerate() {
            let xv = _mm512_set1_ps(*s.add(r));
            a[0] = _mm512_fmadd_ps(w0, xv, a[0]);
            a[1] = _mm512_fmadd_ps(w1, xv, a[1]);
        }
    }
    for (r, a) in acc.iter().enumerate() {
        _mm512_storeu_ps(dst.add(r * OB), a[0]);
        _mm512_storeu_ps(dst.add(r * OB + L), a[1]);
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn fwd_block<const R: usize>(_: *const f32, _: &[usize], _: *const f32, _: *mut f32) {
    unreachable!("blocked kernels need AVX-512")
}

/// Most elements of padded inputs and transposed `dy` made at once by the weight gradient
/// (64 MB; larger batches of large images go in several passes).
const BW_BATCH: usize = 1 << 24;
/// Elements of transposed `dy` (one channel block) kept in cache per weight-gradient chunk.
const BW_CHUNK: usize = 1 << 15;

/// Weight gradient `[O, C, kH, kW]`: the padded inputs and `dyᵀ[P'][O']` of the batch (or
/// of [`BW_BATCH`]-sized parts of it) are made once, then the output-channel blocks are
/// spread over the pool.
pub(super) fn bwd_weight(x: &[f32], dy: &[f32], g: &Geom, w: &Src) -> Vec<f32> {
    let plan = w.plan(g, 1, TB);
    let (k, np, op) = (g.k(), g.np(), g.o.next_multiple_of(OB));
    let mut dw = vec![0f32; g.o * k];
    if g.n == 0 || np == 0 {
        return dw;
    }
    let batch = (BW_BATCH / (plan.img + w.np * op)).clamp(1, g.n);
    for i0 in (0..g.n).step_by(batch) {
        images_into(x, dy, g, w, &plan, (i0, batch.min(g.n - i0)), &mut dw);
    }
    dw
}

/// Adds the weight gradient of images `i0..i0 + nb` into `dw[O, K]`.
fn images_into(
    x: &[f32],
    dy: &[f32],
    g: &Geom,
    w: &Src,
    plan: &Plan,
    (i0, nb): (usize, usize),
    dw: &mut [f32],
) {
    let (k, kp, np, op) = (g.k(), plan.offs.len(), g.np(), g.o.next_multiple_of(OB));
    let dy_img = w.np * op;
    let parallel = g.work() >= PAR_WORK;
    with_scratch(nb * (plan.img + dy_img), |buf: &mut [f32]| {
        let (xps, dyts) = buf.split_at_mut(nb * plan.img);
        let pads = if parallel { plan.img } else { xps.len() };
        parallel::for_each_chunk_mut(xps, pads, |ci, chunk| {
            for (b, xp) in chunk.chunks_exact_mut(plan.img).enumerate() {
                let i = i0 + ci * (pads / plan.img) + b;
                w.fill(&x[i * g.img()..(i + 1) * g.img()], xp, g, plan);
            }
        });
        let dys = if parallel { dy_img } else { dyts.len() };
        parallel::for_each_chunk_mut(dyts, dys, |ci, chunk| {
            for (b, dyt) in chunk.chunks_exact_mut(dy_img).enumerate() {
                let i = i0 + ci * (dys / dy_img) + b;
                transpose_dy(&dy[i * g.o * np..(i + 1) * g.o * np], dyt, g, w, op);
            }
        });
        let (xps, dyts) = (&*xps, &*dyts);
        // acc[t][o] of channel block `ob` over images `b0..b1` of this part of the batch.
        let accumulate = |ob: usize, (b0, b1): (usize, usize), acc: &mut [f32]| {
            let per = (BW_CHUNK / (w.np * OB)).max(1);
            for c0 in (b0..b1).step_by(per) {
                let count = per.min(b1 - c0);
                for t0 in (0..kp).step_by(TB) {
                    let offs: &[usize; TB] =
                        plan.offs[t0..t0 + TB].try_into().expect("whole tap block");
                    // SAFETY: AVX-512F was detected; for each of the `count` images, reads of
                    // `xps` reach off(t) + P' − 1 < plan.img, reads of `dyts` stay within that
                    // image's P'·O' block (channels ob·32 + 32 ≤ O'), and the adds stay
                    // within `acc` (t0 + TB ≤ K' = acc.len() / 32).
                    unsafe {
                        bw_block(
                            xps.as_ptr().add(c0 * plan.img),
                            plan.img,
                            dyts.as_ptr().add(c0 * dy_img + ob * OB),
                            dy_img,
                            op,
                            w.np,
                            count,
                            offs,
                            acc.as_mut_ptr().add(t0 * OB),
                        );
                    }
                }
            }
        };
        // Few channel blocks (64 channels: 2, 128: 4) would give each thread one or two long
        // tasks, and one thread finishing late leaves the other idle: the batch is then split
        // too (about four tasks per thread), each task summing its images into its own
        // `acc`, and the parts added up at the end over the pool (`parts · O · K` elements).
        let obs = g.o.div_ceil(OB);
        let parts = if parallel {
            (num_threads() * TASKS_PER_THREAD / 2)
                .div_ceil(obs)
                .clamp(1, nb)
        } else {
            1
        };
        if parts > 1 {
            let accs = parallel::map(obs * parts, |task| {
                let (ob, part) = (task / parts, task % parts);
                let mut acc = vec![0f32; kp * OB];
                accumulate(ob, (part * nb / parts, (part + 1) * nb / parts), &mut acc);
                acc
            });
            parallel::for_each_chunk_mut(dw, OB * k, |ob, dwb| {
                for acc in &accs[ob * parts..(ob + 1) * parts] {
                    add_block(acc, dwb, k);
                }
            });
            return;
        }
        let rows = if parallel { OB * k } else { dw.len() };
        parallel::for_each_chunk_mut(dw, rows, |ci, dwc| {
            let mut acc = vec![0f32; kp * OB];
            for (bi, dwb) in dwc.chunks_mut(OB * k).enumerate() {
                acc.fill(0.0);
                accumulate(ci * (rows / (OB * k)) + bi, (0, nb), &mut acc);
                add_block(&acc, dwb, k);
            }
        });
    });
}

/// Adds `acc[t][32]` (one channel block, tap-major) into the rows `dwb[lanes][K]`.
fn add_block(acc: &[f32], dwb: &mut [f32], k: usize) {
    for (lane, row) in dwb.chunks_exact_mut(k).enumerate() {
        for (t, v) in row.iter_mut().enumerate() {
            *v += acc[t * OB + lane];
        }
    }
}

/// `dyt[p][o] = dy[o][p]` at the wide positions of one image (`O'` channels a row), zeros in
/// the garbage columns and padded channels; in tiles of 16 positions so the `16·O'` block
/// written stays in L1 while the `O` rows are read.
fn transpose_dy(dy: &[f32], dyt: &mut [f32], g: &Geom, w: &Src, op: usize) {
    let np = g.np();
    for y in 0..g.oh {
        let row = &mut dyt[y * w.wp * op..(y + 1) * w.wp * op];
        row[g.ow * op..].fill(0.0);
        for x0 in (0..g.ow).step_by(L) {
            let x1 = (x0 + L).min(g.ow);
            let tile = &mut row[x0 * op..x1 * op];
            for o in 0..g.o {
                let src = &dy[o * np + y * g.ow + x0..o * np + y * g.ow + x1];
                for (d, &v) in tile.chunks_exact_mut(op).zip(src) {
                    d[o] = v;
                }
            }
            if op > g.o {
                for d in tile.chunks_exact_mut(op) {
                    d[g.o..].fill(0.0);
                }
            }
        }
    }
}

/// One block of [`TB`] taps × 32 channels: `acc[t][o] += Σ_images Σ_p x[offs[t] + p] ·
/// dy[p·ds + o]` over `np` positions of each of `images` images.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn bw_block(
    x: *const f32,
    x_img: usize,
    dy: *const f32,
    dy_img: usize,
    ds: usize,
    np: usize,
    images: usize,
    offs: &[usize; TB],
    acc: *mut f32,
) {
    let mut a = [[_mm512_setzero_ps(); 2]; TB];
    for b in 0..images {
        let (xb, yb) = (x.add(b * x_img), dy.add(b * dy_img));
        let xs: [*const f32; TB] = std::array::from_fn(|t| xb.add(offs[t]));
        for p in 0..np {
            let y0 = _mm512_loadu_ps(yb.add(p * ds));
            let y1 = _mm512_loadu_ps(yb.add(p * ds + L));
            for (a, s) in a.iter_mut().zip(&xs) {
                let xv = _mm512_set1_ps(*s.add(p));
                a[0] = _mm512_fmadd_ps(y0, xv, a[0]);
                a[1] = _mm512_fmadd_ps(y1, xv, a[1]);
            }
        }
    }
    for (t, a) in a.iter().enumerate() {
        for (v, &a) in a.iter().enumerate() {
            let d = acc.add(t * OB + v * L);
            _mm512_storeu_ps(d, _mm512_add_ps(_mm512_loadu_ps(d), a));
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn bw_block(
    _: *const f32,
    _: usize,
    _: *const f32,
    _: usize,
    _: usize,
    _: usize,
    _: usize,
    _: &[usize; TB],
    _: *mut f32,
) {
    unreachable!("blocked kernels need AVX-512")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The weight gradient made in several passes over the batch (as large images do) equals
    /// the one-pass result.
    #[test]
    fn weight_gradient_in_parts_matches_one_pass() {
        if !has_avx512() {
            eprintln!("skipped: no AVX-512 (or MLFW_CONV_DIRECT=0)");
            return;
        }
        let p = Conv2dParams {
            padding: (1, 1),
            ..Conv2dParams::default()
        };
        let g = Geom::new("test", (5, 40, 6, 7), (48, 40, 3, 3), None, &p).expect("geometry");
        let w = Src::wide(Wide::new(&g).expect("wide layout"));
        let val = |i: usize| ((i * 7919 % 1000) as f32 - 500.0) / 250.0;
        let x: Vec<f32> = (0..g.n * g.img()).map(val).collect();
        let dy: Vec<f32> = (0..g.n * g.o * g.np()).map(|i| val(i + 17)).collect();
        let whole = bwd_weight(&x, &dy, &g, &w);
        let plan = w.plan(&g, 1, TB);
        let mut parts = vec![0f32; whole.len()];
        for (i0, nb) in [(0, 2), (2, 1), (3, 2)] {
            images_into(&x, &dy, &g, &w, &plan, (i0, nb), &mut parts);
        }
        let scale = whole.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (a, b) in whole.iter().zip(&parts) {
            assert!((a - b).abs() <= 1e-5 * scale, "{a} vs {b}");
        }
        assert!(scale > 1.0, "a gradient that is not all zeros");
    }
}
