//! One output row of the fused bias + ReLU + 2×2 max pool (`cpu::pool_fused`) in AVX-512
//! intrinsics: 16 windows per step, the even/odd columns split with two-source permutes,
//! the maxima's offsets blended as i32 lanes and widened to i64 indices in registers.
//!
//! Every lane computes `pool_fused::block`'s expressions (`x + bias` in f32; a tap replaces
//! the best when `v > best` or `v` is NaN, so the first maximum wins and NaN sticks; ReLU
//! keeps the best when `best > 0` or NaN, else `+0.0` at offset 0), so the results are
//! bit-identical to the portable code and to the eager ops.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Windows `0..n` of one output row: `a`/`b` point at the even/odd input row's first
/// element (`2·n` readable elements each), `base` is the index of `a[0]` within its plane,
/// `w` the plane width; writes `n` values to `vo` and indices to `io`.
///
/// # Safety
/// AVX-512F must be available; `a`, `b` must be valid for `2·n` reads, `vo`, `io` for `n`
/// writes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn row(
    a: *const f32,
    b: *const f32,
    n: usize,
    (bias, w, base): (f32, usize, i64),
    vo: *mut f32,
    io: *mut i64,
) {
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let bv = _mm512_set1_ps(bias);
    let zero = _mm512_setzero_ps();
    let offs = [
        _mm512_set1_epi32(1),
        _mm512_set1_epi32(w as i32),
        _mm512_set1_epi32(w as i32 + 1),
    ];
    // Lane l of a block starting at window c0 has index base + 2·(c0 + l) + code.
    let iota_lo = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    let iota_hi = _mm512_setr_epi64(16, 18, 20, 22, 24, 26, 28, 30);
    let mut c0 = 0;
    while c0 < n {
        let m = (n - c0).min(16);
        let e = 2 * m; // input elements of this block, per row
        let (ml, mh): (__mmask16, __mmask16) = (
            (((1u32 << e.min(16)) - 1) & 0xffff) as u16,
            (((1u32 << e.saturating_sub(16)) - 1) & 0xffff) as u16,
        );
        let (a0, a1) = split(a.wrapping_add(2 * c0), (ml, mh), (even, odd));
        let (b0, b1) = split(b.wrapping_add(2 * c0), (ml, mh), (even, odd));
        let mut best = _mm512_add_ps(a0, bv);
        let mut code = _mm512_setzero_si512();
        let taps = [
            _mm512_add_ps(a1, bv),
            _mm512_add_ps(b0, bv),
            _mm512_add_ps(b1, bv),
        ];
        for (v, t) in taps.into_iter().zip(offs) {
            let s = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best)
                | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
            best = _mm512_mask_blend_ps(s, best, v);
            code = _mm512_mask_blend_epi32(s, code, t);
        }
        let keep = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(best, zero)
            | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(best, best);
        best = _mm512_maskz_mov_ps(keep, best);
        code = _mm512_maskz_mov_epi32(keep, code);
        let mm: __mmask16 = (((1u32 << m) - 1) & 0xffff) as u16;
        _mm512_mask_storeu_ps(vo.add(c0), mm, best);
        let start = _mm512_set1_epi64(base + 2 * c0 as i64);
        let lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(code));
        let hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64::<1>(code));
        let lo = _mm512_add_epi64(_mm512_add_epi64(lo, iota_lo), start);
        let hi = _mm512_add_epi64(_mm512_add_epi64(hi, iota_hi), start);
        _mm512_mask_storeu_epi64(io.add(c0), (mm & 0xff) as u8, lo);
        _mm512_mask_storeu_epi64(io.wrapping_add(c0 + 8), (mm >> 8) as u8, hi);
        c0 += 16;
    }
}

/// The even and odd elements of the 32 at `p` (masked loads: lanes outside `ml`/`mh` read
/// nothing and give 0).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn split(
    p: *const f32,
    (ml, mh): (__mmask16, __mmask16),
    (even, odd): (__m512i, __m512i),
) -> (__m512, __m512) {
    let lo = _mm512_maskz_loadu_ps(ml, p);
    let hi = _mm512_maskz_loadu_ps(mh, p.wrapping_add(16));
    (
        _mm512_permutex2var_ps(lo, even, hi),
        _mm512_permutex2var_ps(lo, odd, hi),
    )
}

