//! conv2d and its two backward passes: cuDNN when present (and enabled), otherwise
//! im2col/col2im kernels plus cuBLAS.

use crate::blas::{gemm, Mat};
use crate::buffer::CudaStorage;
use crate::cudnn::{self, Bufs, Pass};
use crate::ops::{cfg_1d, contiguous, elementwise::copy_layout, launch};
use cudarc::driver::DeviceRepr;
use mlfw_core::params::Conv2dParams;
use mlfw_core::{Error, Layout, Result};
use std::sync::atomic::{AtomicBool, Ordering};

static USE_CUDNN: AtomicBool = AtomicBool::new(true);

/// Chooses cuDNN (default, when the library is present) or the im2col + cuBLAS fallback for
/// convolutions; the switch exists so both paths can be tested on one machine.
pub fn set_use_cudnn(on: bool) {
    USE_CUDNN.store(on, Ordering::Relaxed);
}

/// Geometry for im2col/col2im; mirrors `struct ConvGeo` in kernels/conv.rs.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct ConvGeo {
    n: u64,
    c: u64,
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
}

// SAFETY: plain data with the same C layout as the CUDA struct.
unsafe impl DeviceRepr for ConvGeo {}

fn dims4(l: &Layout, what: &str) -> Result<[usize; 4]> {
    match *l.dims() {
        [a, b, c, d] => Ok([a, b, c, d]),
        _ => Err(Error::msg(format!(
            "conv2d: {what} must be 4-D, got {}",
            l.shape()
        ))),
    }
}

fn check(a: &CudaStorage, b: &CudaStorage) -> Result<()> {
    if a.dtype != b.dtype {
        return Err(Error::DTypeMismatch {
            op: "conv2d",
            lhs: a.dtype,
            rhs: b.dtype,
        });
    }
    if !a.dtype.is_float() {
        return Err(Error::UnsupportedDType {
            op: "conv2d",
            dtype: a.dtype,
        });
    }
    Ok(())
}

fn use_cudnn(s: &CudaStorage) -> bool {
    s.dev.has_cudnn && USE_CUDNN.load(Ordering::Relaxed)
}

fn geo(x: [usize; 4], k: (usize, usize), y: (usize, usize), p: &Conv2dParams) -> ConvGeo {
    ConvGeo {
        n: x[0] as u64,
        c: x[1] as u64,
        h: x[2] as u64,
        w: x[3] as u64,
        oh: y.0 as u64,
        ow: y.1 as u64,
        kh: k.0 as i32,
        kw: k.1 as i32,
        sh: p.stride.0 as i32,
        sw: p.stride.1 as i32,
        ph: p.padding.0 as i32,
        pw: p.padding.1 as i32,
        dh: p.dilation.0 as i32,
        dw: p.dilation.1 as i32,
    }
}

fn out_hw(p: &Conv2dParams, hw: (usize, usize), k: (usize, usize)) -> Result<(usize, usize)> {
    p.out_hw(hw, k)
        .ok_or_else(|| Error::msg("conv2d: input smaller than the dilated kernel"))
}

/// `x [N,C,H,W]` as columns `[N, C*kh*kw, OH*OW]`.
fn im2col(x: u64, s: &CudaStorage, g: ConvGeo) -> Result<CudaStorage> {
    let n = (g.n * g.c * (g.kh * g.kw) as u64 * g.oh * g.ow) as usize;
    let col = CudaStorage::alloc(&s.dev, s.dtype, n)?;
    if n > 0 {
        let f = s.dev.func("conv", Some(s.dtype), "im2col")?;
        launch!(s.dev, f, cfg_1d(n); n as u64, g, x, col.ptr())?;
    }
    Ok(col)
}

