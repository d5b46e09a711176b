//! Average and adaptive-average 2-D pooling over NCHW tensors, with backward passes
//! (PyTorch's CPU rules: `count_include_pad` divisors over windows clipped to the padded
//! input; adaptive windows `[floor(i·H/oH), ceil((i+1)·H/oH))`).

use super::{dx_work, float_op, per_plane, pool_out, Planes, PoolFloat};
use crate::params::Pool2dParams;
use crate::{CpuStorage, Error, Layout, Result, Shape};

/// Average pooling windows along one axis: clipped `[lo, hi)` and the padded-window length.
fn avg_window(o: usize, s: usize, p: usize, k: usize, len: usize) -> (usize, usize, usize) {
    let start = (o * s) as isize - p as isize;
    let end = (start + k as isize).min((len + p) as isize);
    let padded = (end - start).max(0) as usize;
    let lo = start.max(0) as usize;
    let hi = (end.min(len as isize).max(0) as usize).max(lo);
    (lo, hi, padded)
}

/// Calls `f(out index, h range, w range, divisor)` for every window of avg pooling.
fn avg_windows(
    g: &Planes,
    p: &Pool2dParams,
    mut f: impl FnMut(usize, (usize, usize), (usize, usize), usize),
) {
    for r in 0..g.oh {
        let (h0, h1, ph) = avg_window(r, p.stride.0, p.padding.0, p.kernel.0, g.h);
        for c in 0..g.ow {
            let (w0, w1, pw) = avg_window(c, p.stride.1, p.padding.1, p.kernel.1, g.w);
            let div = if p.count_include_pad {
                ph * pw
            } else {
                (h1 - h0) * (w1 - w0)
            };
            f(r * g.ow + c, (h0, h1), (w0, w1), div);
        }
    }
}

fn avg_pool_t<T: PoolFloat>(x: &[T], g: &Planes, p: &Pool2dParams) -> Vec<T> {
    let mut out = vec![T::zero(); g.count * g.out_len()];
    per_plane(&mut out, g.out_len(), x.len(), |k, os| {
        let xs = &x[k * g.in_len()..(k + 1) * g.in_len()];
        avg_windows(g, p, |o, (h0, h1), (w0, w1), div| {
            if h0 == h1 || w0 == w1 {
                return;
            }
            let mut s = T::zero();
            for ih in h0..h1 {
                for &v in &xs[ih * g.w + w0..ih * g.w + w1] {
                    s += v;
                }
            }
            os[o] = s / T::from(div).unwrap_or_else(T::one);
        });
    });
    out
}

fn avg_pool_backward_t<T: PoolFloat>(gy: &[T], g: &Planes, p: &Pool2dParams) -> Vec<T> {
    let mut dx = vec![T::zero(); g.count * g.in_len()];
    per_plane(&mut dx, g.in_len(), dx_work(g), |k, d| {
        let gs = &gy[k * g.out_len()..(k + 1) * g.out_len()];
        avg_windows(g, p, |o, (h0, h1), (w0, w1), div| {
            if h0 == h1 || w0 == w1 {
                return;
            }
            let v = gs[o] / T::from(div).unwrap_or_else(T::one);
            for ih in h0..h1 {
                for e in &mut d[ih * g.w + w0..ih * g.w + w1] {
                    *e += v;
                }
            }
        });
    });
    dx
}

/// Adaptive window `[floor(i·len/out), ceil((i+1)·len/out))`.
fn adaptive_window(i: usize, out: usize, len: usize) -> (usize, usize) {
    (i * len / out, ((i + 1) * len).div_ceil(out))
}

fn adaptive_t<T: PoolFloat>(x: &[T], g: &Planes) -> Vec<T> {
    let mut out = vec![T::zero(); g.count * g.out_len()];
    per_plane(&mut out, g.out_len(), x.len(), |k, os| {
        let xs = &x[k * g.in_len()..(k + 1) * g.in_len()];
        for r in 0..g.oh {
            let (h0, h1) = adaptive_window(r, g.oh, g.h);
            for c in 0..g.ow {
                let (w0, w1) = adaptive_window(c, g.ow, g.w);
                let mut s = T::zero();
                for ih in h0..h1 {
                    for &v in &xs[ih * g.w + w0..ih * g.w + w1] {
                        s += v;
                    }
                }
                let n = (h1 - h0) * (w1 - w0);
                os[r * g.ow + c] = if n == 0 {
                    T::zero()
                } else {
                    s / T::from(n).unwrap_or_else(T::one)
                };
            }
        }
    });
    out
}

