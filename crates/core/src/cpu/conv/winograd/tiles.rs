//! The input and output tile transforms of [`super`], in AVX-512 over 16 tiles of one tile
//! row at a time (the tiles of a row are adjacent in `V` and `M`).

use super::{Conv, Out};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Lane indices picking the even (then odd) elements of two concatenated registers.
#[cfg(target_arch = "x86_64")]
pub(super) const EVEN: [i32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30];
#[cfg(target_arch = "x86_64")]
pub(super) const ODD: [i32; 16] = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31];
/// Lane indices interleaving the low (then high) halves of two registers.
#[cfg(target_arch = "x86_64")]
const LO: [i32; 16] = [0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23];
#[cfg(target_arch = "x86_64")]
const HI: [i32; 16] = [8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31];

/// The low `n` bits set (`n` ≤ 16).
pub(super) fn lanes(n: usize) -> u16 {
    ((1u32 << n.min(16)) - 1) as u16
}

/// Rows `r0..` of `U[r][ξ][l] = (G g Gᵀ)[ξ]` into `chunk` (`16 · nl` elements a row),
/// the kernel `g` of row `r` and lane `l` being taps `k` at
/// `wt[r · row_step + l · lane_step + k]`, reversed (`8 − k`) when `flip`; 16 lanes at a time
/// (gathered). G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
///
/// # Safety
/// AVX-512F must be present. Writes every element of `chunk`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn weights(
    wt: &[f32],
    (row_step, lane_step, nl): (usize, usize, usize),
    flip: bool,
    r0: usize,
    chunk: &mut [MaybeUninit<f32>],
) {
    let rows = chunk.len() / (16 * nl).max(1);
    if rows == 0 {
        return;
    }
    let last = (r0 + rows - 1) * row_step + (nl - 1) * lane_step + 8;
    assert!(
        last < wt.len() && 15 * lane_step <= i32::MAX as usize / 4 && rows * 16 * nl == chunk.len()
    );
    let idx = _mm512_mullo_epi32(
        _mm512_set1_epi32(lane_step as i32),
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
    );
    let half = _mm512_set1_ps(0.5);
    let (add, sub) = (|a, b| _mm512_add_ps(a, b), |a, b| _mm512_sub_ps(a, b));
    for (ri, uo) in chunk.chunks_exact_mut(16 * nl).enumerate() {
        let up = uo.as_mut_ptr().cast::<f32>();
        for l0 in (0..nl).step_by(16) {
            let mask = lanes(nl - l0);
            let base = wt.as_ptr().add((r0 + ri) * row_step + l0 * lane_step);
            // SAFETY: lanes below nl only (the mask): at most `last`, inside `wt`.
            let g: [__m512; 9] = std::array::from_fn(|k| unsafe {
                let k = if flip { 8 - k } else { k };
                _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), mask, idx, base.add(k))
            });
            // t = G g (rows), then u = t Gᵀ.
            for r in 0..4 {
                let t: [__m512; 3] = std::array::from_fn(|j| {
                    let (a, b, d) = (g[j], g[3 + j], g[6 + j]);
                    match r {
                        0 => a,
                        1 => _mm512_mul_ps(half, add(add(a, b), d)),
                        2 => _mm512_mul_ps(half, add(sub(a, b), d)),
                        _ => d,
                    }
                });
                let u = [
                    t[0],
                    _mm512_mul_ps(half, add(add(t[0], t[1]), t[2])),
                    _mm512_mul_ps(half, add(sub(t[0], t[1]), t[2])),
                    t[2],
                ];
                for (l, u) in u.into_iter().enumerate() {
                    _mm512_mask_storeu_ps(up.add((4 * r + l) * nl + l0), mask, u);
                }
            }
        }
    }
}

