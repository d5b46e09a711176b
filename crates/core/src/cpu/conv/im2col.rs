//! The general path: im2col/col2im around the gemm products of [`super::gemm`], for what
//! the wide layout does not suit (strides > 1, 1×1 kernels, much padding).
//!
//! Per image, the input is unfolded into `col[C·kH·kW, P]` (P = oH·oW; row `(c, i, j)` holds
//! what kernel tap `(i, j)` of channel `c` sees at every output position). A 1×1, stride-1,
//! unpadded kernel needs no im2col: the image already is `col`.

use super::gemm::{bwd_input_product, bwd_weight_product, fwd_product};
use super::geom::{over_batch, with_scratch, Geom};
use crate::WithDType;

/// Forward into `out[N, O, oH, oW]`.
pub(super) fn fwd<T: WithDType>(x: &[T], w: &[T], g: &Geom, out: &mut [T]) {
    let np = g.np();
    let scratch = if g.pointwise() { 0 } else { g.rows() * np };
    over_batch(g, out, g.o * np, scratch, |i, oi, col| {
        let xi = &x[i * g.img()..(i + 1) * g.img()];
        let col: &[T] = if g.pointwise() {
            xi
        } else {
            im2col(xi, col, np, g);
            &col[..]
        };
        fwd_product(g, w, col, np, oi);
    });
}

/// Input gradient into `dx[N, C, H, W]` (zeroed by the caller).
pub(super) fn bwd_input<T: WithDType + std::ops::AddAssign>(
    dy: &[T],
    w: &[T],
    g: &Geom,
    dx: &mut [T],
) {
    let np = g.np();
    let scratch = if g.pointwise() { 0 } else { g.rows() * np };
    over_batch(g, dx, g.img(), scratch, |i, dxi, dcol| {
        let dyi = &dy[i * g.o * np..(i + 1) * g.o * np];
        if g.pointwise() {
            bwd_input_product(g, w, dyi, np, dxi);
        } else {
            bwd_input_product(g, w, dyi, np, dcol);
            col2im(dcol, np, dxi, g);
        }
    });
}

/// Weight gradient `dWᵀ[K, O] += col[K, B·P] · dYᵀ[B·P, O]` for images `i0..i1` into `acc`.
pub(super) fn bwd_weight_chunk<T: WithDType>(
    x: &[T],
    dy: &[T],
    g: &Geom,
    (i0, i1): (usize, usize),
    acc: &mut [T],
) {
    let (np, rows) = (g.np(), g.rows());
    let bp = (i1 - i0) * np;
    with_scratch((rows + g.o) * bp, |buf: &mut [T]| {
        let (col, dyt) = buf.split_at_mut(rows * bp);
        for (b, i) in (i0..i1).enumerate() {
            im2col(
                &x[i * g.img()..(i + 1) * g.img()],
                &mut col[b * np..],
                bp,
                g,
            );
            for o in 0..g.o {
                let src = &dy[(i * g.o + o) * np..(i * g.o + o + 1) * np];
                dyt[o * bp + b * np..o * bp + (b + 1) * np].copy_from_slice(src);
            }
        }
        bwd_weight_product(g, col, dyt, bp, acc);
    });
}

/// Output indices `[lo, hi)` along one axis whose input index `o·s + tap − pad` is in `0..len`.
fn valid_range(out: usize, s: usize, tap: usize, pad: usize, len: usize) -> (usize, usize) {
    let lo = if tap >= pad {
        0
    } else {
        (pad - tap).div_ceil(s)
    };
    let hi = if len + pad <= tap {
        0
    } else {
        (len + pad - tap).div_ceil(s)
    };
    let (lo, hi) = (lo.min(out), hi.min(out));
    (lo, hi.max(lo))
}

