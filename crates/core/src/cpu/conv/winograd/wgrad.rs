//! Winograd F(2×2, 3×3) weight gradient, the default for Winograd-shaped layers in eager
//! steps and compiled plans alike (`MLFW_CONV_WINOGRAD_WGRAD=0`, or the
//! `crate::cpu::winograd_wgrad(false)` guard, keeps the blocked direct kernel).
//!
//! The forward computes each 2×2 output tile as `Y = Aᵀ [Σ_c U_oc ⊙ V_c] A` with
//! `U = G g Gᵀ`, `V = Bᵀ d B` ([`super`]). `Y` is linear in `U`, so the gradient of the loss
//! with respect to `U_oc` is `Σ_tiles (A dY_o Aᵀ) ⊙ V_c`, and with respect to the kernel
//! `dg_oc = Gᵀ dU_oc G`. Summed over the batch's tiles this is, per transformed position
//! `ξ`, one product `dU[ξ][O × C] = M[ξ][O × tiles] · V[ξ][tiles × C]`: 16 multiply-adds
//! per tile and channel pair instead of the direct 36 (2.25× fewer), as for the forward.
//! - tile rows are split into contiguous parts (one or two per pool thread); each part runs
//!   blocks of whole tile rows: `V` by the forward's input transform
//!   ([`super::tiles::input`]), `M` by [`grad_tiles`], the 16 products accumulated into the
//!   part's own `dU` (`[16][O][C]`);
//! - the parts' `dU` are summed in part order (contiguously) and transformed back (`Gᵀ dU G`) into
//!   `dW[O, C, 3, 3]`.
//!
//! The transforms are additions (and exact halvings), so the rounding is that of an f32 sum
//! over tiles, as for the forward; the summation order differs from the blocked direct kernel,
//! so results agree with it to rounding (about 1e-6 relative), not bit for bit. The split
//! into parts follows the pool's thread count (not the scheduling), so results are
//! deterministic for one thread count.

use super::super::gemm::{matmul_into, Mat};
use super::super::geom::{with_scratch, Geom, PAR_WORK};
use super::{plane_stride, tiles, Conv};
use crate::parallel::{self, num_threads};
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Fewest tiles per block: the products' inner dimension (short ones spend their time
/// loading and storing `dU`).
const MIN_BLOCK_TILES: usize = 64;

/// Target elements of a block's `V` plus `M` (16 · (C + O) · tiles): 1.5 MB. Measured on
/// ResNet-18 CIFAR b32, one thread (AMD EPYC Zen 5, under load): 0.75–3 MB blocks with at
/// least 64 tiles were alike; 6 MB blocks of at least 256 tiles were 1.3–1.7× slower on the
/// 128- and 256-channel layers.
const BLOCK_ELEMS: usize = 3 << 17;

/// Elements of the parts' `dU` together (16 MB), beyond the first part per thread.
const DU_ELEMS: usize = 1 << 22;