/// Forward convolution (no bias).
pub(crate) fn conv2d(
    x: &CudaStorage,
    xl: &Layout,
    w: &CudaStorage,
    wl: &Layout,
    p: &Conv2dParams,
) -> Result<CudaStorage> {
    check(x, w)?;
    let xd = dims4(xl, "input")?;
    let wd = dims4(wl, "weight")?;
    let (oh, ow) = out_hw(p, (xd[2], xd[3]), (wd[2], wd[3]))?;
    let yd = [xd[0], wd[0], oh, ow];
    let out = CudaStorage::alloc(&x.dev, x.dtype, yd.iter().product())?;
    if yd.iter().product::<usize>() == 0 {
        return Ok(out);
    }
    let (xp, _xk) = contiguous(x, xl)?;
    let (wp, _wk) = contiguous(w, wl)?;
    if use_cudnn(x) {
        cudnn::run(
            &x.dev,
            Pass::Forward,
            x.dtype,
            xd,
            wd,
            yd,
            p,
            Bufs {
                x: xp,
                w: wp,
                y: out.ptr(),
            },
        )?;
        return Ok(out);
    }
    let g = geo(xd, (wd[2], wd[3]), (oh, ow), p);
    let col = im2col(xp, x, g)?;
    let (groups, kk, l) = (p.groups, wd[2] * wd[3], oh * ow);
    let (og, cgk) = (wd[0] / groups, wd[1] * kk);
    let es = x.dtype.size_in_bytes() as u64;
    for gi in 0..groups {
        // out[b, g*og.., :] = W_g [og, cgk] · col[b, g*cgk.., :] [cgk, l]
        let a = Mat {
            ptr: wp + (gi * og * cgk) as u64 * es,
            rs: cgk,
            cs: 1,
            bs: 0,
        };
        let b = Mat {
            ptr: col.ptr() + (gi * cgk * l) as u64 * es,
            rs: l,
            cs: 1,
            bs: xd[1] * kk * l,
        };
        let c = out.ptr() + (gi * og * l) as u64 * es;
        gemm(
            &x.dev,
            x.dtype,
            xd[0],
            (og, l, cgk),
            a,
            b,
            (c, l, wd[0] * l),
            0.0,
        )?;
    }
    Ok(out)
}

/// Gradient w.r.t. the input: `g` is grad_out `[N, O, OH, OW]`.
pub(crate) fn backward_input(
    g: &CudaStorage,
    gl: &Layout,
    w: &CudaStorage,
    wl: &Layout,
    p: &Conv2dParams,
    (h, wi): (usize, usize),
) -> Result<CudaStorage> {
    check(g, w)?;
    let yd = dims4(gl, "grad_out")?;
    let wd = dims4(wl, "weight")?;
    let xd = [yd[0], wd[1] * p.groups, h, wi];
    let dx = CudaStorage::zeros(&g.dev, g.dtype, xd.iter().product())?;
    if xd.iter().product::<usize>() == 0 || yd.iter().product::<usize>() == 0 {
        return Ok(dx);
    }
    let (gp, _gk) = contiguous(g, gl)?;
    let (wp, _wk) = contiguous(w, wl)?;
    if use_cudnn(g) {
        cudnn::run(
            &g.dev,
            Pass::BackwardData,
            g.dtype,
            xd,
            wd,
            yd,
            p,
            Bufs {
                x: dx.ptr(),
                w: wp,
                y: gp,
            },
        )?;
        return Ok(dx);
    }
    let (groups, kk, l) = (p.groups, wd[2] * wd[3], yd[2] * yd[3]);
    let (og, cgk) = (wd[0] / groups, wd[1] * kk);
    let es = g.dtype.size_in_bytes() as u64;
    let col = CudaStorage::alloc(&g.dev, g.dtype, xd[0] * xd[1] * kk * l)?;
    for gi in 0..groups {
        // col[b, g*cgk.., :] = W_gᵀ [cgk, og] · gout[b, g*og.., :] [og, l]
        let a = Mat {
            ptr: wp + (gi * og * cgk) as u64 * es,
            rs: 1,
            cs: cgk,
            bs: 0,
        };
        let b = Mat {
            ptr: gp + (gi * og * l) as u64 * es,
            rs: l,
            cs: 1,
            bs: yd[1] * l,
        };
        let c = col.ptr() + (gi * cgk * l) as u64 * es;
        gemm(
            &g.dev,
            g.dtype,
            xd[0],
            (cgk, l, og),
            a,
            b,
            (c, l, xd[1] * kk * l),
            0.0,
        )?;
    }
    let geo = geo(xd, (wd[2], wd[3]), (yd[2], yd[3]), p);
    let n = xd.iter().product::<usize>();
    let f = g.dev.func("conv", Some(g.dtype), "col2im")?;
    launch!(g.dev, f, cfg_1d(n); n as u64, geo, col.ptr(), dx.ptr())?;
    Ok(dx)
}