/// Copies `s` into `d` (same length) with fixed-size, possibly overlapping block moves: the
/// rows im2col copies are often 5–30 elements, where a `memcpy` call costs more than the copy.
#[inline(always)]
fn copy_short<T: Copy>(d: &mut [T], s: &[T]) {
    #[inline(always)]
    fn block<T: Copy, const B: usize>(d: &mut [T], s: &[T], at: usize) {
        let src: &[T; B] = s[at..at + B].try_into().expect("block in range");
        let dst: &mut [T; B] = (&mut d[at..at + B]).try_into().expect("block in range");
        *dst = *src;
    }
    let n = d.len().min(s.len());
    match n {
        0 => {}
        1 => d[0] = s[0],
        2..=3 => {
            block::<T, 2>(d, s, 0);
            block::<T, 2>(d, s, n - 2);
        }
        4..=7 => {
            block::<T, 4>(d, s, 0);
            block::<T, 4>(d, s, n - 4);
        }
        8..=63 => {
            let mut at = 0;
            while at + 8 <= n {
                block::<T, 8>(d, s, at);
                at += 8;
            }
            if at < n {
                block::<T, 8>(d, s, n - 8);
            }
        }
        _ => d[..n].copy_from_slice(&s[..n]),
    }
}

/// Unfolds one image `x[C, H, W]` into `col` (row stride `rs`, `P` columns used per row).
fn im2col<T: Copy + Default>(x: &[T], col: &mut [T], rs: usize, g: &Geom) {
    let (sh, sw) = g.p.stride;
    let (ph, pw) = g.p.padding;
    let (dh, dw) = g.p.dilation;
    let zero = T::default();
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            let (rlo, rhi) = valid_range(g.oh, sh, i * dh, ph, g.h);
            for j in 0..g.kw {
                let row = (c * g.kh + i) * g.kw + j;
                let dst = &mut col[row * rs..row * rs + g.np()];
                let (lo, hi) = valid_range(g.ow, sw, j * dw, pw, g.w);
                // Zero only what no input reaches: whole rows outside [rlo, rhi), row edges.
                if lo == hi || rlo >= rhi {
                    dst.fill(zero);
                    continue;
                }
                dst[..rlo * g.ow].fill(zero);
                dst[rhi * g.ow..].fill(zero);
                let len = hi - lo;
                let mut at = (rlo * sh + i * dh - ph) * g.w + lo * sw + j * dw - pw;
                for r in rlo..rhi {
                    let row = &mut dst[r * g.ow..(r + 1) * g.ow];
                    row[..lo].fill(zero);
                    row[hi..].fill(zero);
                    let d = &mut row[lo..hi];
                    if sw == 1 {
                        copy_short(d, &plane[at..at + len]);
                    } else {
                        for (v, s) in d.iter_mut().zip(plane[at..].iter().step_by(sw)) {
                            *v = *s;
                        }
                    }
                    at += sh * g.w;
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds `col` (row stride `rs`) into the image `dx[C, H, W]`.
fn col2im<T: Copy + std::ops::AddAssign>(col: &[T], rs: usize, dx: &mut [T], g: &Geom) {
    let (sh, sw) = g.p.stride;
    let (ph, pw) = g.p.padding;
    let (dh, dw) = g.p.dilation;
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for i in 0..g.kh {
            let (rlo, rhi) = valid_range(g.oh, sh, i * dh, ph, g.h);
            for j in 0..g.kw {
                let row = (c * g.kh + i) * g.kw + j;
                let src = &col[row * rs..row * rs + g.np()];
                let (lo, hi) = valid_range(g.ow, sw, j * dw, pw, g.w);
                if lo == hi {
                    continue;
                }
                let iw0 = lo * sw + j * dw - pw;
                for r in rlo..rhi {
                    let s = &src[r * g.ow + lo..r * g.ow + hi];
                    let ih = r * sh + i * dh - ph;
                    let d = &mut plane[ih * g.w..(ih + 1) * g.w];
                    if sw == 1 {
                        for (d, s) in d[iw0..iw0 + hi - lo].iter_mut().zip(s) {
                            *d += *s;
                        }
                    } else {
                        for (d, s) in d[iw0..].iter_mut().step_by(sw).zip(s) {
                            *d += *s;
                        }
                    }
                }
            }
        }
    }
}