/// `v[ξ][c][t] = (Bᵀ d B)[ξ]` for the tiles `t` of tile rows `r0..r1`, `d` the 4×4 input
/// patch (zero outside the map), Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]; `v` holds
/// 16 planes `vs` elements apart of `cin · nt` elements each, `nt` the block's tiles.
///
/// # Safety
/// AVX-512F must be present; `x` is the whole `[N, cin, h, w]` input of `cv`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn input(
    x: &[f32],
    cv: &Conv,
    (r0, r1): (usize, usize),
    v: &mut [f32],
    vs: usize,
) {
    let (tw, nt, cin) = (cv.tw, (r1 - r0) * cv.tw, cv.cin);
    assert!(x.len() >= cv.n * cin * cv.h * cv.w && v.len() >= 15 * vs + cin * nt);
    let (even, odd) = (
        _mm512_loadu_si512(EVEN.as_ptr().cast()),
        _mm512_loadu_si512(ODD.as_ptr().cast()),
    );
    let (pw, w, h) = (cv.pw as isize, cv.w as isize, cv.h as isize);
    let plane = cv.h * cv.w;
    let vp = v.as_mut_ptr();
    // The columns of the map among the 16 from padded column s + {0, 16, 2, 18}, s = 2·j0.
    let mask_at = |s: isize| {
        let (lo, hi) = ((pw - s).clamp(0, 16), (w + pw - s).clamp(0, 16));
        lanes(hi as usize) & !lanes(lo as usize)
    };
    let masks: Vec<u16> = (0..tw)
        .step_by(16)
        .flat_map(|j0| [0, 16, 2, 18].map(|d| mask_at(2 * j0 as isize + d)))
        .collect();
    for c in 0..cin {
        for (ri, gr) in (r0..r1).enumerate() {
            let (b, i) = (gr / cv.th, gr % cv.th);
            let src = x.as_ptr().add((b * cin + c) * plane);
            // The four input rows of this tile row, null where outside the map.
            let rows: [*const f32; 4] = std::array::from_fn(|k| {
                let r = (2 * i + k) as isize - cv.ph as isize;
                if r < 0 || r >= h {
                    std::ptr::null()
                } else {
                    src.add(r as usize * cv.w)
                }
            });
            // Bᵀ d at padded column `s` (four registers) from 16 lanes of each padded row,
            // zero outside the map. A macro, not a closure: a closure's inlining into this
            // AVX-512 function is up to codegen-unit splitting, and a closure call passing
            // `__m512`s measured 2.5× slower in the output transform.
            macro_rules! load {
                ($k:expr, $s:expr, $mask:expr) => {
                    if rows[$k].is_null() {
                        _mm512_setzero_ps()
                    } else {
                        // SAFETY: only lanes of columns 0..w of the row are read (the mask).
                        unsafe { _mm512_maskz_loadu_ps($mask, rows[$k].wrapping_offset($s - pw)) }
                    }
                };
            }
            macro_rules! vert {
                ($s:expr, $mask:expr) => {{
                    let (s, mask): (isize, u16) = ($s, $mask);
                    let d = [
                        load!(0, s, mask),
                        load!(1, s, mask),
                        load!(2, s, mask),
                        load!(3, s, mask),
                    ];
                    [
                        _mm512_sub_ps(d[0], d[2]),
                        _mm512_add_ps(d[1], d[2]),
                        _mm512_sub_ps(d[2], d[1]),
                        _mm512_sub_ps(d[1], d[3]),
                    ]
                }};
            }
            let t0 = ri * tw;
            for (q, j0) in (0..tw).step_by(16).enumerate() {
                let s = 2 * j0 as isize;
                let mk = &masks[4 * q..4 * q + 4];
                let (a, b2) = (vert!(s, mk[0]), vert!(s + 16, mk[1]));
                let (a1, b3) = (vert!(s + 2, mk[2]), vert!(s + 18, mk[3]));
                let mask = lanes(tw - j0);
                for k in 0..4 {
                    // Columns 2j, 2j+1, 2j+2, 2j+3 of tile j, j0 ≤ j < j0 + 16.
                    let c0 = _mm512_permutex2var_ps(a[k], even, b2[k]);
                    let c1 = _mm512_permutex2var_ps(a[k], odd, b2[k]);
                    let c2 = _mm512_permutex2var_ps(a1[k], even, b3[k]);
                    let c3 = _mm512_permutex2var_ps(a1[k], odd, b3[k]);
                    let out = [
                        _mm512_sub_ps(c0, c2),
                        _mm512_add_ps(c1, c2),
                        _mm512_sub_ps(c2, c1),
                        _mm512_sub_ps(c1, c3),
                    ];
                    for (l, o) in out.into_iter().enumerate() {
                        let at = (4 * k + l) * vs + c * nt + t0 + j0;
                        _mm512_mask_storeu_ps(vp.add(at), mask, o);
                    }
                }
            }
        }
    }
}

