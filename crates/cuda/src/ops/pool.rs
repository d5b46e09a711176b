//! Max / average / adaptive-average pooling and their backward passes (NCHW, float dtypes).

use super::{cfg_1d, contiguous, launch};
use crate::buffer::CudaStorage;
use cudarc::driver::DeviceRepr;
use mlfw_core::params::Pool2dParams;
use mlfw_core::{DType, Error, Layout, Result, Shape};

/// Pooling geometry for kernels; mirrors `struct PoolGeo` in kernels/pool.rs.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct PoolGeo {
    h: u64,
    w: u64,
    oh: u64,
    ow: u64,
    kh: i32,
    kw: i32,
    sh: i32,
    sw: i32,
    ph: i32,
    pw: i32,
    dh: i32,
    dw: i32,
    count_include_pad: i32,
    pad_: i32,
}

// SAFETY: plain data with the same C layout as the CUDA struct.
unsafe impl DeviceRepr for PoolGeo {}

fn nchw(l: &Layout, op: &'static str) -> Result<[usize; 4]> {
    match *l.dims() {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::msg(format!(
            "{op}: expected [N, C, H, W], got {}",
            l.shape()
        ))),
    }
}

fn float(s: &CudaStorage, op: &'static str) -> Result<()> {
    if !s.dtype.is_float() {
        return Err(Error::UnsupportedDType { op, dtype: s.dtype });
    }
    Ok(())
}

fn geo(p: &Pool2dParams, h: usize, w: usize, op: &'static str) -> Result<PoolGeo> {
    let (oh, ow) = match (p.out_len(h, 0), p.out_len(w, 1)) {
        (Some(a), Some(b)) if a > 0 && b > 0 => (a, b),
        _ => {
            return Err(Error::msg(format!(
                "{op}: input {h}x{w} too small for kernel {:?}",
                p.kernel
            )))
        }
    };
    Ok(PoolGeo {
        h: h as u64,
        w: w as u64,
        oh: oh as u64,
        ow: ow as u64,
        kh: p.kernel.0 as i32,
        kw: p.kernel.1 as i32,
        sh: p.stride.0 as i32,
        sw: p.stride.1 as i32,
        ph: p.padding.0 as i32,
        pw: p.padding.1 as i32,
        dh: p.dilation.0 as i32,
        dw: p.dilation.1 as i32,
        count_include_pad: p.count_include_pad as i32,
        pad_: 0,
    })
}

/// Max pooling: values and i64 indices `h * W + w` within each plane.
pub(crate) fn max_pool2d(
    s: &CudaStorage,
    l: &Layout,
    p: &Pool2dParams,
) -> Result<(CudaStorage, CudaStorage)> {
    float(s, "max_pool2d")?;
    let [n, c, h, w] = nchw(l, "max_pool2d")?;
    let g = geo(p, h, w, "max_pool2d")?;
    let total = n * c * (g.oh * g.ow) as usize;
    let y = CudaStorage::alloc(&s.dev, s.dtype, total)?;
    let idx = CudaStorage::alloc(&s.dev, DType::I64, total)?;
    if total == 0 {
        return Ok((y, idx));
    }
    let (xp, _k) = contiguous(s, l)?;
    let f = s.dev.func("pool", Some(s.dtype), "max_pool_fwd")?;
    launch!(s.dev, f, cfg_1d(total); total as u64, g, xp, y.ptr(), idx.ptr())?;
    Ok((y, idx))
}

/// Scatters grad_out through the indices into a zeroed input-shaped gradient.
pub(crate) fn max_pool2d_backward(
    g: &CudaStorage,
    l: &Layout,
    idx: &CudaStorage,
    il: &Layout,
    input: &Shape,
) -> Result<CudaStorage> {
    float(g, "max_pool2d_backward")?;
    let [_, _, oh, ow] = nchw(l, "max_pool2d_backward")?;
    let [_, _, h, w] = nchw(&Layout::contiguous(input.clone()), "max_pool2d_backward")?;
    let dx = CudaStorage::zeros(&g.dev, g.dtype, input.elem_count())?;
    let n = l.elem_count();
    if n == 0 {
        return Ok(dx);
    }
    let (gp, _gk) = contiguous(g, l)?;
    let (ip, _ik) = contiguous(idx, il)?;
    let f = g.dev.func("pool", Some(g.dtype), "max_pool_bwd")?;
    launch!(g.dev, f, cfg_1d(n); n as u64, (h * w) as u64, (oh * ow) as u64, gp, ip, dx.ptr())?;
    Ok(dx)
}

