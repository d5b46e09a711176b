//! AVX-512 step kernels of the fused LSTM ([`super::lstm_kernel`]'s fast path, hidden sizes
//! that are multiples of 16 on CPUs with AVX-512F).
//!
//! `W_hh` is packed once per sequence (forward: per block of 16 units, `[k][gate][16]`;
//! backward: per block, `[k over 4H][16]`), so that each step streams it contiguously with no
//! per-step packing. Each step is a register-tiled product of up to 6 batch rows by 4 vectors
//! (the forward's four gates of 16 units, the backward's 64 units), `h_{t−1}` / `dG_{t+1}`
//! broadcast from memory, with the gate math (forward) or its derivative (backward) applied to
//! the accumulators before they leave the registers. The hidden-unit blocks are split over the
//! threads, one fork-join per step, as the generic kernels do. The arithmetic is the generic
//! kernels' (`σ(x) = 1/(1+e^−x)`, `tanh(x) = 2/(1+e^−2x) − 1`, core's `exp` polynomial), so
//! the two agree to rounding.

use super::lstm_kernel::{Dims, Saved};
use super::{mm, Out};
use mlfw_core::cpu::exp16;
use mlfw_core::parallel;
use std::arch::x86_64::*;

/// Batch rows per register tile.
const MR: usize = 6;

/// Whether the AVX-512 kernels apply: `h` a multiple of 16, AVX-512F present, and not
/// switched off with `MLFW_LSTM_SIMD=0` (for comparisons).
pub(crate) fn usable(h: usize) -> bool {
    h > 0
        && h.is_multiple_of(16)
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::env::var_os("MLFW_LSTM_SIMD").is_none_or(|v| v != "0")
}

/// Blocks of 16 units per part: `parts` contiguous ranges of `0..h/16`.
fn ranges(h: usize, parts: usize) -> Vec<(usize, usize)> {
    let nb = h / 16;
    let parts = parts.clamp(1, nb.max(1));
    let per = nb.div_ceil(parts);
    (0..nb)
        .step_by(per.max(1))
        .map(|b0| (b0, (b0 + per).min(nb)))
        .collect()
}

/// `k / (1 + e^(s·x))`: σ(x) with `(s, k) = (−1, 1)`, `tanh(x) + 1` with `(−2, 2)`.
#[inline(always)]
unsafe fn recip_exp(x: __m512, s: f32, k: f32) -> __m512 {
    let e = exp16(_mm512_mul_ps(x, _mm512_set1_ps(s)));
    _mm512_div_ps(_mm512_set1_ps(k), _mm512_add_ps(_mm512_set1_ps(1.0), e))
}

#[inline(always)]
unsafe fn sigmoid(x: __m512) -> __m512 {
    recip_exp(x, -1.0, 1.0)
}

#[inline(always)]
unsafe fn tanh(x: __m512) -> __m512 {
    _mm512_sub_ps(recip_exp(x, -2.0, 2.0), _mm512_set1_ps(1.0))
}

/// Forward packing: block `u`, step `k`, gate `q`, lane `l` ← `W_hh[q·H + 16u + l, k]`.
fn pack_forward(w: &[f32], h: usize) -> Vec<f32> {
    let mut p = vec![0f32; 4 * h * h];
    for u in 0..h / 16 {
        for k in 0..h {
            for q in 0..4 {
                let dst = &mut p[((u * h + k) * 4 + q) * 16..][..16];
                for (l, v) in dst.iter_mut().enumerate() {
                    *v = w[(q * h + 16 * u + l) * h + k];
                }
            }
        }
    }
    p
}

/// Backward packing: block `u`, row `k` of `W_hh` (`0..4H`), lane `l` ← `W_hh[k, 16u + l]`.
fn pack_backward(w: &[f32], h: usize) -> Vec<f32> {
    let g4 = 4 * h;
    let mut p = vec![0f32; g4 * h];
    for u in 0..h / 16 {
        for k in 0..g4 {
            p[(u * g4 + k) * 16..][..16].copy_from_slice(&w[k * h + 16 * u..][..16]);
        }
    }
    p
}

/// The buffers one forward step reads and writes.
#[derive(Clone, Copy)]
struct Fwd {
    h: usize,
    b: usize,
    /// Row `t` of the inputs: `xg[t]` `[B, 4H]`.
    xg: *const f32,
    /// `h_{t−1}` `[B, H]`.
    hprev: *const f32,
    /// Packed `W_hh`.
    wp: *const f32,
    /// The running cell state `[B, H]` (read `c_{t−1}`, written `c_t`).
    c: Out,
    /// Row `t` of the activations `[B, 4H]`, the saved `c_t` and `tanh(c_t)`, and `h_t`.
    acts: Out,
    cs: Out,
    tcs: Out,
    hout: Out,
}

