//! Winograd F(2×2, 3×3) convolution for many-channel 3×3 stride-1 f32 layers (ResNet's and
//! VGG's), forward and input gradient.
//!
//! Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (2016): each 2×2 output
//! tile is `Y = Aᵀ [U ⊙ V] A` with `U = G g Gᵀ` (the 3×3 kernel `g` transformed to 4×4) and
//! `V = Bᵀ d B` (the 4×4 input patch `d` around the tile), so that summed over input
//! channels the 16 transformed positions are 16 independent matrix products
//! `M[ξ][O × tiles] = U[ξ][O × C] · V[ξ][C × tiles]`: 16 multiply-adds per tile and channel
//! pair instead of the direct 36, i.e. 2.25× fewer.
//! - `U` is computed once per call, over the pool, as `[O][16][C]` (forward) or, for the
//!   input gradient, `[C][16][O]` from the flipped kernels, so that every product reads
//!   rows of `U[ξ]` the same way;
//! - tiles are processed in blocks of whole tile rows ([`tiles`] tiles, one block per
//!   pool task): the block's `V` (`[16][C][tiles]`) is built from the NCHW input, the 16
//!   products run on the shared gemm of [`super::gemm`] into `M` (`[16][O][tiles]`), and the
//!   output transform writes `Aᵀ M A` straight into the NCHW output;
//! - the input gradient is the same convolution of `dy` with the flipped, transposed kernel
//!   and padding `2 − p`.
//!
//! The transforms are additions only (and exact halvings in `U`), so the rounding error
//! stays that of a direct f32 sum: at most 7e-7 relative to an f64 reference on ResNet
//! shapes, against 2.3e-6 for the blocked direct kernels (`crates/core/tests/conv_winograd.rs`). Taken (see [`super::Conv2dImpl`]) for f32,
//! groups 1, 3×3, stride 1, dilation 1, padding ≤ 2, at least [`MIN_CHANNELS`] channels in
//! and out, on AVX-512 CPUs (the transforms are compiled for it); switched off with
//! `MLFW_CONV_WINOGRAD=0`, and with the other AVX-512 kernels by `MLFW_CONV_DIRECT=0`.

mod tiles;
mod wgrad;
#[cfg(test)]
mod wgrad_tests;

pub(super) use wgrad::bwd_weight;

use super::gemm::{matmul_into, Mat};
use super::geom::{with_scratch, Geom, PAR_WORK};
use crate::parallel::{self, num_threads};
use std::mem::MaybeUninit;

/// Target elements of a block's transformed input `V` (16 · C · tiles): 768 KiB, within L2
/// with room for the gemm's packed operands (measured at batch 32, one thread: blocks of
/// 192 tiles for 64 channels, 96 for 128, 48 for 256 were the fastest of 48–384).
const V_ELEMS: usize = 3 << 16;

/// Tiles per block (one pool task) for `cin` input channels: [`V_ELEMS`] worth, 32 to 384.
fn tiles(cin: usize) -> usize {
    (V_ELEMS / (16 * cin.max(1))).clamp(32, 384)
}
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

/// AVX-512F is present ([`super::direct::has_avx512`], false under `MLFW_CONV_DIRECT=0`,
/// which stands for a CPU without AVX-512) and `MLFW_CONV_WINOGRAD=0` is not set.
fn enabled() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let off =
        *OFF.get_or_init(|| std::env::var("MLFW_CONV_WINOGRAD").is_ok_and(|v| v.trim() == "0"));
    !off && super::direct::has_avx512()
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
    /// The forward convolution `g` (also what the weight gradient transforms).
    fn forward(g: &Geom) -> Conv {
        Conv {
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
        }
    }
}

/// Forward: `out[N, O, oH, oW]` (every element written) from `x[N, C, H, W]`, `wt[O, C, 3, 3]`.
pub(super) fn fwd(x: &[f32], wt: &[f32], g: &Geom, out: &mut [MaybeUninit<f32>]) {
    let cv = Conv::forward(g);
    with_weights(wt, &cv, |u| run(x, u, &cv, g.work(), out));
}

/// Input gradient: `dx[N, C, H, W]` (every element written) from `dy[N, O, oH, oW]` and
/// `wt[O, C, 3, 3]`, as the convolution of `dy` with the flipped transposed kernel and
/// padding `2 − p`.
pub(super) fn bwd_input(dy: &[f32], wt: &[f32], g: &Geom, dx: &mut [MaybeUninit<f32>]) {
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
    with_weights(wt, &cv, |u| run(dy, u, &cv, g.work(), dx));
}

