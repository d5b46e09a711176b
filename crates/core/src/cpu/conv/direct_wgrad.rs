//! The direct kernels' weight gradient ([`super`]): `dW[o][t] = Σ_{image, p} dy[o][p] ·
//! xp[off(t) + p]`, blocks of channels × taps, each a 16-lane partial sum reduced once per
//! chunk of images; the image's `dy` widened into scratch by the caller's `fill`, so that a
//! compiled plan can write it there instead of reading it from memory.

use super::super::geom::{with_scratch, Geom};
use super::super::wide::Wide;
use super::{pad_into, widen_into, Plan, L};
use crate::parallel::{self, num_threads};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Channels × taps per block of the weight-gradient kernel.
const BW_OB: usize = 4;
const BW_TB: usize = 6;
/// Most images per weight-gradient chunk (their padded inputs and gradients stay in cache).
const BW_IMAGES: usize = 16;
/// Scratch budget (elements) of one weight-gradient chunk; large images go one at a time.
const BW_SCRATCH: usize = 1 << 18;

/// Weight gradient `[O, C, kH, kW]`.
pub(in super::super) fn bwd_weight(x: &[f32], dy: &[f32], g: &Geom, w: &Wide) -> Vec<f32> {
    let np = g.np();
    bwd_weight_with(x, g, w, &|i, d, rs| {
        widen_into(&dy[i * g.o * np..(i + 1) * g.o * np], d, g, w, rs)
    })
}

/// [`bwd_weight`] with image `i`'s output gradient `[O, oH, oW]` written by `dense(i, buf)`
/// into a thread's scratch (`O·oH·oW` elements) just before the kernel reads it, instead of
/// read from a full-size `dy` in memory: the same arithmetic in the same order, so the
/// result is bit-identical to [`bwd_weight`] on the gradient `dense` writes.
pub(in super::super) fn bwd_weight_each(
    x: &[f32],
    g: &Geom,
    w: &Wide,
    dense: &(dyn Fn(usize, &mut [f32]) + Sync),
) -> Vec<f32> {
    thread_local! {
        static DENSE: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    }
    bwd_weight_with(x, g, w, &|i, d, rs| {
        let mut buf = DENSE.take();
        buf.resize(g.o * g.np(), 0.0);
        dense(i, &mut buf);
        widen_into(&buf, d, g, w, rs);
        DENSE.set(buf);
    })
}

/// The weight gradient with image `i`'s gradient widened by `fill(i, dyw, row stride)`
/// into `dyw` (`O'` rows of `row stride` elements; see `widen_into`).
pub(super) fn bwd_weight_with(
    x: &[f32],
    g: &Geom,
    w: &Wide,
    fill: &(dyn Fn(usize, &mut [f32], usize) + Sync),
) -> Vec<f32> {
    let plan = Plan::new(g, w, L, BW_TB);
    let (k, kp, op) = (g.k(), plan.offs.len(), g.o.next_multiple_of(BW_OB));
    let per_image = plan.img + op * plan.np;
    let images = (BW_SCRATCH / per_image).clamp(1, BW_IMAGES);
    let chunks = g.n.div_ceil(images);
    let tasks = if g.work() >= 1 << 18 {
        num_threads().min(chunks)
    } else {
        1
    };
    let part = |task: usize| {
        let mut acc = vec![0f32; op * kp];
        with_scratch(images * per_image, |buf: &mut [f32]| {
            for ci in (task..chunks).step_by(tasks) {
                let (i0, i1) = (ci * images, ((ci + 1) * images).min(g.n));
                let (xps, dyws) = buf.split_at_mut(images * plan.img);
                for (b, i) in (i0..i1).enumerate() {
                    let xi = &x[i * g.img()..(i + 1) * g.img()];
                    pad_into(xi, &mut xps[b * plan.img..(b + 1) * plan.img], g, w, &plan);
                    fill(
                        i,
                        &mut dyws[b * op * plan.np..(b + 1) * op * plan.np],
                        plan.np,
                    );
                }
                for o0 in (0..op).step_by(BW_OB) {
                    for t0 in (0..kp).step_by(BW_TB) {
                        let offs = &plan.offs[t0..t0 + BW_TB];
                        // SAFETY: AVX-512F was detected; for each of the i1 − i0 images,
                        // reads of `xps` reach off(t) + plan.np ≤ plan.img and reads of
                        // `dyws` rows o0..o0 + 4 < op stay in that image's block.
                        unsafe {
                            bw_block(
                                xps.as_ptr(),
                                plan.img,
                                dyws.as_ptr().add(o0 * plan.np),
                                op * plan.np,
                                plan.np,
                                i1 - i0,
                                offs,
                                &mut acc[o0 * kp + t0..],
                                kp,
                            );
                        }
                    }
                }
            }
        });
        acc
    };
    let parts = parallel::map(tasks, part);
    let mut dw = vec![0f32; g.o * k];
    for p in &parts {
        for o in 0..g.o {
            let (d, s) = (&mut dw[o * k..(o + 1) * k], &p[o * kp..o * kp + k]);
            d.iter_mut().zip(s).for_each(|(d, &s)| *d += s);
        }
    }
    dw
}

/// One block: `acc[o·as + t] += Σ_images Σ_p dy[o][p] · x[offs[t] + p]` for 4 channels × 6 taps.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn bw_block(
    x: *const f32,
    x_img: usize,
    dy: *const f32,
    dy_img: usize,
    np: usize,
    images: usize,
    offs: &[usize],
    acc: &mut [f32],
    acc_rs: usize,
) {
    let mut a = [[_mm512_setzero_ps(); BW_TB]; BW_OB];
    for b in 0..images {
        let (xb, yb) = (x.add(b * x_img), dy.add(b * dy_img));
        let xs: [*const f32; BW_TB] = std::array::from_fn(|t| xb.add(offs[t]));
        for p in (0..np).step_by(L) {
            let yv: [__m512; BW_OB] = std::array::from_fn(|o| _mm512_loadu_ps(yb.add(o * np + p)));
            for (t, &s) in xs.iter().enumerate() {
                let xv = _mm512_loadu_ps(s.add(p));
                for (o, &y) in yv.iter().enumerate() {
                    a[o][t] = _mm512_fmadd_ps(y, xv, a[o][t]);
                }
            }
        }
    }
    for (o, row) in a.iter().enumerate() {
        for (t, &v) in row.iter().enumerate() {
            acc[o * acc_rs + t] += _mm512_reduce_add_ps(v);
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
    _: &[usize],
    _: &mut [f32],
    _: usize,
) {
    unreachable!("direct kernels need AVX-512")
}