/// One forward tile: batch rows `r0..r0 + M`, units `16u..16u + 16`.
#[target_feature(enable = "avx512f")]
unsafe fn fwd_tile<const M: usize>(p: Fwd, u: usize, r0: usize) {
    let (h, g4) = (p.h, 4 * p.h);
    let wb = p.wp.add(u * h * 64);
    let mut acc = [[_mm512_setzero_ps(); 4]; M];
    for k in 0..h {
        let wk = wb.add(k * 64);
        let w = [
            _mm512_loadu_ps(wk),
            _mm512_loadu_ps(wk.add(16)),
            _mm512_loadu_ps(wk.add(32)),
            _mm512_loadu_ps(wk.add(48)),
        ];
        for (m, a) in acc.iter_mut().enumerate() {
            let hv = _mm512_set1_ps(*p.hprev.add((r0 + m) * h + k));
            for q in 0..4 {
                a[q] = _mm512_fmadd_ps(hv, w[q], a[q]);
            }
        }
    }
    let j0 = 16 * u;
    for (m, a) in acc.iter().enumerate() {
        let r = r0 + m;
        let (x, ga) = (p.xg.add(r * g4 + j0), p.acts.at(r * g4 + j0));
        let z = |q: usize| _mm512_add_ps(a[q], _mm512_loadu_ps(x.add(q * h)));
        let (gi, gf, gg, go) = (sigmoid(z(0)), sigmoid(z(1)), tanh(z(2)), sigmoid(z(3)));
        let at = r * h + j0;
        let cn = _mm512_fmadd_ps(gf, _mm512_loadu_ps(p.c.at(at)), _mm512_mul_ps(gi, gg));
        let tc = tanh(cn);
        for (q, g) in [gi, gf, gg, go].into_iter().enumerate() {
            _mm512_storeu_ps(ga.add(q * h), g);
        }
        _mm512_storeu_ps(p.c.at(at), cn);
        _mm512_storeu_ps(p.cs.at(at), cn);
        _mm512_storeu_ps(p.tcs.at(at), tc);
        _mm512_storeu_ps(p.hout.at(at), _mm512_mul_ps(go, tc));
    }
}

/// Every tile of unit blocks `u0..u1`.
#[target_feature(enable = "avx512f")]
unsafe fn fwd_blocks(p: Fwd, (u0, u1): (usize, usize)) {
    for u in u0..u1 {
        let mut r0 = 0;
        while r0 < p.b {
            match p.b - r0 {
                1 => fwd_tile::<1>(p, u, r0),
                2 => fwd_tile::<2>(p, u, r0),
                3 => fwd_tile::<3>(p, u, r0),
                4 => fwd_tile::<4>(p, u, r0),
                5 => fwd_tile::<5>(p, u, r0),
                _ => fwd_tile::<MR>(p, u, r0),
            }
            r0 += MR;
        }
    }
}

/// [`super::lstm_kernel::forward`] on the AVX-512 kernels, the units split into `parts`.
/// The caller checks [`usable`].
pub(crate) fn forward(
    d: Dims,
    order: &[usize],
    xg: &[f32],
    (h0, c0): (&[f32], &[f32]),
    w: &[f32],
    parts: usize,
) -> (Vec<f32>, Saved) {
    let (b, h, g4) = (d.b, d.h, 4 * d.h);
    let (bh, bg) = (b * h, b * g4);
    assert!(h.is_multiple_of(16) && xg.len() >= d.t * bg && w.len() >= g4 * h);
    assert!(h0.len() >= bh && c0.len() >= bh);
    // Filled completely below (every step of `order`, a permutation of 0..T, writes its row
    // of each; `out`'s last row is the final state), so not zeroed first.
    let mut out: Vec<f32> = Vec::with_capacity((d.t + 1) * bh);
    let mut acts: Vec<f32> = Vec::with_capacity(d.t * bg);
    let mut cs: Vec<f32> = Vec::with_capacity(d.t * bh);
    let mut tcs: Vec<f32> = Vec::with_capacity(d.t * bh);
    let mut c = c0[..bh].to_vec();
    let wp = pack_forward(w, h);
    let (po, pa, pc, pt, pstate) = (
        Out(out.as_mut_ptr()),
        Out(acts.as_mut_ptr()),
        Out(cs.as_mut_ptr()),
        Out(tcs.as_mut_ptr()),
        Out::new(&mut c),
    );
    let units = ranges(h, parts);
    for (k, &t) in order.iter().enumerate() {
        let hprev = if k == 0 {
            h0.as_ptr()
        } else {
            po.at(order[k - 1] * bh).cast_const()
        };
        let p = Fwd {
            h,
            b,
            xg: xg[t * bg..].as_ptr(),
            hprev,
            wp: wp.as_ptr(),
            c: pstate,
            acts: Out(pa.at(t * bg)),
            cs: Out(pc.at(t * bh)),
            tcs: Out(pt.at(t * bh)),
            hout: Out(po.at(t * bh)),
        };
        let p = SendFwd(p);
        parallel::run(units.len(), |i| {
            let p = &p;
            // SAFETY: AVX-512F is present (`usable`); the buffers hold T steps of B rows
            // (asserted above); each task writes only its own unit blocks of row t, and
            // h_{t−1} was completed by the fork-join before.
            unsafe { fwd_blocks(p.0, units[i]) }
        });
    }
    // SAFETY: row T of `out` is in its capacity and `c` is b×h.
    unsafe { std::ptr::copy_nonoverlapping(c.as_ptr(), po.at(d.t * bh), bh) };
    // SAFETY: every element was written above (see the allocation).
    unsafe {
        out.set_len((d.t + 1) * bh);
        acts.set_len(d.t * bg);
        cs.set_len(d.t * bh);
        tcs.set_len(d.t * bh);
    }
    (out, Saved { acts, cs, tcs })
}

