//! Stride-1 convolutions by "wide" im2col: long copies instead of many short ones.
//!
//! With the input zero-padded to `[C, Hp, Wp]` and the output computed at every column of
//! the padded width (`P' = oH·Wp` positions, of which the last `Wp − oW` of each row are
//! garbage), row `(c, i, j)` of `col` is one contiguous run of the padded image, starting at
//! `c·Hp·Wp + i·dH·Wp + j·dW`. On small maps consecutive rows share one border (`Wp = W + pW`,
//! each row `pW` zeros then `W` values): a tap reading past the end of a row lands in the
//! next row's leading zeros, exactly the right border it needs, so 3×3 layers on 4×4 maps
//! compute 5 columns per row instead of 6. im2col becomes `C·kH·kW` copies of `P'` elements instead of
//! `C·kH·kW·oH` copies of `oW` (LeNet-5's conv2: 150 copies of 140 floats instead of 1,500
//! of 10). The price is `Wp/oW` more gemm work and one compacting copy of the output, so the
//! path is taken only when `Wp ≤ 1.5·oW`. Gradients put zeros in the garbage columns of
//! `dY`, so they contribute nothing.

use super::gemm::{bwd_input_product, bwd_weight_product, fwd_product};
use super::geom::{with_scratch, Geom, PAR_WORK};
use crate::parallel;
use crate::WithDType;

/// Padded-image and wide-output sizes of a stride-1 convolution.
#[derive(Debug, Clone, Copy)]
pub(super) struct Wide {
    /// Padded width.
    pub(super) wp: usize,
    /// Elements of one padded channel plane.
    pub(super) plane: usize,
    /// Wide output positions per image, `oH·Wp`.
    pub(super) np: usize,
    /// True when the input has padding (so it is copied into a padded buffer).
    padded: bool,
}

impl Wide {
    /// The wide layout, when it suits `g` (stride 1, little garbage, not a 1×1 kernel).
    pub(super) fn new(g: &Geom) -> Option<Wide> {
        if g.p.stride != (1, 1) || g.pointwise() || g.ow == 0 || g.oh == 0 {
            return None;
        }
        // On small maps rows share their padding: the right border of row r is the left
        // border of row r + 1 (reads past a row's end wrap into the next row's `pw` leading
        // zeros), so a row is `W + pW` wide rather than `W + 2·pW` (at least `oW`, for
        // over-padding). Taken where that saves at least a tenth of the work (`W ≤ 8·pW`:
        // ResNet's 8×8 and 4×4 maps); on larger maps (LeNet's 28×28) the separate borders
        // measured faster on the gemm path.
        let pw = g.p.padding.1;
        let wp = if pw > 0 && g.w <= 8 * pw {
            (g.w + pw).max(g.ow)
        } else {
            g.w + 2 * pw
        };
        let hp = g.h + 2 * g.p.padding.0;
        if 2 * wp > 3 * g.ow {
            return None;
        }
        Some(Wide {
            wp,
            plane: hp * wp,
            np: g.oh * wp,
            padded: g.p.padding != (0, 0),
        })
    }

    /// Start of `col` row `(c, i, j)` in the padded image.
    pub(super) fn offset(&self, g: &Geom, c: usize, i: usize, j: usize) -> usize {
        c * self.plane + i * g.p.dilation.0 * self.wp + j * g.p.dilation.1
    }

    /// Elements of the padded image kept in scratch (none when the input is used as is).
    fn pad_len(&self, g: &Geom) -> usize {
        if self.padded {
            g.c * self.plane
        } else {
            0
        }
    }
}

/// Copies the image `x[C, H, W]` into `xp[C, Hp, Wp]` with zero borders.
pub(super) fn pad<T: WithDType>(x: &[T], xp: &mut [T], g: &Geom, w: &Wide) {
    let (ph, pw) = g.p.padding;
    for (c, dst) in xp.chunks_exact_mut(w.plane).enumerate().take(g.c) {
        dst[..ph * w.wp].fill(T::ZERO);
        dst[(ph + g.h) * w.wp..].fill(T::ZERO);
        for r in 0..g.h {
            let row = &mut dst[(ph + r) * w.wp..(ph + r + 1) * w.wp];
            row[..pw].fill(T::ZERO);
            row[pw + g.w..].fill(T::ZERO);
            let src = &x[(c * g.h + r) * g.w..(c * g.h + r + 1) * g.w];
            row[pw..pw + g.w].copy_from_slice(src);
        }
    }
}

