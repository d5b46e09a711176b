//! The generic float32 kernels of [`super::lstm`] (any hidden size, any CPU; the AVX-512 ones
//! are [`super::lstm_simd`]): an LSTM layer-direction forward and backward
//! through time. The hidden units are split into one block per thread; per time step each
//! thread computes the recurrent product for its units' four gates (four small gemms against
//! `W_hhᵀ` read in place), then their gate math, vectorised (`sigmoid(x) = 1/(1 + e^−x)`,
//! `tanh(x) = 2/(1 + e^−2x) − 1`, with core's vector `exp`). One fork-join per step; the
//! next step reads the whole `h_t` the threads wrote.

use super::{mm, Out};
use mlfw_core::parallel;

/// Sizes: steps `t`, batch `b`, hidden `h` (gates are `4h` wide).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dims {
    pub t: usize,
    pub b: usize,
    pub h: usize,
}

/// What the forward keeps for the backward.
pub(crate) struct Saved {
    /// `[T, B, 4H]`: i, f, g, o after their nonlinearities, in time order.
    pub acts: Vec<f32>,
    /// `[T, B, H]`: c_t in time order.
    pub cs: Vec<f32>,
    /// `[T, B, H]`: tanh(c_t) in time order.
    pub tcs: Vec<f32>,
}

/// `e^x` of every element in place (core's vector `exp`).
fn exp_in_place(x: &mut [f32]) {
    mlfw_core::cpu::exp_shifted_sum(x, 0.0);
}

/// `W_hhᵀ [H, 4H]` row-major from `w = W_hh [4H, H]`.
fn transpose(w: &[f32], h: usize) -> Vec<f32> {
    let g4 = 4 * h;
    let mut wt = vec![0f32; g4 * h];
    for (p, row) in w.chunks_exact(h.max(1)).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            wt[j * g4 + p] = v;
        }
    }
    wt
}

/// The unit blocks: `(start, len)` per thread, multiples of 16 where possible.
fn blocks(h: usize) -> Vec<(usize, usize)> {
    let parts = parallel::num_threads().min(h.div_ceil(32)).max(1);
    let per = h.div_ceil(parts).next_multiple_of(16).min(h.max(1));
    (0..h)
        .step_by(per.max(1))
        .map(|j0| (j0, per.min(h - j0)))
        .collect()
}