/// The step pointers, shared by the tasks (each writes its own units).
struct SendFwd(Fwd);
// SAFETY: the tasks write disjoint unit blocks; the buffers outlive the parallel run.
unsafe impl Sync for SendFwd {}
struct SendBwd(Bwd);
// SAFETY: as for `SendFwd`.
unsafe impl Sync for SendBwd {}

/// The buffers one backward step reads and writes.
#[derive(Clone, Copy)]
struct Bwd {
    h: usize,
    b: usize,
    /// The output's gradient for `h_t` `[B, H]`.
    gout: *const f32,
    /// `dG_{later}` `[B, 4H]`, or null at the last step.
    dg_later: *const f32,
    /// Packed `W_hh` (backward layout).
    wp: *const f32,
    /// Saved activations `[B, 4H]`, `tanh(c_t)` and `c_{t−1}` `[B, H]` of this step.
    acts: *const f32,
    tcs: *const f32,
    cprev: *const f32,
    /// The running `dc` `[B, H]`, and this step's `dG` `[B, 4H]`.
    dc: Out,
    dg: Out,
}

/// One backward tile: rows `r0..r0 + M`, unit blocks `u..u + N`.
#[target_feature(enable = "avx512f")]
unsafe fn bwd_tile<const M: usize, const N: usize>(p: Bwd, u: usize, r0: usize) {
    let (h, g4) = (p.h, 4 * p.h);
    let mut acc = [[_mm512_setzero_ps(); N]; M];
    for (m, a) in acc.iter_mut().enumerate() {
        for (n, v) in a.iter_mut().enumerate() {
            *v = _mm512_loadu_ps(p.gout.add((r0 + m) * h + 16 * (u + n)));
        }
    }
    if !p.dg_later.is_null() {
        let wb = p.wp.add(u * g4 * 16);
        for k in 0..g4 {
            let mut w = [_mm512_setzero_ps(); N];
            for (n, v) in w.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(wb.add((n * g4 + k) * 16));
            }
            for (m, a) in acc.iter_mut().enumerate() {
                let gv = _mm512_set1_ps(*p.dg_later.add((r0 + m) * g4 + k));
                for n in 0..N {
                    a[n] = _mm512_fmadd_ps(gv, w[n], a[n]);
                }
            }
        }
    }
    let one = _mm512_set1_ps(1.0);
    for (m, a) in acc.iter().enumerate() {
        let r = r0 + m;
        for (n, &dh) in a.iter().enumerate() {
            let j0 = 16 * (u + n);
            let (ga, at) = (r * g4 + j0, r * h + j0);
            let act = |q: usize| _mm512_loadu_ps(p.acts.add(ga + q * h));
            let (gi, gf, gg, go) = (act(0), act(1), act(2), act(3));
            let tc = _mm512_loadu_ps(p.tcs.add(at));
            let cp = _mm512_loadu_ps(p.cprev.add(at));
            // dct = dc + dh·o·(1 − tc²)
            let dho = _mm512_mul_ps(dh, go);
            let dct = _mm512_fmadd_ps(
                dho,
                _mm512_fnmadd_ps(tc, tc, one),
                _mm512_loadu_ps(p.dc.at(at)),
            );
            let di = _mm512_mul_ps(
                _mm512_mul_ps(_mm512_mul_ps(dct, gg), gi),
                _mm512_sub_ps(one, gi),
            );
            let df = _mm512_mul_ps(
                _mm512_mul_ps(_mm512_mul_ps(dct, cp), gf),
                _mm512_sub_ps(one, gf),
            );
            let dg = _mm512_mul_ps(_mm512_mul_ps(dct, gi), _mm512_fnmadd_ps(gg, gg, one));
            let d_o = _mm512_mul_ps(
                _mm512_mul_ps(_mm512_mul_ps(dh, tc), go),
                _mm512_sub_ps(one, go),
            );
            for (q, v) in [di, df, dg, d_o].into_iter().enumerate() {
                _mm512_storeu_ps(p.dg.at(ga + q * h), v);
            }
            _mm512_storeu_ps(p.dc.at(at), _mm512_mul_ps(dct, gf));
        }
    }
}