/// `col[t][q] = xp[offset(t) + q]` for `q < P'` (zero past the end of `xp`), row stride `rs`.
fn im2col<T: WithDType>(xp: &[T], col: &mut [T], rs: usize, g: &Geom, w: &Wide) {
    for c in 0..g.c {
        for i in 0..g.kh {
            for j in 0..g.kw {
                let t = (c * g.kh + i) * g.kw + j;
                let off = w.offset(g, c, i, j);
                let dst = &mut col[t * rs..t * rs + w.np];
                let n = w.np.min(xp.len() - off);
                dst[..n].copy_from_slice(&xp[off..off + n]);
                dst[n..].fill(T::ZERO);
            }
        }
    }
}

/// Spreads `dy[O, oH, oW]` over the wide positions `dyw[O][P']` (row stride `rs`), zeros in
/// the garbage columns.
pub(super) fn widen<T: WithDType>(dy: &[T], dyw: &mut [T], rs: usize, g: &Geom, w: &Wide) {
    for o in 0..g.o {
        let dst = &mut dyw[o * rs..o * rs + w.np];
        for (y, row) in dst.chunks_exact_mut(w.wp).enumerate() {
            let src = &dy[(o * g.oh + y) * g.ow..(o * g.oh + y + 1) * g.ow];
            row[..g.ow].copy_from_slice(src);
            row[g.ow..].fill(T::ZERO);
        }
    }
}

/// Wide positions one gemm should cover at least: deep layers have few positions per
/// image (4×4 → 24), too few rows for gemm's register tiles, so images are stacked.
const MIN_ROWS: usize = 512;
/// Most elements of `col` for one group of stacked images.
const MAX_COL: usize = 1 << 21;

/// Images stacked into one gemm: enough for [`MIN_ROWS`] positions, within [`MAX_COL`].
fn images_per_group(g: &Geom, w: &Wide) -> usize {
    let want = MIN_ROWS.div_ceil(w.np);
    let fit = (MAX_COL / (g.rows() * w.np).max(1)).max(1);
    want.min(fit)
        .min(g.n.div_ceil(parallel::num_threads()))
        .max(1)
}

/// Runs `f(first image, images, their chunk of out, scratch)` over groups of `per` images,
/// groups spread over the pool when the work is big enough.
fn over_groups<T, F>(g: &Geom, out: &mut [T], out_img: usize, per: usize, scratch: usize, f: F)
where
    T: WithDType,
    F: Fn(usize, usize, &mut [T], &mut [T]) + Sync,
{
    if out_img == 0 || g.n == 0 {
        return;
    }
    let parallel = g.work() >= PAR_WORK;
    let chunk = if parallel { per * out_img } else { out.len() };
    parallel::for_each_chunk_mut(out, chunk, |ci, chunk| {
        with_scratch(scratch, |buf| {
            // Chunk `ci` starts at image `ci * per` (there is one chunk when not parallel).
            for (k, part) in chunk.chunks_mut(per * out_img).enumerate() {
                f((ci + k) * per, part.len() / out_img, part, buf);
            }
        })
    });
}

/// Forward into `out[N, O, oH, oW]`.
pub(super) fn fwd<T: WithDType>(x: &[T], wt: &[T], g: &Geom, w: &Wide, out: &mut [T]) {
    let (np, rows) = (g.np(), g.rows());
    let pad_len = w.pad_len(g);
    let per = images_per_group(g, w);
    let scratch = pad_len + (rows + g.o) * per * w.np;
    over_groups(g, out, g.o * np, per, scratch, |i0, count, out, buf| {
        let bp = count * w.np;
        let (xp, rest) = buf.split_at_mut(pad_len);
        let (col, rest) = rest.split_at_mut(rows * bp);
        let wide = &mut rest[..g.o * bp];
        for b in 0..count {
            let i = i0 + b;
            let xi = &x[i * g.img()..(i + 1) * g.img()];
            let src: &[T] = if w.padded {
                pad(xi, xp, g, w);
                xp
            } else {
                xi
            };
            im2col(src, &mut col[b * w.np..], bp, g, w);
        }
        fwd_product(g, wt, col, bp, wide);
        for (b, oi) in out.chunks_exact_mut(g.o * np).enumerate() {
            for (o, dst) in oi.chunks_exact_mut(np).enumerate() {
                for (y, row) in dst.chunks_exact_mut(g.ow).enumerate() {
                    let at = o * bp + b * w.np + y * w.wp;
                    row.copy_from_slice(&wide[at..at + g.ow]);
                }
            }
        }
    });
}

