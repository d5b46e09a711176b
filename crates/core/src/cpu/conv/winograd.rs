//! Winograd F(2×2, 3×3) convolution for many-channel 3×3 stride-1 f32 layers (ResNet's and
//! VGG's), forward and input gradient.
//!
//! Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016): each 2×2 output
//! tile is `Y = Aᵀ [U ⊙ V] A` with `U = G g Gᵀ` (the 3×3 kernel `g` transformed to 4×4) and
//! `V = Bᵀ d B` (the 4×4 input patch `d` around the tile), so that summed over input
//! channels the 16 transformed positions are 16 independent matrix products
//! `M[ξ][O × tiles] = U[ξ][O × C] · V[ξ][C × tiles]`: 16 multiply-adds per tile and channel
//! pair instead of the direct 36, i.e. 2.25× fewer.
//! - `U` is computed once per call (`[O][16][C]`, so that both the forward `[O × C]` and the
//!   input gradient's transposed `[C × O]` matrices are strided views of it);
//! - tiles are processed in blocks of whole tile rows (about [`TILES`] tiles, one block per
//!   pool task): the block's `V` (`[16][C][tiles]`) is built from the NCHW input, the 16
//!   products run on the shared gemm of [`super::gemm`] into `M` (`[16][O][tiles]`), and the
//!   output transform writes `Aᵀ M A` straight into the NCHW output;
//! - the input gradient is the same convolution of `dy` with the flipped, transposed kernel
//!   and padding `2 − p`; flipping a 3×3 kernel swaps rows and columns 0 and 3 of its
//!   transform (`G J = P G`, `P` the 0↔3 swap), so it reads `U[o][P ξ][c]` as `[C × O]`.
//!
//! The transforms are additions only (no rounding beyond f32 sums); `U` halves exactly. The
//! error against an f64 reference is of the order of the direct kernels' (see
//! `crates/core/tests/conv_winograd.rs`). Taken (see [`super::Conv2dImpl`]) for f32,
//! groups 1, 3×3, stride 1, dilation 1, padding ≤ 2, at least [`MIN_CHANNELS`] channels in
//! and out, on AVX-512 CPUs (the transforms are compiled for it); switched off with
//! `MLFW_CONV_WINOGRAD=0`.

use super::gemm::{matmul_into, Mat};
use super::geom::{with_scratch, Geom, PAR_WORK};
use crate::parallel::{self, num_threads};
use std::mem::MaybeUninit;

/// Target tiles per block (one pool task).
const TILES: usize = 96;
/// Fewest input and output channels for which the transforms pay off.
const MIN_CHANNELS: usize = 32;

/// True when geometry `g` (of an f32 convolution) suits these kernels.
pub(super) fn usable(g: &Geom) -> bool {
    g.groups == 1
        && (g.kh, g.kw) == (3, 3)
        && g.p.stride == (1, 1)
        && g.p.dilation == (1, 1)
        && g.p.padding.0 <= 2
        && g.p.padding.1 <= 2
        && g.c >= MIN_CHANNELS
        && g.o >= MIN_CHANNELS
        && enabled()
}

/// AVX-512F is present and `MLFW_CONV_WINOGRAD=0` is not set.
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        let off = std::env::var("MLFW_CONV_WINOGRAD").is_ok_and(|v| v.trim() == "0");
        #[cfg(target_arch = "x86_64")]
        let simd = std::is_x86_feature_detected!("avx512f");
        #[cfg(not(target_arch = "x86_64"))]
        let simd = false;
        !off && simd
    })
}

/// One Winograd convolution: `cin` channels of `h × w` in, `cout` of `oh × ow` out.
#[derive(Debug, Clone, Copy)]
struct Conv {
    n: usize,
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    ph: usize,
    pw: usize,
    /// Tile rows and tiles per row of one image.
    th: usize,
    tw: usize,
    /// True for the input gradient (reads `U` transposed and flipped).
    flip: bool,
}

impl Conv {
    /// Width of one zero-padded input row as the tiles read it.
    fn wp(&self) -> usize {
        2 * self.tw + 2
    }
}