/// Average pooling (PyTorch's divisor rules; `count_include_pad`).
pub(crate) fn avg_pool2d(s: &CudaStorage, l: &Layout, p: &Pool2dParams) -> Result<CudaStorage> {
    float(s, "avg_pool2d")?;
    let [n, c, h, w] = nchw(l, "avg_pool2d")?;
    let g = geo(p, h, w, "avg_pool2d")?;
    let total = n * c * (g.oh * g.ow) as usize;
    let y = CudaStorage::alloc(&s.dev, s.dtype, total)?;
    if total == 0 {
        return Ok(y);
    }
    let (xp, _k) = contiguous(s, l)?;
    let f = s.dev.func("pool", Some(s.dtype), "avg_pool_fwd")?;
    launch!(s.dev, f, cfg_1d(total); total as u64, g, xp, y.ptr())?;
    Ok(y)
}

/// Gradient of average pooling (`g` is grad_out).
pub(crate) fn avg_pool2d_backward(
    g: &CudaStorage,
    l: &Layout,
    p: &Pool2dParams,
    input: &Shape,
) -> Result<CudaStorage> {
    float(g, "avg_pool2d_backward")?;
    let [_, _, h, w] = nchw(&Layout::contiguous(input.clone()), "avg_pool2d_backward")?;
    let geo = geo(p, h, w, "avg_pool2d_backward")?;
    let dx = CudaStorage::zeros(&g.dev, g.dtype, input.elem_count())?;
    let n = l.elem_count();
    if n == 0 {
        return Ok(dx);
    }
    let (gp, _k) = contiguous(g, l)?;
    let f = g.dev.func("pool", Some(g.dtype), "avg_pool_bwd")?;
    launch!(g.dev, f, cfg_1d(n); n as u64, geo, gp, dx.ptr())?;
    Ok(dx)
}

/// Adaptive average pooling to `(oh, ow)`.
pub(crate) fn adaptive_avg_pool2d(
    s: &CudaStorage,
    l: &Layout,
    (oh, ow): (usize, usize),
) -> Result<CudaStorage> {
    float(s, "adaptive_avg_pool2d")?;
    let [n, c, h, w] = nchw(l, "adaptive_avg_pool2d")?;
    let total = n * c * oh * ow;
    let y = CudaStorage::alloc(&s.dev, s.dtype, total)?;
    if total == 0 {
        return Ok(y);
    }
    if h == 0 || w == 0 {
        return Err(Error::msg(format!(
            "adaptive_avg_pool2d: empty input {}",
            l.shape()
        )));
    }
    let (xp, _k) = contiguous(s, l)?;
    let f = s.dev.func("pool", Some(s.dtype), "adaptive_avg_fwd")?;
    launch!(s.dev, f, cfg_1d(total); total as u64, h as u64, w as u64, oh as u64, ow as u64, xp, y.ptr())?;
    Ok(y)
}

/// Gradient of adaptive average pooling (`g` is grad_out `[N, C, oh, ow]`).
pub(crate) fn adaptive_avg_pool2d_backward(
    g: &CudaStorage,
    l: &Layout,
    input: &Shape,
) -> Result<CudaStorage> {
    float(g, "adaptive_avg_pool2d_backward")?;
    let [_, _, oh, ow] = nchw(l, "adaptive_avg_pool2d_backward")?;
    let [_, _, h, w] = nchw(
        &Layout::contiguous(input.clone()),
        "adaptive_avg_pool2d_backward",
    )?;
    let dx = CudaStorage::zeros(&g.dev, g.dtype, input.elem_count())?;
    let n = l.elem_count();
    if n == 0 {
        return Ok(dx);
    }
    let (gp, _k) = contiguous(g, l)?;
    let f = g.dev.func("pool", Some(g.dtype), "adaptive_avg_bwd")?;
    launch!(g.dev, f, cfg_1d(n); n as u64, h as u64, w as u64, oh as u64, ow as u64, gp, dx.ptr())?;
    Ok(dx)
}
