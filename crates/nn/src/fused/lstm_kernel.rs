//! The float32 kernels of [`super::lstm`]: an LSTM layer-direction forward and backward
//! through time. The hidden units are split into one block per thread; per time step each
//! thread computes the recurrent product for its units' four gates (four small gemms against
//! `W_hhᵀ` read in place), then their gate math, vectorised (`sigmoid(x) = 1/(1 + e^−x)`,
//! `tanh(x) = 2/(1 + e^−2x) − 1`, with core's vector `exp`). One fork-join per step; the
//! next step reads the whole `h_t` the threads wrote.

use super::Out;
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

/// `dst[m×n] (row stride dst_rs) = [dst +] A·B`, `A[i,p] = a[i·a_rs + p·a_cs]`,
/// `B[p,j] = b[p·b_rs + j·b_cs]`, on this thread.
///
/// # Safety
/// Every index reached lies inside the buffers; no other thread touches those `dst` elements.
unsafe fn mm(
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs): (*mut f32, usize),
    (a, a_rs, a_cs): (*const f32, usize, usize),
    (b, b_rs, b_cs): (*const f32, usize, usize),
    accumulate: bool,
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        a,
        a_cs as isize,
        a_rs as isize,
        b,
        b_cs as isize,
        b_rs as isize,
        1.0,
        1.0,
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}

/// `e^x` of every element in place (core's vector `exp`).
fn exp_in_place(x: &mut [f32]) {
    mlfw_core::cpu::exp_shifted_sum(x, 0.0);
}

/// `W_hh [4H, H]` row-major from `wt = W_hhᵀ [H, 4H]`.
fn w_hh(wt: &[f32], h: usize) -> Vec<f32> {
    let g4 = 4 * h;
    let mut w = vec![0f32; g4 * h];
    for (j, row) in wt.chunks_exact(g4).enumerate() {
        for (p, &v) in row.iter().enumerate() {
            w[p * h + j] = v;
        }
    }
    w
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

/// Forward over the steps in `order`: `xg [T, B, 4H]` (input part of the gates, biases
/// included), `h0`/`c0 [B, H]`, `wt = W_hhᵀ [H, 4H]`. Returns `[T + 1, B, H]` (h_t in time
/// order, then the final cell state) and the saved activations.
pub(crate) fn forward(
    d: Dims,
    order: &[usize],
    xg: &[f32],
    (h0, c0): (&[f32], &[f32]),
    wt: &[f32],
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
    let w = w_hh(wt, h);
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
            // Recurrent part of gate q for units j0..j0+nu, transposed (gemm's fast
            // orientation: many rows, few columns): rec[q] = W_hh[q·H + j0.., :] · h_prevᵀ.
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
                    )
                }
            }
            // Pre-activations (row-major per gate: z[q][r][j]), negated (×2 for the tanh
            // gate), then e^(·).
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
                for j in 0..nu {
                    let e = |q: usize| z[(q * b + r) * nu + j];
                    let (gi, gf) = (1.0 / (1.0 + e(0)), 1.0 / (1.0 + e(1)));
                    let gg = 2.0 / (1.0 + e(2)) - 1.0;
                    let go = 1.0 / (1.0 + e(3));
                    let at = r * h + j0 + j;
                    // SAFETY: units j0..j0+nu of every row belong to this task.
                    unsafe {
                        let cp = pstate.at(at);
                        let cn = gf * *cp + gi * gg;
                        *cp = cn;
                        *pc.at(t * bh + at) = cn;
                        tc[r * nu + j] = -2.0 * cn;
                        let a = t * bg + r * g4 + j0 + j;
                        *pa.at(a) = gi;
                        *pa.at(a + h) = gf;
                        *pa.at(a + 2 * h) = gg;
                        *pa.at(a + 3 * h) = go;
                    }
                }
            }
            exp_in_place(&mut tc);
            for r in 0..b {
                for j in 0..nu {
                    let at = r * h + j0 + j;
                    let tanh_c = 2.0 / (1.0 + tc[r * nu + j]) - 1.0;
                    // SAFETY: as above.
                    unsafe {
                        let go = *pa.at(t * bg + r * g4 + 3 * h + j0 + j);
                        *pt.at(t * bh + at) = tanh_c;
                        *po.at(t * bh + at) = go * tanh_c;
                    }
                }
            }
        });
    }
    out[d.t * bh..].copy_from_slice(&c);
    (out, Saved { acts, cs, tcs })
}

/// Backward through the steps of `order` (reversed): from the output gradient
/// `gout [T + 1, B, H]` (row `T`: the final cell state's), the forward's output `hout`,
/// `h0`, `c0`, `wt = W_hhᵀ [H, 4H]` and the saved activations. Returns the gradients of
/// `xg [T, B, 4H]`, `h0` and `c0`, and `h_{t−1}` per step (`[T, B, H]`, for `W_hh`'s
/// gradient).
#[allow(clippy::type_complexity)]
pub(crate) fn backward(
    d: Dims,
    order: &[usize],
    (gout, hout): (&[f32], &[f32]),
    (h0, c0): (&[f32], &[f32]),
    wt: &[f32],
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
            // Transposed (units × batch), gemm's fast orientation: dhᵀ = W_hh[:, j0..]ᵀ·dGᵀ,
            // where W_hh[:, j]ᵀ is row j of wt.
            let mut dht = vec![0f32; nu * b];
            if let Some(l) = later {
                // SAFETY: dG[later] is complete (the fork-join before) and read-only now;
                // dht is nu×b and ours; wt is h×4h.
                unsafe {
                    mm(
                        (nu, b, g4),
                        (dht.as_mut_ptr(), b),
                        (wt.as_ptr().add(j0 * g4), g4, 1),
                        (pg.at(l * bg), 1, g4),
                        false,
                    )
                }
            }
            let mut dh = vec![0f32; b * nu];
            for r in 0..b {
                let g = &gout[t * bh + r * h + j0..][..nu];
                for (j, (o, &gv)) in dh[r * nu..(r + 1) * nu].iter_mut().zip(g).enumerate() {
                    *o = gv + dht[j * b + r];
                }
            }
            for r in 0..b {
                for j in 0..nu {
                    let at = r * h + j0 + j;
                    let a = t * bg + r * g4 + j0 + j;
                    let (gi, gf, gg, go) = (
                        s.acts[a],
                        s.acts[a + h],
                        s.acts[a + 2 * h],
                        s.acts[a + 3 * h],
                    );
                    let dhv = dh[r * nu + j];
                    let tc = s.tcs[t * bh + at];
                    // SAFETY: units j0..j0+nu of every row belong to this task.
                    unsafe {
                        let dcp = pc.at(at);
                        let dct = *dcp + dhv * go * (1.0 - tc * tc);
                        *pg.at(a) = dct * gg * gi * (1.0 - gi);
                        *pg.at(a + h) = dct * c_prev[at] * gf * (1.0 - gf);
                        *pg.at(a + 2 * h) = dct * gi * (1.0 - gg * gg);
                        *pg.at(a + 3 * h) = dhv * tc * go * (1.0 - go);
                        *dcp = dct * gf;
                    }
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
                )
            }
        });
    }
    (dxg, dh0, dc, hprev)
}