/// `dW[O, C, 3, 3]` of the convolution `g` (forward input `x[N, C, H, W]`, output gradient
/// `dy[N, O, oH, oW]`). `g` must satisfy [`super::usable`].
pub(in super::super) fn bwd_weight(x: &[f32], dy: &[f32], g: &Geom) -> Vec<f32> {
    let cv = Conv::forward(g);
    let (cin, cout) = (cv.cin, cv.cout);
    let out_len = cout * cin * 9;
    assert_eq!(
        x.len(),
        cv.n * cin * cv.h * cv.w,
        "winograd wgrad: input size"
    );
    assert_eq!(
        dy.len(),
        cv.n * cout * cv.oh * cv.ow,
        "winograd wgrad: grad size"
    );
    let rows = cv.n * cv.th;
    if rows == 0 || cv.tw == 0 || out_len == 0 {
        return vec![0.0; out_len];
    }
    let threads = if g.work() >= PAR_WORK {
        num_threads()
    } else {
        1
    };
    // One part on one thread, else up to two parts a thread while their `dU` stay within
    // 16 MB in all (the pool hands out parts as threads free up, so a thread the OS holds
    // back does not hold up the rest).
    let du_len = 16 * cout * cin;
    let parts = if threads > 1 {
        (DU_ELEMS / du_len).clamp(threads, 2 * threads).min(rows)
    } else {
        1
    };
    let per_part = rows.div_ceil(parts);
    let parts = rows.div_ceil(per_part);
    let want = (BLOCK_ELEMS / (16 * (cin + cout))).max(MIN_BLOCK_TILES);
    let rb = want.div_ceil(cv.tw).clamp(1, per_part);
    let nt_max = rb * cv.tw;
    let (vlen, mlen) = (
        16 * plane_stride(cin * nt_max),
        16 * plane_stride(cout * nt_max),
    );
    // The parts' `dU`, in a buffer this thread keeps between calls (a fresh 16 MB one costs
    // more in page faults than a 4×4-map layer's products); every part's first block
    // overwrites its `dU`, so it is never cleared.
    thread_local! {
        static DU: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let mut du = DU.take();
    du.resize(parts * du_len, 0.0);
    parallel::for_each_chunk_mut(&mut du[..parts * du_len], du_len, |p, acc| {
        let (p0, p1) = (p * per_part, ((p + 1) * per_part).min(rows));
        with_scratch(vlen + mlen, |s: &mut [f32]| {
            let (v, m) = s.split_at_mut(vlen);
            for r0 in (p0..p1).step_by(rb) {
                let r1 = (r0 + rb).min(p1);
                // SAFETY: AVX-512F was detected (`usable`).
                unsafe {
                    block(
                        x,
                        dy,
                        &cv,
                        (r0, r1),
                        (&mut *v, &mut m[..mlen]),
                        acc,
                        r0 > p0,
                    )
                };
            }
        })
    });
    // The parts summed into the first, in part order, contiguously (vectorised, over the
    // pool).
    let (first, rest) = du[..parts * du_len].split_at_mut(du_len);
    if parts > 1 {
        let per = parallel::chunk_len(du_len, 1 << 14);
        let rest = &*rest;
        parallel::for_each_chunk_mut(first, per, |k, chunk| {
            for part in rest.chunks_exact(du_len) {
                let src = &part[k * per..k * per + chunk.len()];
                for (d, s) in chunk.iter_mut().zip(src) {
                    *d += s;
                }
            }
        });
    }
    let mut dw = vec![0f32; out_len];
    let per = parallel::chunk_len(cout, 4);
    let dus = &*first;
    parallel::for_each_chunk_mut(&mut dw, per * cin * 9, |k, chunk| {
        for (i, dwo) in chunk.chunks_exact_mut(cin * 9).enumerate() {
            let o = k * per + i;
            for (c, d) in dwo.chunks_exact_mut(9).enumerate() {
                let z: [f32; 16] = std::array::from_fn(|xi| dus[(xi * cout + o) * cin + c]);
                d.copy_from_slice(&back(&z));
            }
        }
    });
    DU.set(du);
    dw
}

/// `Gᵀ z G` (3×3, row-major) of a transformed-position gradient `z` (4×4, row-major),
/// G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
pub(super) fn back(z: &[f32; 16]) -> [f32; 9] {
    let col =
        |a: f32, b: f32, c: f32, d: f32| [a + 0.5 * (b + c), 0.5 * (b - c), 0.5 * (b + c) + d];
    // s[j][a]: the row transform of column j.
    let s: [[f32; 3]; 4] = std::array::from_fn(|j| col(z[j], z[4 + j], z[8 + j], z[12 + j]));
    let mut out = [0f32; 9];
    for a in 0..3 {
        let r = col(s[0][a], s[1][a], s[2][a], s[3][a]);
        out[3 * a..3 * a + 3].copy_from_slice(&r);
    }
    out
}

/// One block of tile rows `r0..r1`: `V` and `M`, then `acc[ξ] = (add ? acc[ξ] : 0) + M[ξ] · V[ξ]ᵀ`.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
unsafe fn block(
    x: &[f32],
    dy: &[f32],
    cv: &Conv,
    (r0, r1): (usize, usize),
    (v, m): (&mut [f32], &mut [f32]),
    acc: &mut [f32],
    add: bool,
) {
    let nt = (r1 - r0) * cv.tw;
    let (cin, cout) = (cv.cin, cv.cout);
    let (vs, ms) = (plane_stride(cin * nt), plane_stride(cout * nt));
    // SAFETY (callees): same target feature as this function.
    unsafe {
        tiles::input(x, cv, (r0, r1), &mut v[..16 * vs], vs);
        grad_tiles(dy, cv, (r0, r1), &mut m[..16 * ms], ms);
    }
    for xi in 0..16 {
        let lhs = Mat {
            data: &m[xi * ms..xi * ms + cout * nt],
            rs: nt,
            cs: 1,
        };
        let rhs = Mat {
            data: &v[xi * vs..xi * vs + cin * nt],
            rs: 1,
            cs: nt,
        };
        let dst = &mut acc[xi * cout * cin..(xi + 1) * cout * cin];
        matmul_into((cout, cin, nt), dst, (cin, 1), lhs, rhs, add);
    }
}

/// `m[ξ][o][t] = (A dY Aᵀ)[ξ]` for the tiles `t` of tile rows `r0..r1`, `dY` the 2×2 output
/// gradient of the tile (zero past the map), Aᵀ = [1 1 1 0; 0 1 −1 −1]; 16 planes `ms`
/// elements apart of `cout · nt` each.
///
/// # Safety
/// AVX-512F must be present; `dy` is the whole `[N, cout, oh, ow]` gradient of `cv`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn grad_tiles(dy: &[f32], cv: &Conv, (r0, r1): (usize, usize), m: &mut [f32], ms: usize) {
    let (tw, nt, cout) = (cv.tw, (r1 - r0) * cv.tw, cv.cout);
    assert!(dy.len() >= cv.n * cout * cv.oh * cv.ow && m.len() >= 15 * ms + cout * nt);
    let even = _mm512_loadu_si512(tiles::EVEN.as_ptr().cast());
    let odd = _mm512_loadu_si512(tiles::ODD.as_ptr().cast());
    let mp = m.as_mut_ptr();
    let zero = _mm512_setzero_ps();
    for o in 0..cout {
        for (ri, gr) in (r0..r1).enumerate() {
            let (b, i) = (gr / cv.th, gr % cv.th);
            let plane = dy.as_ptr().add((b * cout + o) * cv.oh * cv.ow);
            let t0 = ri * tw;
            for j0 in (0..tw).step_by(16) {
                let col = 2 * j0;
                let (m_lo, m_hi) = (
                    tiles::lanes(cv.ow.saturating_sub(col)),
                    tiles::lanes(cv.ow.saturating_sub(col + 16)),
                );
                // Columns 2j and 2j+1 of output row 2i + a, tiles j0..j0 + 16.
                let row = |a: usize| -> [__m512; 2] {
                    let r = 2 * i + a;
                    if r >= cv.oh {
                        return [zero, zero];
                    }
                    // SAFETY: masked to columns 0..ow of row r of this plane.
                    let (lo, hi) = unsafe {
                        let p = plane.add(r * cv.ow + col);
                        (
                            _mm512_maskz_loadu_ps(m_lo, p),
                            _mm512_maskz_loadu_ps(m_hi, p.wrapping_add(16)),
                        )
                    };
                    [
                        _mm512_permutex2var_ps(lo, even, hi),
                        _mm512_permutex2var_ps(lo, odd, hi),
                    ]
                };
                // (p, q) → [p, p + q, p − q, −q]: A applied to a 2-vector.
                let a4 = |p: __m512, q: __m512| {
                    [
                        p,
                        _mm512_add_ps(p, q),
                        _mm512_sub_ps(p, q),
                        _mm512_sub_ps(zero, q),
                    ]
                };
                let (y0, y1) = (row(0), row(1));
                let (c0, c1) = (a4(y0[0], y0[1]), a4(y1[0], y1[1]));
                let mask = tiles::lanes(tw - j0);
                for l in 0..4 {
                    for (r, val) in a4(c0[l], c1[l]).into_iter().enumerate() {
                        let at = (4 * r + l) * ms + o * nt + t0 + j0;
                        _mm512_mask_storeu_ps(mp.add(at), mask, val);
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn grad_tiles(_: &[f32], _: &Conv, _: (usize, usize), _: &mut [f32], _: usize) {
    unreachable!("Winograd kernels need AVX-512")
}