/// Rows `r0..`: tiles of `N` unit blocks from `u`.
#[target_feature(enable = "avx512f")]
unsafe fn bwd_rows<const N: usize>(p: Bwd, u: usize) {
    let mut r0 = 0;
    while r0 < p.b {
        match p.b - r0 {
            1 => bwd_tile::<1, N>(p, u, r0),
            2 => bwd_tile::<2, N>(p, u, r0),
            3 => bwd_tile::<3, N>(p, u, r0),
            4 => bwd_tile::<4, N>(p, u, r0),
            5 => bwd_tile::<5, N>(p, u, r0),
            _ => bwd_tile::<MR, N>(p, u, r0),
        }
        r0 += MR;
    }
}

/// Every tile of unit blocks `u0..u1`: four blocks at a time, then one at a time.
#[target_feature(enable = "avx512f")]
unsafe fn bwd_blocks(p: Bwd, (u0, u1): (usize, usize)) {
    let mut u = u0;
    while u + 4 <= u1 {
        bwd_rows::<4>(p, u);
        u += 4;
    }
    while u < u1 {
        bwd_rows::<1>(p, u);
        u += 1;
    }
}

/// [`super::lstm_kernel::backward`] on the AVX-512 kernels, the units split into `parts`.
/// The caller checks [`usable`].
#[allow(clippy::type_complexity)]
pub(crate) fn backward(
    d: Dims,
    order: &[usize],
    (gout, hout): (&[f32], &[f32]),
    (h0, c0): (&[f32], &[f32]),
    w: &[f32],
    s: &Saved,
    parts: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let (b, h, g4) = (d.b, d.h, 4 * d.h);
    let (bh, bg) = (b * h, b * g4);
    assert!(h.is_multiple_of(16) && gout.len() >= (d.t + 1) * bh && hout.len() >= d.t * bh);
    assert!(h0.len() >= bh && c0.len() >= bh && w.len() >= g4 * h);
    assert!(s.acts.len() >= d.t * bg && s.cs.len() >= d.t * bh && s.tcs.len() >= d.t * bh);
    // `dxg` and `hprev` are filled completely below (every step writes its row), so not
    // zeroed first.
    let mut dxg: Vec<f32> = Vec::with_capacity(d.t * bg);
    let mut hprev: Vec<f32> = Vec::with_capacity(d.t * bh);
    let mut dc = gout[d.t * bh..(d.t + 1) * bh].to_vec();
    let mut dh0 = vec![0f32; bh];
    let wp = pack_backward(w, h);
    let (pg, pc, ph) = (
        Out(dxg.as_mut_ptr()),
        Out::new(&mut dc),
        Out(hprev.as_mut_ptr()),
    );
    let units = ranges(h, parts);
    for (k, &t) in order.iter().enumerate().rev() {
        let (c_prev, h_prev): (&[f32], &[f32]) = if k == 0 {
            (c0, h0)
        } else {
            let p = order[k - 1];
            (&s.cs[p * bh..(p + 1) * bh], &hout[p * bh..(p + 1) * bh])
        };
        // SAFETY: row t of `hprev` is in its capacity; h_prev holds b×h.
        unsafe { std::ptr::copy_nonoverlapping(h_prev.as_ptr(), ph.at(t * bh), bh) };
        let p = SendBwd(Bwd {
            h,
            b,
            gout: gout[t * bh..].as_ptr(),
            dg_later: order
                .get(k + 1)
                .map_or(std::ptr::null(), |&l| pg.at(l * bg).cast_const()),
            wp: wp.as_ptr(),
            acts: s.acts[t * bg..].as_ptr(),
            tcs: s.tcs[t * bh..].as_ptr(),
            cprev: c_prev.as_ptr(),
            dc: pc,
            dg: Out(pg.at(t * bg)),
        });
        parallel::run(units.len(), |i| {
            let p = &p;
            // SAFETY: AVX-512F is present (`usable`); sizes asserted above; each task
            // writes only its unit blocks of dG[t] and dc; dG[later] was completed by the
            // fork-join before and is only read now.
            unsafe { bwd_blocks(p.0, units[i]) }
        });
    }
    // SAFETY: every element was written above (see the allocation).
    unsafe {
        dxg.set_len(d.t * bg);
        hprev.set_len(d.t * bh);
    }
    // The initial state's gradient: dG[first]·W_hh.
    if let Some(&first) = order.first() {
        // SAFETY: dxg is complete; dh0 is b×h; w is 4h×h.
        unsafe {
            mm(
                (b, h, g4),
                (dh0.as_mut_ptr(), h),
                (pg.at(first * bg), g4, 1),
                (w.as_ptr(), h, 1),
                false,
                1.0,
            )
        }
    }
    (dxg, dh0, dc, hprev)
}