/// Forward: `out[N, O, oH, oW]` (every element written) from `x[N, C, H, W]`, `wt[O, C, 3, 3]`.
pub(super) fn fwd(x: &[f32], wt: &[f32], g: &Geom, out: &mut [MaybeUninit<f32>]) {
    let u = weights(wt, g.o, g.c);
    let cv = Conv {
        n: g.n,
        cin: g.c,
        cout: g.o,
        h: g.h,
        w: g.w,
        oh: g.oh,
        ow: g.ow,
        ph: g.p.padding.0,
        pw: g.p.padding.1,
        th: g.oh.div_ceil(2),
        tw: g.ow.div_ceil(2),
        flip: false,
    };
    run(x, &u, &cv, g.work(), out);
}

/// Input gradient: `dx[N, C, H, W]` (every element written) from `dy[N, O, oH, oW]` and
/// `wt[O, C, 3, 3]`, as the convolution of `dy` with the flipped transposed kernel and
/// padding `2 − p`.
pub(super) fn bwd_input(dy: &[f32], wt: &[f32], g: &Geom, dx: &mut [MaybeUninit<f32>]) {
    let u = weights(wt, g.o, g.c);
    let cv = Conv {
        n: g.n,
        cin: g.o,
        cout: g.c,
        h: g.oh,
        w: g.ow,
        oh: g.h,
        ow: g.w,
        ph: 2 - g.p.padding.0,
        pw: 2 - g.p.padding.1,
        th: g.h.div_ceil(2),
        tw: g.w.div_ceil(2),
        flip: true,
    };
    run(dy, &u, &cv, g.work(), dx);
}

/// `U[o][ξ][c] = (G g Gᵀ)[ξ]` for every kernel `g = wt[o, c]`, spread over the pool.
fn weights(wt: &[f32], o: usize, c: usize) -> Vec<f32> {
    let row = 16 * c;
    let per = parallel::chunk_len(o, (1 << 14) / row.max(1) + 1);
    // SAFETY: `transform_weights` writes every element of its chunk (all 16·c of each of
    // its output channels); AVX-512F was detected (`usable`).
    unsafe {
        parallel::build_vec(o * row, per * row, |start, chunk| {
            let o0 = start / row;
            transform_weights(&wt[o0 * 9 * c..(o0 + chunk.len() / row) * 9 * c], c, chunk)
        })
    }
}

/// `chunk[o][ξ][c]` from `wt[o][c][3][3]` for the output channels of one chunk.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
unsafe fn transform_weights(wt: &[f32], c: usize, chunk: &mut [MaybeUninit<f32>]) {
    for (wo, uo) in wt.chunks_exact(9 * c).zip(chunk.chunks_exact_mut(16 * c)) {
        for (ci, k) in wo.chunks_exact(9).enumerate() {
            // t = G g (4×3), then u = t Gᵀ (4×4); G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1].
            let mut t = [[0f32; 3]; 4];
            for j in 0..3 {
                let (a, b, d) = (k[j], k[3 + j], k[6 + j]);
                t[0][j] = a;
                t[1][j] = 0.5 * (a + b + d);
                t[2][j] = 0.5 * (a - b + d);
                t[3][j] = d;
            }
            for (r, t) in t.iter().enumerate() {
                let [a, b, d] = *t;
                uo[(4 * r) * c + ci].write(a);
                uo[(4 * r + 1) * c + ci].write(0.5 * (a + b + d));
                uo[(4 * r + 2) * c + ci].write(0.5 * (a - b + d));
                uo[(4 * r + 3) * c + ci].write(d);
            }
        }
    }
}

/// The output, shared by the tasks: each writes the rows of its own tile rows only.
struct Out(*mut f32);
// SAFETY: tasks write disjoint elements (distinct tile rows) of one `&mut` slice that
// outlives them (see `run`).
unsafe impl Sync for Out {}