/// One output row of the fused pool/ReLU backward (`pool_fused::max_pool_2x2_relu_backward`):
/// windows `0..n`, `gy`/`pooled`/`idx` their gradients, pooled values and indices; writes
/// the `2·n` leading elements of the even and odd input rows `top`/`bot` (`base` = index of
/// `top[0]` in its plane, `w` the plane width): the window's gradient `0.0 + gy` (or `+0.0`
/// where `pooled <= c0`) at its maximum, `+0.0` elsewhere — every element written once, no
/// zero fill. Returns false when an index is not in its own window.
///
/// # Safety
/// AVX-512F must be available; `gy`, `pooled`, `idx` valid for `n` reads, `top`, `bot` for
/// `2·n` writes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn bwd_row(
    (gy, pooled, idx): (*const f32, *const f32, *const i64),
    n: usize,
    c0: f32,
    (w, base): (usize, i64),
    top: *mut f32,
    bot: *mut f32,
) -> bool {
    let lo_i = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi_i = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let iota_lo = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    let iota_hi = _mm512_setr_epi64(16, 18, 20, 22, 24, 26, 28, 30);
    let codes = [0i64, 1, w as i64, w as i64 + 1].map(|c| _mm512_set1_epi64(c));
    let (zero, cv) = (_mm512_setzero_ps(), _mm512_set1_ps(c0));
    let mut ok = true;
    let mut c = 0;
    while c < n {
        let m = (n - c).min(16);
        let mm: __mmask16 = (((1u32 << m) - 1) & 0xffff) as u16;
        let g = _mm512_maskz_loadu_ps(mm, gy.wrapping_add(c));
        let p = _mm512_maskz_loadu_ps(mm, pooled.wrapping_add(c));
        let masked = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(p, cv);
        let v = _mm512_maskz_mov_ps(!masked, _mm512_add_ps(zero, g));
        let start = _mm512_set1_epi64(base + 2 * c as i64);
        let il = _mm512_maskz_loadu_epi64((mm & 0xff) as u8, idx.wrapping_add(c));
        let ih = _mm512_maskz_loadu_epi64((mm >> 8) as u8, idx.wrapping_add(c + 8));
        let dl = _mm512_sub_epi64(il, _mm512_add_epi64(start, iota_lo));
        let dh = _mm512_sub_epi64(ih, _mm512_add_epi64(start, iota_hi));
        let at = codes.map(|k| {
            (_mm512_cmpeq_epi64_mask(dl, k) as u16) | ((_mm512_cmpeq_epi64_mask(dh, k) as u16) << 8)
        });
        ok &= (at[0] | at[1] | at[2] | at[3]) & mm == mm;
        let [t0, t1, b0, b1] = at.map(|k| _mm512_maskz_mov_ps(k, v));
        let e = 2 * m;
        let (ml, mh): (__mmask16, __mmask16) = (
            (((1u32 << e.min(16)) - 1) & 0xffff) as u16,
            (((1u32 << e.saturating_sub(16)) - 1) & 0xffff) as u16,
        );
        for (dst, (ev, od)) in [(top, (t0, t1)), (bot, (b0, b1))] {
            let d = dst.wrapping_add(2 * c);
            _mm512_mask_storeu_ps(d, ml, _mm512_permutex2var_ps(ev, lo_i, od));
            _mm512_mask_storeu_ps(d.wrapping_add(16), mh, _mm512_permutex2var_ps(ev, hi_i, od));
        }
        c += 16;
    }
    ok
}

/// One `h × w` plane of the backward in AVX-512 rows (`bwd_row`); an odd last
/// column or row is zeroed. False when an index is not in its own window.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn bwd_plane(
    (gr, pr, ir): (&[f32], &[f32], &[i64]),
    c0: f32,
    (h, w): (usize, usize),
    d: &mut [f32],
) -> bool {
    let (ow, oh) = (w / 2, h / 2);
    let mut ok = true;
    for r in 0..oh {
        let (top, bot) = d[2 * r * w..(2 * r + 2) * w].split_at_mut(w);
        let o = r * ow;
        let (gs, ps, is) = (&gr[o..o + ow], &pr[o..o + ow], &ir[o..o + ow]);
        // SAFETY: only reached from the AVX-512 entry points (detected at run time); the
        // slices hold `ow` windows and `2·ow <= w` elements per row.
        ok &= unsafe {
            bwd_row(
                (gs.as_ptr(), ps.as_ptr(), is.as_ptr()),
                ow,
                c0,
                (w, (2 * r * w) as i64),
                top.as_mut_ptr(),
                bot.as_mut_ptr(),
            )
        };
        if w % 2 == 1 {
            top[w - 1] = 0.0;
            bot[w - 1] = 0.0;
        }
    }
    d[2 * oh * w..].fill(0.0);
    ok
}