/// Calls `f(U)` with `U[r][ξ][l] = (G g Gᵀ)[ξ]` for the `[rows × lanes]` kernels of `cv`:
/// `g = wt[o, c]` with `(r, l) = (o, c)` for the forward, the flipped `wt[o, c]` with
/// `(r, l) = (c, o)` for the input gradient. Computed over the pool into a buffer this
/// thread keeps between calls (a fresh 16 MB `U` for 512 channels costs more in page faults
/// than its transform).
fn with_weights<R>(wt: &[f32], cv: &Conv, f: impl FnOnce(&[f32]) -> R) -> R {
    thread_local! {
        static U: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    }
    let (rows, nl) = (cv.cout, cv.cin);
    let steps = if cv.flip {
        (9, 9 * rows, nl)
    } else {
        (9 * nl, 9, nl)
    };
    let row = 16 * nl;
    let mut u = U.take();
    u.clear();
    u.reserve(rows * row);
    let per = parallel::chunk_len(rows, (1 << 14) / row.max(1) + 1);
    parallel::for_each_chunk_mut(
        &mut u.spare_capacity_mut()[..rows * row],
        per * row,
        |k, chunk| {
            // SAFETY: AVX-512F was detected (`usable`).
            unsafe { tiles::weights(wt, steps, cv.flip, k * per, chunk) }
        },
    );
    // SAFETY: `tiles::weights` wrote every element of every chunk.
    unsafe { u.set_len(rows * row) };
    let r = f(&u);
    U.set(u);
    r
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
    let rb = (tiles(cv.cin) / cv.tw).max(1).min(rows.div_ceil(threads));
    let tasks = rows.div_ceil(rb);
    let nt_max = rb * cv.tw;
    let (vlen, mlen) = (
        16 * plane_stride(cv.cin * nt_max),
        16 * plane_stride(cv.cout * nt_max),
    );
    let dst = Out(out.as_mut_ptr().cast::<f32>());
    parallel::run(tasks, |k| {
        let r0 = k * rb;
        let r1 = (r0 + rb).min(rows);
        with_scratch(vlen + mlen, |s: &mut [f32]| {
            let (v, rest) = s.split_at_mut(vlen);
            // SAFETY: AVX-512F was detected (`usable`); this task writes only the output
            // rows of tile rows r0..r1, which no other task touches, inside `out`.
            unsafe { block(x, u, cv, (r0, r1), v, &mut rest[..mlen], &dst) }
        })
    });
}

/// Elements between the 16 planes of `V` or `M` holding `n` each: 16 more than a multiple
/// of 16, so that the 16 streams the transforms read or write at once do not fall into the
/// same cache sets (planes 4 KiB apart would).
fn plane_stride(n: usize) -> usize {
    n.next_multiple_of(16) + 16
}

/// One block of tile rows `r0..r1` (global over the batch): input transform, 16 products,
/// output transform.
#[cfg_attr(target_arch = "x86_64", target_feature(enable = "avx512f"))]
unsafe fn block(
    x: &[f32],
    u: &[f32],
    cv: &Conv,
    (r0, r1): (usize, usize),
    v: &mut [f32],
    m: &mut [f32],
    dst: &Out,
) {
    let nt = (r1 - r0) * cv.tw;
    let (cin, cout) = (cv.cin, cv.cout);
    let (vs, ms) = (plane_stride(cin * nt), plane_stride(cout * nt));
    // SAFETY (callee): same target feature as this function.
    unsafe { tiles::input(x, cv, (r0, r1), &mut v[..16 * vs], vs) };
    for xi in 0..16 {
        let lhs = Mat {
            data: &u[xi * cin..],
            rs: 16 * cin,
            cs: 1,
        };
        let rhs = Mat {
            data: &v[xi * vs..xi * vs + cin * nt],
            rs: nt,
            cs: 1,
        };
        matmul_into(
            (cout, nt, cin),
            &mut m[xi * ms..xi * ms + cout * nt],
            (nt, 1),
            lhs,
            rhs,
            false,
        );
    }
    // SAFETY (callee): as above.
    unsafe { tiles::output(&m[..16 * ms], cv, (r0, r1), ms, dst) };
}