/// Runs the blocks of tile rows of `cv` over the pool.
fn run(x: &[f32], u: &[f32], cv: &Conv, work: usize, out: &mut [MaybeUninit<f32>]) {
    let rows = cv.n * cv.th;
    assert_eq!(
        out.len(),
        cv.n * cv.cout * cv.oh * cv.ow,
        "winograd: output size"
    );
    assert_eq!(x.len(), cv.n * cv.cin * cv.h * cv.w, "winograd: input size");
    if rows == 0 || cv.cout == 0 || out.is_empty() {
        return;
    }
    let threads = if work >= PAR_WORK { num_threads() } else { 1 };
    let rb = (TILES / cv.tw).max(1).min(rows.div_ceil(threads));
    let tasks = rows.div_ceil(rb);
    let nt_max = rb * cv.tw;
    let (vlen, mlen) = (16 * cv.cin * nt_max, 16 * cv.cout * nt_max);
    let rowbuf = 8 * cv.wp() + 4 * cv.tw + 16;
    let dst = Out(out.as_mut_ptr().cast::<f32>());
    parallel::run(tasks, |k| {
        let r0 = k * rb;
        let r1 = (r0 + rb).min(rows);
        with_scratch(vlen + mlen + rowbuf, |s: &mut [f32]| {
            let (v, rest) = s.split_at_mut(vlen);
            let (m, buf) = rest.split_at_mut(mlen);
            // SAFETY: AVX-512F was detected (`usable`); this task writes only the output
            // rows of tile rows r0..r1, which no other task touches, inside `out`.
            unsafe { block(x, u, cv, (r0, r1), v, m, buf, &dst) }
        })
    });
}

/// One block of tile rows `r0..r1` (global over the batch): input transform, 16 products,
/// output transform.
#[allow(clippy::too_many_arguments)]
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
unsafe fn block(
    x: &[f32],
    u: &[f32],
    cv: &Conv,
    (r0, r1): (usize, usize),
    v: &mut [f32],
    m: &mut [f32],
    buf: &mut [f32],
    dst: &Out,
) {
    let nt = (r1 - r0) * cv.tw;
    let (cin, cout) = (cv.cin, cv.cout);
    // SAFETY (callee): same target feature as this function.
    unsafe { input_tiles(x, cv, (r0, r1), &mut v[..16 * cin * nt], buf) };
    // The kernel's transform of a flipped kernel: rows and columns 0 and 3 swapped.
    let swap = |i: usize| [3, 1, 2, 0][i];
    for xi in 0..16 {
        let lhs = if cv.flip {
            // [C × O] view of U[o][P ξ][c] (cout = C, cin = O).
            let p = swap(xi / 4) * 4 + swap(xi % 4);
            Mat {
                data: &u[p * cout..],
                rs: 1,
                cs: 16 * cout,
            }
        } else {
            Mat {
                data: &u[xi * cin..],
                rs: 16 * cin,
                cs: 1,
            }
        };
        let rhs = Mat {
            data: &v[xi * cin * nt..(xi + 1) * cin * nt],
            rs: nt,
            cs: 1,
        };
        matmul_into(
            (cout, nt, cin),
            &mut m[xi * cout * nt..(xi + 1) * cout * nt],
            (nt, 1),
            lhs,
            rhs,
            false,
        );
    }
    // SAFETY (callee): as above.
    unsafe { output_tiles(&m[..16 * cout * nt], cv, (r0, r1), buf, dst) };
}