/// `out[b, o, 2i.., 2j..] = (Aᵀ m A)` for the tiles of tile rows `r0..r1`, from
/// `m[ξ][o][t]` (16 planes `ms` elements apart), Aᵀ = [1 1 1 0; 0 1 −1 −1]; a tile's last row or
/// column past the map is dropped.
///
/// # Safety
/// AVX-512F must be present; `dst` is the whole `[N, cout, oh, ow]` output of `cv`, and no
/// other thread writes the rows of tile rows `r0..r1`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn output(m: &[f32], cv: &Conv, (r0, r1): (usize, usize), ms: usize, dst: &Out) {
    let (tw, nt, cout) = (cv.tw, (r1 - r0) * cv.tw, cv.cout);
    assert!(m.len() >= 15 * ms + cout * nt);
    let (lo, hi) = (
        _mm512_loadu_si512(LO.as_ptr().cast()),
        _mm512_loadu_si512(HI.as_ptr().cast()),
    );
    let mp = m.as_ptr();
    for o in 0..cout {
        for (ri, gr) in (r0..r1).enumerate() {
            let (b, i) = (gr / cv.th, gr % cv.th);
            let plane = dst.0.add((b * cout + o) * cv.oh * cv.ow);
            let t0 = ri * tw;
            for j0 in (0..tw).step_by(16) {
                let mask = lanes(tw - j0);
                // f = Aᵀ m (2×4 registers), then y = f A. Plain loops, no closures: their
                // inlining into this function was at the mercy of codegen-unit splits
                // (once not inlined, this transform ran 2.5× slower).
                // SAFETY: tiles t0 + j0.. of the block, masked to the row's tiles.
                let base = mp.add(o * nt + t0 + j0);
                let (mut f0, mut f1) = ([_mm512_setzero_ps(); 4], [_mm512_setzero_ps(); 4]);
                for (s, (f0, f1)) in f0.iter_mut().zip(&mut f1).enumerate() {
                    let a = _mm512_maskz_loadu_ps(mask, base.add(s * ms));
                    let bb = _mm512_maskz_loadu_ps(mask, base.add((4 + s) * ms));
                    let c = _mm512_maskz_loadu_ps(mask, base.add((8 + s) * ms));
                    let d = _mm512_maskz_loadu_ps(mask, base.add((12 + s) * ms));
                    *f0 = _mm512_add_ps(_mm512_add_ps(a, bb), c);
                    *f1 = _mm512_sub_ps(_mm512_sub_ps(bb, c), d);
                }
                let f = [f0, f1];
                let col = 2 * j0;
                let (m_lo, m_hi) = (
                    lanes(cv.ow.saturating_sub(col)),
                    lanes(cv.ow.saturating_sub(col + 16)),
                );
                for (a, f) in f.iter().enumerate() {
                    let r = 2 * i + a;
                    if r >= cv.oh {
                        break;
                    }
                    let y0 = _mm512_add_ps(_mm512_add_ps(f[0], f[1]), f[2]);
                    let y1 = _mm512_sub_ps(_mm512_sub_ps(f[1], f[2]), f[3]);
                    let p = plane.add(r * cv.ow + col);
                    _mm512_mask_storeu_ps(p, m_lo, _mm512_permutex2var_ps(y0, lo, y1));
                    if m_hi != 0 {
                        _mm512_mask_storeu_ps(
                            p.wrapping_add(16),
                            m_hi,
                            _mm512_permutex2var_ps(y0, hi, y1),
                        );
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn weights(
    _: &[f32],
    _: (usize, usize, usize),
    _: bool,
    _: usize,
    _: &mut [MaybeUninit<f32>],
) {
    unreachable!("Winograd kernels need AVX-512")
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn input(_: &[f32], _: &Conv, _: (usize, usize), _: &mut [f32], _: usize) {
    unreachable!("Winograd kernels need AVX-512")
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) unsafe fn output(_: &[f32], _: &Conv, _: (usize, usize), _: usize, _: &Out) {
    unreachable!("Winograd kernels need AVX-512")
}