/// [`super::lstm`]'s forward on gemm and the scalar gate loops (any hidden size, any CPU).
pub(crate) fn forward_generic(
    d: Dims,
    order: &[usize],
    xg: &[f32],
    (h0, c0): (&[f32], &[f32]),
    w: &[f32],
) -> (Vec<f32>, Saved) {
    let (b, h, g4) = (d.b, d.h, 4 * d.h);
    let (bh, bg) = (b * h, b * g4);
    let mut out = vec![0f32; (d.t + 1) * bh];
    let mut acts = vec![0f32; d.t * bg];
    let mut cs = vec![0f32; d.t * bh];
    let mut tcs = vec![0f32; d.t * bh];
    let mut c = c0.to_vec();
    let ptrs = (
        Out::new(&mut out),
        Out::new(&mut acts),
        Out::new(&mut cs),
        Out::new(&mut tcs),
        Out::new(&mut c),
    );
    let units = blocks(h);
    for (k, &t) in order.iter().enumerate() {
        let (po, pa, pc, pt, pstate) = ptrs;
        // SAFETY: the previous step's row of `out` is complete (the fork-join before) and
        // no task writes it during this step.
        let hprev: &[f32] = if k == 0 {
            h0
        } else {
            unsafe { std::slice::from_raw_parts(po.at(order[k - 1] * bh), bh) }
        };
        parallel::run(units.len(), |u| {
            let (j0, nu) = units[u];
            // Recurrent part of gate q for units j0..j0+nu in gemm's fast orientation (units ×
            // batch: rec[q] = W_hh[q·H + j0.., :] · h_prevᵀ; gemm's own row-major output, far
            // faster than a strided one), then the pre-activations batch-major (z[q][r][j]),
            // negated (×2 for the tanh gate), then e^(·).
            let mut rec = vec![0f32; 4 * nu * b];
            for q in 0..4 {
                // SAFETY: rec[q] is nu×b and ours; w is 4h×h; hprev is b×h.
                unsafe {
                    mm(
                        (nu, b, h),
                        (rec.as_mut_ptr().add(q * nu * b), b),
                        (w.as_ptr().add((q * h + j0) * h), h, 1),
                        (hprev.as_ptr(), 1, h),
                        false,
                        1.0,
                    )
                }
            }
            let mut z = vec![0f32; 4 * b * nu];
            for q in 0..4 {
                let k2 = if q == 2 { -2.0 } else { -1.0 };
                let rq = &rec[q * nu * b..(q + 1) * nu * b];
                for r in 0..b {
                    let x = &xg[t * bg + r * g4 + q * h + j0..][..nu];
                    let zr = &mut z[(q * b + r) * nu..][..nu];
                    for (j, (zv, &xv)) in zr.iter_mut().zip(x).enumerate() {
                        *zv = k2 * (rq[j * b + r] + xv);
                    }
                }
            }
            exp_in_place(&mut z);
            let mut tc = vec![0f32; b * nu];
            for r in 0..b {
                let row = |q: usize| &z[(q * b + r) * nu..][..nu];
                let (ei, ef, eg, eo) = (row(0), row(1), row(2), row(3));
                let a0 = t * bg + r * g4 + j0;
                // SAFETY: units j0..j0+nu of row r of every buffer belong to this task.
                let (ai, af, ag, ao, cst, csv) = unsafe {
                    (
                        pa.part(a0, nu),
                        pa.part(a0 + h, nu),
                        pa.part(a0 + 2 * h, nu),
                        pa.part(a0 + 3 * h, nu),
                        pstate.part(r * h + j0, nu),
                        pc.part(t * bh + r * h + j0, nu),
                    )
                };
                let tr = &mut tc[r * nu..(r + 1) * nu];
                for j in 0..nu {
                    let (gi, gf) = (1.0 / (1.0 + ei[j]), 1.0 / (1.0 + ef[j]));
                    let gg = 2.0 / (1.0 + eg[j]) - 1.0;
                    let go = 1.0 / (1.0 + eo[j]);
                    let cn = gf * cst[j] + gi * gg;
                    (ai[j], af[j], ag[j], ao[j]) = (gi, gf, gg, go);
                    cst[j] = cn;
                    csv[j] = cn;
                    tr[j] = -2.0 * cn;
                }
            }
            exp_in_place(&mut tc);
            for r in 0..b {
                let a0 = t * bg + r * g4 + j0;
                let at = t * bh + r * h + j0;
                // SAFETY: as above.
                let (ao, tcs, ho) =
                    unsafe { (pa.part(a0 + 3 * h, nu), pt.part(at, nu), po.part(at, nu)) };
                for (j, &e) in tc[r * nu..(r + 1) * nu].iter().enumerate() {
                    let tanh_c = 2.0 / (1.0 + e) - 1.0;
                    tcs[j] = tanh_c;
                    ho[j] = ao[j] * tanh_c;
                }
            }
        });
    }
    out[d.t * bh..].copy_from_slice(&c);
    (out, Saved { acts, cs, tcs })
}