/// `v[ξ][c][t] = (Bᵀ d B)[ξ]` for the tiles `t` of tile rows `r0..r1`, `d` the 4×4 input
/// patch (zero outside the map). Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1].
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
unsafe fn input_tiles(
    x: &[f32],
    cv: &Conv,
    (r0, r1): (usize, usize),
    v: &mut [f32],
    buf: &mut [f32],
) {
    let (wp, tw, nt) = (cv.wp(), cv.tw, (r1 - r0) * cv.tw);
    let (rows, rest) = buf.split_at_mut(4 * wp);
    let e = &mut rest[..4 * wp];
    let plane = cv.h * cv.w;
    for c in 0..cv.cin {
        for (ri, gr) in (r0..r1).enumerate() {
            let (b, i) = (gr / cv.th, gr % cv.th);
            let src = &x[(b * cv.cin + c) * plane..][..plane];
            for (k, row) in rows.chunks_exact_mut(wp).enumerate() {
                let r = (2 * i + k) as isize - cv.ph as isize;
                if r < 0 || r >= cv.h as isize {
                    row.fill(0.0);
                } else {
                    let r = r as usize;
                    row[..cv.pw].fill(0.0);
                    row[cv.pw..cv.pw + cv.w].copy_from_slice(&src[r * cv.w..(r + 1) * cv.w]);
                    row[cv.pw + cv.w..].fill(0.0);
                }
            }
            // Bᵀ d: combinations of the four rows, over the whole padded width.
            let (d0, d1, d2, d3) = (
                &rows[..wp],
                &rows[wp..2 * wp],
                &rows[2 * wp..3 * wp],
                &rows[3 * wp..],
            );
            let (e0, e) = e.split_at_mut(wp);
            let (e1, e) = e.split_at_mut(wp);
            let (e2, e3) = e.split_at_mut(wp);
            for q in 0..wp {
                e0[q] = d0[q] - d2[q];
                e1[q] = d1[q] + d2[q];
                e2[q] = d2[q] - d1[q];
                e3[q] = d1[q] - d3[q];
            }
            // (Bᵀ d) B: the same combinations of columns 2j..2j+4 of each row.
            let t0 = ri * tw;
            for (k, ek) in [&*e0, &*e1, &*e2, &*e3].into_iter().enumerate() {
                let at = |l: usize| ((4 * k + l) * cv.cin + c) * nt + t0;
                let (o0, o1, o2, o3) = (at(0), at(1), at(2), at(3));
                for j in 0..tw {
                    let (p, q, s, t) = (ek[2 * j], ek[2 * j + 1], ek[2 * j + 2], ek[2 * j + 3]);
                    v[o0 + j] = p - s;
                    v[o1 + j] = q + s;
                    v[o2 + j] = s - q;
                    v[o3 + j] = q - t;
                }
            }
        }
    }
}

/// `out[b, o, 2i.., 2j..] = (Aᵀ m A)` for the tiles of tile rows `r0..r1`, `m[ξ][o][t]`,
/// Aᵀ = [1 1 1 0; 0 1 −1 −1]; the last row/column of a tile is dropped past the map.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
unsafe fn output_tiles(m: &[f32], cv: &Conv, (r0, r1): (usize, usize), buf: &mut [f32], dst: &Out) {
    let (tw, nt, cout) = (cv.tw, (r1 - r0) * cv.tw, cv.cout);
    let (y0, rest) = buf.split_at_mut(2 * tw);
    let y1 = &mut rest[..2 * tw];
    for o in 0..cout {
        for (ri, gr) in (r0..r1).enumerate() {
            let (b, i) = (gr / cv.th, gr % cv.th);
            let t0 = ri * tw;
            let mm = |xi: usize| &m[(xi * cout + o) * nt + t0..][..tw];
            let ms: [&[f32]; 16] = std::array::from_fn(mm);
            for j in 0..tw {
                // f = Aᵀ m (2×4), then y = f A (2×2).
                let mut f = [[0f32; 4]; 2];
                for s in 0..4 {
                    let (a, bb, c, d) = (ms[s][j], ms[4 + s][j], ms[8 + s][j], ms[12 + s][j]);
                    f[0][s] = a + bb + c;
                    f[1][s] = bb - c - d;
                }
                y0[2 * j] = f[0][0] + f[0][1] + f[0][2];
                y0[2 * j + 1] = f[0][1] - f[0][2] - f[0][3];
                y1[2 * j] = f[1][0] + f[1][1] + f[1][2];
                y1[2 * j + 1] = f[1][1] - f[1][2] - f[1][3];
            }
            let plane = (b * cout + o) * cv.oh * cv.ow;
            for (a, y) in [&*y0, &*y1].into_iter().enumerate() {
                let r = 2 * i + a;
                if r < cv.oh {
                    // SAFETY: row r of plane (b, o) lies inside the output (`run` checked
                    // its length) and belongs to tile row gr, owned by this task.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            y.as_ptr(),
                            dst.0.add(plane + r * cv.ow),
                            cv.ow,
                        )
                    };
                }
            }
        }
    }
}
