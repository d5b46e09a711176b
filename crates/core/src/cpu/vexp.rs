//! Vectorised f32 `exp` for AVX-512F CPUs (the scalar `f32::exp` elsewhere).
//!
//! Cephes' single-precision method: `x = n·ln2 + r` with `n = round(x·log2 e)` and `|r| ≤ ln2/2`
//! (ln2 split in two constants so `r` is exact), `e^r` by a degree-7 polynomial, and the result
//! scaled by `2^n` with `vscalefps`, which rounds overflow to `inf` and underflow through the
//! subnormals to 0 exactly as `2^n` would. Inputs are clamped to [−104, 89] first (beyond
//! which the float result is 0 or `inf` anyway) so that `inf` never meets `inf − inf`; NaN
//! passes through. Error: within 2 ulp of the correctly rounded result (tested against f64).

use crate::parallel::{build_vec, chunk_len, PAR_THRESHOLD};
use std::mem::MaybeUninit;

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// True when the vector kernel can run here.
fn usable() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `exp` of every element of `src`, in parallel chunks when large.
pub(crate) fn exp_f32(src: &[f32]) -> Vec<f32> {
    let n = src.len();
    let vector = usable();
    // SAFETY: each chunk writes all of its elements (both branches write `o.len()` values).
    unsafe {
        build_vec(n, chunk_len(n, PAR_THRESHOLD / 2), |start, o| {
            let s = &src[start..start + o.len()];
            if vector {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: AVX-512F was detected; `s` and `o` have the same length.
                exp_avx512(s, o);
            } else {
                for (o, &x) in o.iter_mut().zip(s) {
                    o.write(x.exp());
                }
            }
        })
    }
}

/// Replaces every element of `x` by `exp(x − shift)` and returns their sum (in f64): the
/// inner pass of a softmax. AVX-512F when the CPU has it (within 2 ulp), else `f32::exp`.
pub fn exp_shifted_sum(x: &mut [f32], shift: f32) -> f64 {
    if usable() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: AVX-512F was detected.
        return unsafe { exp_shifted_sum_avx512(x, shift) };
    }
    let mut s = 0f64;
    for v in x.iter_mut() {
        *v = (*v - shift).exp();
        s += *v as f64;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp_shifted_sum_avx512(x: &mut [f32], shift: f32) -> f64 {
    let (n, p, sh) = (x.len(), x.as_mut_ptr(), _mm512_set1_ps(shift));
    let (mut lo, mut hi) = (_mm512_setzero_pd(), _mm512_setzero_pd());
    let mut i = 0;
    while i < n {
        let m: __mmask16 = if n - i >= 16 {
            0xFFFF
        } else {
            ((1u32 << (n - i)) - 1) as __mmask16
        };
        let e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p.add(i)), sh));
        // Masked-off lanes are exp(0 − shift): zero them before summing.
        let e = _mm512_maskz_mov_ps(m, e);
        _mm512_mask_storeu_ps(p.add(i), m, e);
        lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        let upper = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(e)));
        hi = _mm512_add_pd(hi, _mm512_cvtps_pd(upper));
        i += 16;
    }
    _mm512_reduce_add_pd(_mm512_add_pd(lo, hi))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp_avx512(src: &[f32], dst: &mut [MaybeUninit<f32>]) {
    let n = src.len().min(dst.len());
    let (s, d) = (src.as_ptr(), dst.as_mut_ptr().cast::<f32>());
    let mut i = 0;
    while i + 16 <= n {
        _mm512_storeu_ps(d.add(i), exp16(_mm512_loadu_ps(s.add(i))));
        i += 16;
    }
    if i < n {
        let m: __mmask16 = (1u32 << (n - i)).wrapping_sub(1) as __mmask16;
        let v = exp16(_mm512_maskz_loadu_ps(m, s.add(i)));
        _mm512_mask_storeu_ps(d.add(i), m, v);
    }
}

/// `e^x` of 16 lanes (AVX-512): Cody–Waite range reduction `x = n·ln2 + r`, a degree-7
/// polynomial for `e^r` (the Cephes `expf` coefficients), `2^n` by `scalef`; NaN stays NaN, the
/// input is clamped to `[−104, 89]` (0 and `+inf` beyond). Public for the fused kernels of the
/// outer rings (LSTM gates) so there is one vector `exp`.
///
/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub unsafe fn exp16(x: __m512) -> __m512 {
    // max/min return their second operand when either is NaN: NaN stays NaN.
    let x = _mm512_min_ps(
        _mm512_set1_ps(89.0),
        _mm512_max_ps(_mm512_set1_ps(-104.0), x),
    );
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    // r = x − n·ln2, with ln2 = 0.693359375 − 2.12194440e-4 (the first part exact in f32).
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    // e^r ≈ 1 + r + r²·P(r)
    let mut p = _mm512_set1_ps(1.987_569_1e-4);
    for c in [
        1.398_2e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    let r2 = _mm512_mul_ps(r, r);
    let e = _mm512_fmadd_ps(p, r2, _mm512_add_ps(r, _mm512_set1_ps(1.0)));
    _mm512_scalef_ps(e, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_f64_exp_within_two_ulp() {
        let mut xs: Vec<f32> = (-200_000..=200_000).map(|i| i as f32 * 5e-4).collect();
        xs.extend([
            -104.5, -103.9, -100.0, -88.0, 87.9, 88.7, 88.8, 0.0, -0.0, 1e-30,
        ]);
        let got = exp_f32(&xs);
        for (&x, &y) in xs.iter().zip(&got) {
            let want = (x as f64).exp();
            let w32 = want as f32;
            if w32.is_infinite() || w32 == 0.0 {
                assert_eq!(y, w32, "exp({x})");
                continue;
            }
            let ulp = (w32.abs() * f32::EPSILON).max(f32::from_bits(1)) as f64;
            assert!(
                ((y as f64) - want).abs() <= 2.0 * ulp,
                "exp({x}) = {y}, want {want}"
            );
        }
    }

    #[test]
    fn special_values() {
        let xs = [f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 100.0, -200.0];
        let y = exp_f32(&xs);
        assert_eq!(y[0], f32::INFINITY);
        assert_eq!(y[1], 0.0);
        assert!(y[2].is_nan());
        assert_eq!(y[3], f32::INFINITY);
        assert_eq!(y[4], 0.0);
        // Tails shorter than a register.
        for n in 0..40 {
            let xs: Vec<f32> = (0..n).map(|i| i as f32 * 0.1 - 2.0).collect();
            let y = exp_f32(&xs);
            assert!(xs
                .iter()
                .zip(&y)
                .all(|(x, y)| (x.exp() - y).abs() <= 2e-7 * y));
        }
    }

    #[test]
    fn shifted_sums_match_scalar() {
        for n in 0..50 {
            let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
            let shift = x.iter().copied().fold(0f32, f32::max);
            let mut got = x.clone();
            let s = exp_shifted_sum(&mut got, shift);
            let want: Vec<f64> = x.iter().map(|&v| ((v - shift) as f64).exp()).collect();
            let ws: f64 = want.iter().sum();
            assert!((s - ws).abs() <= 1e-6 * ws.max(1.0), "n={n}: {s} vs {ws}");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (*g as f64 - w).abs() <= 2.5e-7 * w.max(1e-30),
                    "n={n}: {g} vs {w}"
                );
            }
        }
    }
}