/// [`super::lstm`]'s backward on gemm and the scalar gate loops (any hidden size, any CPU).
#[allow(clippy::type_complexity)]
pub(crate) fn backward_generic(
    d: Dims,
    order: &[usize],
    (gout, hout): (&[f32], &[f32]),
    (h0, c0): (&[f32], &[f32]),
    w: &[f32],
    s: &Saved,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (b, h, g4) = (d.b, d.h, 4 * d.h);
    let (bh, bg) = (b * h, b * g4);
    let mut dxg = vec![0f32; d.t * bg];
    let mut hprev = vec![0f32; d.t * bh];
    let mut dc = gout[d.t * bh..].to_vec();
    let mut dh0 = vec![0f32; bh];
    let (pg, pc, ph0) = (Out::new(&mut dxg), Out::new(&mut dc), Out::new(&mut dh0));
    let units = blocks(h);
    let wt = transpose(w, h);
    for (k, &t) in order.iter().enumerate().rev() {
        let later = order.get(k + 1).copied();
        let (c_prev, h_prev): (&[f32], &[f32]) = if k == 0 {
            (c0, h0)
        } else {
            let p = order[k - 1];
            (&s.cs[p * bh..(p + 1) * bh], &hout[p * bh..(p + 1) * bh])
        };
        hprev[t * bh..(t + 1) * bh].copy_from_slice(h_prev);
        parallel::run(units.len(), |u| {
            let (j0, nu) = units[u];
            // dh for units j0..: the output's gradient plus dG[later]·W_hh[:, j0..].
            // dh for units j0.. (batch-major b×nu): the output's gradient plus
            // dG[later]·W_hh[:, j0..], computed in gemm's fast orientation (units × batch,
            // row-major: W_hh[:, j]ᵀ is row j of wt) and added transposed.
            let mut dh = vec![0f32; b * nu];
            for r in 0..b {
                dh[r * nu..(r + 1) * nu].copy_from_slice(&gout[t * bh + r * h + j0..][..nu]);
            }
            if let Some(l) = later {
                let mut dht = vec![0f32; nu * b];
                // SAFETY: dG[later] is complete (the fork-join before) and read-only now;
                // dht is nu×b and ours; wt is h×4h.
                unsafe {
                    mm(
                        (nu, b, g4),
                        (dht.as_mut_ptr(), b),
                        (wt.as_ptr().add(j0 * g4), g4, 1),
                        (pg.at(l * bg), 1, g4),
                        false,
                        1.0,
                    )
                }
                for r in 0..b {
                    for (j, o) in dh[r * nu..(r + 1) * nu].iter_mut().enumerate() {
                        *o += dht[j * b + r];
                    }
                }
            }
            for r in 0..b {
                let (a0, at) = (t * bg + r * g4 + j0, r * h + j0);
                let act = |q: usize| &s.acts[a0 + q * h..][..nu];
                let (ai, af, ag, ao) = (act(0), act(1), act(2), act(3));
                let (tcs, cp) = (&s.tcs[t * bh + at..][..nu], &c_prev[at..][..nu]);
                let dhr = &dh[r * nu..(r + 1) * nu];
                // SAFETY: units j0..j0+nu of row r belong to this task.
                let (gi_, gf_, gg_, go_, dcs) = unsafe {
                    (
                        pg.part(a0, nu),
                        pg.part(a0 + h, nu),
                        pg.part(a0 + 2 * h, nu),
                        pg.part(a0 + 3 * h, nu),
                        pc.part(at, nu),
                    )
                };
                for j in 0..nu {
                    let (gi, gf, gg, go, tc, dhv) = (ai[j], af[j], ag[j], ao[j], tcs[j], dhr[j]);
                    let dct = dcs[j] + dhv * go * (1.0 - tc * tc);
                    gi_[j] = dct * gg * gi * (1.0 - gi);
                    gf_[j] = dct * cp[j] * gf * (1.0 - gf);
                    gg_[j] = dct * gi * (1.0 - gg * gg);
                    go_[j] = dhv * tc * go * (1.0 - go);
                    dcs[j] = dct * gf;
                }
            }
        });
    }
    // The initial state's gradient: dG[first]·W_hh.
    if let Some(&first) = order.first() {
        parallel::run(units.len(), |u| {
            let (j0, nu) = units[u];
            // SAFETY: dxg is complete; columns j0..j0+nu of dh0 belong to this task; wt is h×4h.
            unsafe {
                mm(
                    (b, nu, g4),
                    (ph0.at(j0), h),
                    (pg.at(first * bg), g4, 1),
                    (wt.as_ptr().add(j0 * g4), 1, g4),
                    false,
                    1.0,
                )
            }
        });
    }
    (dxg, dh0, dc, hprev)
}