fn adaptive_backward_t<T: PoolFloat>(gy: &[T], g: &Planes) -> Vec<T> {
    let mut dx = vec![T::zero(); g.count * g.in_len()];
    per_plane(&mut dx, g.in_len(), dx_work(g), |k, d| {
        let gs = &gy[k * g.out_len()..(k + 1) * g.out_len()];
        for r in 0..g.oh {
            let (h0, h1) = adaptive_window(r, g.oh, g.h);
            for c in 0..g.ow {
                let (w0, w1) = adaptive_window(c, g.ow, g.w);
                let n = (h1 - h0) * (w1 - w0);
                if n == 0 {
                    continue;
                }
                let v = gs[r * g.ow + c] / T::from(n).unwrap_or_else(T::one);
                for ih in h0..h1 {
                    for e in &mut d[ih * g.w + w0..ih * g.w + w1] {
                        *e += v;
                    }
                }
            }
        }
    });
    dx
}

/// Average pooling of `[N, C, H, W]` (no dilation, as PyTorch's avg_pool2d).
pub(crate) fn avg_pool2d(x: &CpuStorage, l: &Layout, p: &Pool2dParams) -> Result<CpuStorage> {
    if p.dilation != (1, 1) {
        return Err(Error::msg(
            "avg_pool2d: dilation is not supported (PyTorch's avg_pool2d has none)",
        ));
    }
    let g = pool_out(l, p, "avg_pool2d")?;
    float_op(
        x,
        l,
        "avg_pool2d",
        |v| avg_pool_t(v, &g, p),
        |v| avg_pool_t(v, &g, p),
    )
}

/// Gradient of average pooling: grad_out (`g`) spread evenly over each window.
pub(crate) fn avg_pool2d_backward(
    gy: &CpuStorage,
    l: &Layout,
    p: &Pool2dParams,
    input: &Shape,
) -> Result<CpuStorage> {
    let op = "avg_pool2d_backward";
    if p.dilation != (1, 1) {
        return Err(Error::msg(format!("{op}: dilation is not supported")));
    }
    let il = Layout::contiguous(input.clone());
    let g = pool_out(&il, p, op)?;
    if l.dims() != [input.dims()[0], input.dims()[1], g.oh, g.ow] {
        return Err(Error::msg(format!(
            "{op}: grad_out {} does not match the pooled shape of input {input}",
            l.shape()
        )));
    }
    float_op(
        gy,
        l,
        op,
        |v| avg_pool_backward_t(v, &g, p),
        |v| avg_pool_backward_t(v, &g, p),
    )
}

/// Adaptive average pooling of `[N, C, H, W]` to `out`.
pub(crate) fn adaptive_avg_pool2d(
    x: &CpuStorage,
    l: &Layout,
    out: (usize, usize),
) -> Result<CpuStorage> {
    let op = "adaptive_avg_pool2d";
    if out.0 == 0 || out.1 == 0 {
        return Err(Error::msg(format!("{op}: output size must be positive")));
    }
    let g = Planes::new(l.dims(), out, op)?;
    float_op(x, l, op, |v| adaptive_t(v, &g), |v| adaptive_t(v, &g))
}

/// Gradient of adaptive average pooling; the output size is grad_out's (`g`) spatial size.
pub(crate) fn adaptive_avg_pool2d_backward(
    gy: &CpuStorage,
    l: &Layout,
    input: &Shape,
) -> Result<CpuStorage> {
    let op = "adaptive_avg_pool2d_backward";
    let d = l.dims();
    if d.len() != 4 || input.dims().len() != 4 || input.dims()[..2] != d[..2] {
        return Err(Error::msg(format!(
            "{op}: grad_out {} does not fit input {input}",
            l.shape()
        )));
    }
    let g = Planes::new(input.dims(), (d[2], d[3]), op)?;
    float_op(
        gy,
        l,
        op,
        |v| adaptive_backward_t(v, &g),
        |v| adaptive_backward_t(v, &g),
    )
}