/// Gradient w.r.t. the weight: `x` is the input, `g` grad_out.
pub(crate) fn backward_weight(
    x: &CudaStorage,
    xl: &Layout,
    g: &CudaStorage,
    gl: &Layout,
    p: &Conv2dParams,
    (kh, kw): (usize, usize),
) -> Result<CudaStorage> {
    check(x, g)?;
    let xd = dims4(xl, "input")?;
    let yd = dims4(gl, "grad_out")?;
    let wd = [yd[1], xd[1] / p.groups, kh, kw];
    let dw = CudaStorage::zeros(&x.dev, x.dtype, wd.iter().product())?;
    if wd.iter().product::<usize>() == 0 || yd.iter().product::<usize>() == 0 {
        return Ok(dw);
    }
    let (xp, _xk) = contiguous(x, xl)?;
    if use_cudnn(x) {
        let (gp, _gk) = contiguous(g, gl)?;
        cudnn::run(
            &x.dev,
            Pass::BackwardFilter,
            x.dtype,
            xd,
            wd,
            yd,
            p,
            Bufs {
                x: xp,
                w: dw.ptr(),
                y: gp,
            },
        )?;
        return Ok(dw);
    }
    let (groups, kk, l, nb) = (p.groups, kh * kw, yd[2] * yd[3], xd[0]);
    let (og, cgk) = (wd[0] / groups, wd[1] * kk);
    let es = x.dtype.size_in_bytes() as u64;
    let geo = geo(xd, (kh, kw), (yd[2], yd[3]), p);
    // Batch folded into the reduction: gout as [O, N*L] and columns as [C*K, N*L].
    let col = im2col(xp, x, geo)?;
    let col_t = copy_layout(
        &col,
        &Layout::contiguous([nb, xd[1] * kk, l]).permute(&[1, 0, 2])?,
    )?;
    let gc;
    let (gs, goff) = match gl.contiguous_range() {
        Some((start, _)) => (g, start),
        None => {
            gc = copy_layout(g, gl)?;
            (&gc, 0)
        }
    };
    let o_n_l = Layout::from_parts([yd[1], nb, l].into(), vec![l, yd[1] * l, 1], goff);
    let g_t = copy_layout(gs, &o_n_l)?;
    for gi in 0..groups {
        // dW_g [og, cgk] = gout_g [og, N*L] · col_gᵀ [N*L, cgk]
        let a = Mat {
            ptr: g_t.ptr() + (gi * og * nb * l) as u64 * es,
            rs: nb * l,
            cs: 1,
            bs: 0,
        };
        let b = Mat {
            ptr: col_t.ptr() + (gi * cgk * nb * l) as u64 * es,
            rs: 1,
            cs: nb * l,
            bs: 0,
        };
        let c = dw.ptr() + (gi * og * cgk) as u64 * es;
        gemm(
            &x.dev,
            x.dtype,
            1,
            (og, cgk, nb * l),
            a,
            b,
            (c, cgk, 0),
            0.0,
        )?;
    }
    Ok(dw)
}