#[cfg(test)]
mod tests {
    use super::super::lstm_kernel::{backward_generic, forward_generic};
    use super::*;

    fn data(n: usize, seed: u32, scale: f32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12_345);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32 - 0.5) * 2.0 * scale
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let d = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        assert!(d < 2e-5, "{what}: the kernels differ by {d}");
    }

    /// The AVX-512 kernels against the generic ones (gemm + scalar gates): outputs, saved
    /// activations and every gradient, over odd batches (partial row tiles), hidden sizes with
    /// unit-block counts that are not multiples of 4 (single-block backward tiles), one part
    /// and several (the thread split), both directions.
    #[test]
    fn simd_matches_generic() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("notice: no AVX-512F on this CPU; the AVX-512 LSTM kernels are not tested");
            return;
        }
        let cases = [
            (5, 1, 16, false, 1),
            (4, 7, 32, true, 2),
            (3, 13, 48, false, 2),
            (6, 32, 64, false, 2),
            (2, 6, 80, true, 3),
            (3, 9, 160, false, 2),
            (0, 3, 16, false, 2),
        ];
        for (t, b, h, reverse, parts) in cases {
            let d = Dims { t, b, h };
            let order: Vec<usize> = if reverse {
                (0..t).rev().collect()
            } else {
                (0..t).collect()
            };
            let xg = data(t * b * 4 * h, 1, 2.0);
            let (h0, c0) = (data(b * h, 2, 1.0), data(b * h, 3, 1.0));
            let w = data(4 * h * h, 4, 0.5 / (h as f32).sqrt() * 4.0);
            let (out_s, sv_s) = forward(d, &order, &xg, (&h0, &c0), &w, parts);
            let (out_g, sv_g) = forward_generic(d, &order, &xg, (&h0, &c0), &w);
            let what = format!("t={t} b={b} h={h} reverse={reverse} parts={parts}");
            close(&out_s, &out_g, &format!("{what}: outputs"));
            close(&sv_s.acts, &sv_g.acts, &format!("{what}: gates"));
            close(&sv_s.cs, &sv_g.cs, &format!("{what}: cells"));
            close(&sv_s.tcs, &sv_g.tcs, &format!("{what}: tanh(c)"));
            let gout = data((t + 1) * b * h, 5, 1.0);
            let gs = backward(d, &order, (&gout, &out_g), (&h0, &c0), &w, &sv_g, parts);
            let gg = backward_generic(d, &order, (&gout, &out_g), (&h0, &c0), &w, &sv_g);
            close(&gs.0, &gg.0, &format!("{what}: d xg"));
            close(&gs.1, &gg.1, &format!("{what}: d h0"));
            close(&gs.2, &gg.2, &format!("{what}: d c0"));
            close(&gs.3, &gg.3, &format!("{what}: h_prev"));
        }
    }

    #[test]
    fn unit_ranges_cover_every_block_once() {
        for (h, parts) in [(16, 2), (256, 2), (80, 3), (48, 8), (256, 1)] {
            let r = ranges(h, parts);
            assert_eq!(r.first().map(|x| x.0), Some(0));
            assert_eq!(r.last().map(|x| x.1), Some(h / 16));
            assert!(r.windows(2).all(|p| p[0].1 == p[1].0 && p[0].0 < p[0].1));
            assert!(r.len() <= parts);
        }
    }
}