/// Input gradient into `dx[N, C, H, W]` (zeroed by the caller).
pub(super) fn bwd_input<T: WithDType + std::ops::AddAssign>(
    dy: &[T],
    wt: &[T],
    g: &Geom,
    w: &Wide,
    dx: &mut [T],
) {
    let (np, rows) = (g.np(), g.rows());
    let pad_len = w.pad_len(g);
    let per = images_per_group(g, w);
    let scratch = pad_len + (rows + g.o) * per * w.np;
    over_groups(g, dx, g.img(), per, scratch, |i0, count, dx, buf| {
        let bp = count * w.np;
        let (dxp, rest) = buf.split_at_mut(pad_len);
        let (dcol, rest) = rest.split_at_mut(rows * bp);
        let dyw = &mut rest[..g.o * bp];
        for b in 0..count {
            let i = i0 + b;
            widen(
                &dy[i * g.o * np..(i + 1) * g.o * np],
                &mut dyw[b * w.np..],
                bp,
                g,
                w,
            );
        }
        bwd_input_product(g, wt, dyw, bp, dcol);
        for (b, dxi) in dx.chunks_exact_mut(g.img()).enumerate() {
            let target: &mut [T] = if w.padded {
                dxp.fill(T::ZERO);
                &mut dxp[..]
            } else {
                dxi
            };
            // The adjoint of im2col: add each row back where it was read from.
            for c in 0..g.c {
                for i in 0..g.kh {
                    for j in 0..g.kw {
                        let t = (c * g.kh + i) * g.kw + j;
                        let off = w.offset(g, c, i, j);
                        let n = w.np.min(target.len() - off);
                        let src = &dcol[t * bp + b * w.np..t * bp + b * w.np + n];
                        for (d, s) in target[off..off + n].iter_mut().zip(src) {
                            *d += *s;
                        }
                    }
                }
            }
            if w.padded {
                let (ph, pw) = g.p.padding;
                for (c, plane) in dxi.chunks_exact_mut(g.h * g.w).enumerate() {
                    for (r, row) in plane.chunks_exact_mut(g.w).enumerate() {
                        let at = c * w.plane + (ph + r) * w.wp + pw;
                        row.copy_from_slice(&dxp[at..at + g.w]);
                    }
                }
            }
        }
    });
}

/// Weight gradient `dWᵀ[K, O] += col[K, B·P'] · dYwᵀ[B·P', O]` for images `i0..i1` into `acc`.
pub(super) fn bwd_weight_chunk<T: WithDType>(
    x: &[T],
    dy: &[T],
    g: &Geom,
    w: &Wide,
    (i0, i1): (usize, usize),
    acc: &mut [T],
) {
    let (np, rows) = (g.np(), g.rows());
    let bp = (i1 - i0) * w.np;
    let pad_len = w.pad_len(g);
    with_scratch(pad_len + (rows + g.o) * bp, |buf: &mut [T]| {
        let (xp, rest) = buf.split_at_mut(pad_len);
        let (col, dyw) = rest.split_at_mut(rows * bp);
        for (b, i) in (i0..i1).enumerate() {
            let xi = &x[i * g.img()..(i + 1) * g.img()];
            let src: &[T] = if w.padded {
                pad(xi, xp, g, w);
                xp
            } else {
                xi
            };
            im2col(src, &mut col[b * w.np..], bp, g, w);
            let dyi = &dy[i * g.o * np..(i + 1) * g.o * np];
            widen(dyi, &mut dyw[b * w.np..], bp, g, w);
        }
        bwd_weight_product(g, col, dyw, bp, acc);
    });
}
