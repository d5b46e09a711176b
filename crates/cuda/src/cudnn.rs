//! Convolutions on cuDNN (forward, backward-data, backward-filter) over packed NCHW buffers.
//! The algorithm for each (pass, dtype, shapes, geometry, math mode) is picked once with
//! cuDNN's heuristics (`cudnnGet*Algorithm_v7`) and cached; workspaces come from the pool.

use crate::context::CudaDevice;
use crate::error::Wrap;
use cudarc::cudnn::{result as dnn, sys};
use mlfw_core::params::Conv2dParams;
use mlfw_core::{DType, Error, Result};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

static ALLOW_TF32: AtomicBool = AtomicBool::new(true);

/// Lets f32 convolutions use TF32 tensor cores; on by default, like
/// `torch.backends.cudnn.allow_tf32`.
pub fn set_cudnn_allow_tf32(on: bool) {
    ALLOW_TF32.store(on, Ordering::Relaxed);
}

/// Whether f32 convolutions may use TF32 (see [`set_cudnn_allow_tf32`]).
pub fn cudnn_allow_tf32() -> bool {
    ALLOW_TF32.load(Ordering::Relaxed)
}

/// Which convolution pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Pass {
    Forward,
    BackwardData,
    BackwardFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    pass: Pass,
    dtype: DType,
    x: [i32; 4],
    w: [i32; 4],
    p: Conv2dParams,
    tf32: bool,
}

#[derive(Debug, Clone, Copy)]
enum Algo {
    Fwd(sys::cudnnConvolutionFwdAlgo_t),
    Data(sys::cudnnConvolutionBwdDataAlgo_t),
    Filter(sys::cudnnConvolutionBwdFilterAlgo_t),
}

/// A cuDNN handle bound to the device's stream, plus the algorithm cache.
pub(crate) struct Dnn {
    handle: sys::cudnnHandle_t,
    algos: HashMap<Key, Algo>,
}

// SAFETY: the handle is only used under the device's handle lock, one thread at a time.
unsafe impl Send for Dnn {}

impl Drop for Dnn {
    fn drop(&mut self) {
        // SAFETY: created by cudnnCreate and destroyed once.
        let _ = unsafe { dnn::destroy_handle(self.handle) };
    }
}

macro_rules! desc {
    ($name:ident, $t:ty, $destroy:ident) => {
        struct $name($t);
        impl Drop for $name {
            fn drop(&mut self) {
                // SAFETY: created by the matching cudnnCreate*Descriptor, destroyed once.
                let _ = unsafe { dnn::$destroy(self.0) };
            }
        }
    };
}
desc!(
    TensorDesc,
    sys::cudnnTensorDescriptor_t,
    destroy_tensor_descriptor
);
desc!(
    FilterDesc,
    sys::cudnnFilterDescriptor_t,
    destroy_filter_descriptor
);
desc!(
    ConvDesc,
    sys::cudnnConvolutionDescriptor_t,
    destroy_convolution_descriptor
);

fn data_type(dt: DType) -> Result<sys::cudnnDataType_t> {
    use sys::cudnnDataType_t::*;
    Ok(match dt {
        DType::F32 => CUDNN_DATA_FLOAT,
        DType::F64 => CUDNN_DATA_DOUBLE,
        DType::F16 => CUDNN_DATA_HALF,
        DType::BF16 => CUDNN_DATA_BFLOAT16,
        other => {
            return Err(Error::UnsupportedDType {
                op: "conv2d",
                dtype: other,
            })
        }
    })
}

fn i32s(v: [usize; 4]) -> Result<[i32; 4]> {
    let mut o = [0i32; 4];
    for (o, &x) in o.iter_mut().zip(&v) {
        *o = i32::try_from(x)
            .map_err(|_| Error::msg(format!("conv2d: dim {x} too large for cuDNN")))?;
    }
    Ok(o)
}

/// Pointers of one call: x `[N,C,H,W]`, w `[O,C/g,kh,kw]`, y `[N,O,OH,OW]` (all packed); the
/// pass's output is the one it writes (y, x or w).
pub(crate) struct Bufs {
    pub x: u64,
    pub w: u64,
    pub y: u64,
}

/// Runs one convolution pass; `xd`, `wd`, `yd` are the NCHW dims of input, weight, output.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    dev: &CudaDevice,
    pass: Pass,
    dt: DType,
    xd: [usize; 4],
    wd: [usize; 4],
    yd: [usize; 4],
    p: &Conv2dParams,
    bufs: Bufs,
) -> Result<()> {
    dev.ctx.bind_to_thread().w("binding the context")?;
    let init = || {
        let handle = dnn::create_handle().w("creating the cuDNN handle")?;
        // SAFETY: fresh handle; the stream outlives it (both owned by the device).
        unsafe { dnn::set_stream(handle, dev.stream.cu_stream() as _) }.w("cudnnSetStream")?;
        Ok(Dnn {
            handle,
            algos: HashMap::new(),
        })
    };
    dev.with_handle(init, |d: &mut Dnn| {
        run_on(dev, d, pass, dt, [xd, wd, yd], p, bufs)
    })
}

/// [`run`] with the device's cuDNN handle `d` (locked by the caller).
fn run_on(
    dev: &CudaDevice,
    d: &mut Dnn,
    pass: Pass,
    dt: DType,
    [xd, wd, yd]: [[usize; 4]; 3],
    p: &Conv2dParams,
    bufs: Bufs,
) -> Result<()> {
    let ty = data_type(dt)?;
    let (x4, w4, y4) = (i32s(xd)?, i32s(wd)?, i32s(yd)?);
    let tf32 = dt == DType::F32 && cudnn_allow_tf32();
    let h = d.handle;
    let fmt = sys::cudnnTensorFormat_t::CUDNN_TENSOR_NCHW;
    // SAFETY (whole block): descriptors are created and set before use and destroyed on drop;
    // buffer pointers are packed NCHW device buffers of the described sizes; the handle is
    // used under the mutex.
    unsafe {
        let xdsc = TensorDesc(dnn::create_tensor_descriptor().w("cudnn tensor")?);
        dnn::set_tensor4d_descriptor(xdsc.0, fmt, ty, x4).w("cudnn x descriptor")?;
        let ydsc = TensorDesc(dnn::create_tensor_descriptor().w("cudnn tensor")?);
        dnn::set_tensor4d_descriptor(ydsc.0, fmt, ty, y4).w("cudnn y descriptor")?;
        let wdsc = FilterDesc(dnn::create_filter_descriptor().w("cudnn filter")?);
        dnn::set_filter4d_descriptor(wdsc.0, ty, fmt, w4).w("cudnn w descriptor")?;
        let cdsc = ConvDesc(dnn::create_convolution_descriptor().w("cudnn conv")?);
        let compute = if dt == DType::F64 {
            sys::cudnnDataType_t::CUDNN_DATA_DOUBLE
        } else {
            sys::cudnnDataType_t::CUDNN_DATA_FLOAT
        };
        dnn::set_convolution2d_descriptor(
            cdsc.0,
            p.padding.0 as i32,
            p.padding.1 as i32,
            p.stride.0 as i32,
            p.stride.1 as i32,
            p.dilation.0 as i32,
            p.dilation.1 as i32,
            sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
            compute,
        )
        .w("cudnn conv descriptor")?;
        dnn::set_convolution_group_count(cdsc.0, p.groups as i32).w("cudnn group count")?;
        let math = match dt {
            DType::F32 if !tf32 => sys::cudnnMathType_t::CUDNN_FMA_MATH,
            DType::F16 | DType::BF16 => sys::cudnnMathType_t::CUDNN_TENSOR_OP_MATH,
            _ => sys::cudnnMathType_t::CUDNN_DEFAULT_MATH,
        };
        dnn::set_convolution_math_type(cdsc.0, math).w("cudnn math type")?;

        let key = Key {
            pass,
            dtype: dt,
            x: x4,
            w: w4,
            p: *p,
            tf32,
        };
        let algo = match d.algos.get(&key) {
            Some(a) => *a,
            None => {
                let a = pick(h, pass, &xdsc, &wdsc, &cdsc, &ydsc)?;
                d.algos.insert(key, a);
                a
            }
        };
        let ws = match algo {
            Algo::Fwd(a) => {
                dnn::get_convolution_forward_workspace_size(h, xdsc.0, wdsc.0, cdsc.0, ydsc.0, a)
            }
            Algo::Data(a) => dnn::get_convolution_backward_data_workspace_size(
                h, wdsc.0, ydsc.0, cdsc.0, xdsc.0, a,
            ),
            Algo::Filter(a) => dnn::get_convolution_backward_filter_workspace_size(
                h, xdsc.0, ydsc.0, cdsc.0, wdsc.0, a,
            ),
        }
        .w("cudnn workspace size")?;
        let work = if ws > 0 {
            Some(crate::alloc::alloc_bytes(dev, ws)?)
        } else {
            None
        };
        let wptr = match &work {
            Some(w) => {
                use cudarc::driver::DevicePtr;
                let (p, _s) = w.device_ptr(&dev.stream);
                p as *mut c_void
            }
            None => std::ptr::null_mut(),
        };
        let (one64, zero64, one32, zero32) = (1.0f64, 0.0f64, 1.0f32, 0.0f32);
        let (alpha, beta) = if dt == DType::F64 {
            (
                &one64 as *const f64 as *const c_void,
                &zero64 as *const f64 as *const c_void,
            )
        } else {
            (
                &one32 as *const f32 as *const c_void,
                &zero32 as *const f32 as *const c_void,
            )
        };
        let (x, w, y) = (
            bufs.x as *mut c_void,
            bufs.w as *mut c_void,
            bufs.y as *mut c_void,
        );
        match algo {
            Algo::Fwd(a) => dnn::convolution_forward(
                h, alpha, xdsc.0, x, wdsc.0, w, cdsc.0, a, wptr, ws, beta, ydsc.0, y,
            ),
            Algo::Data(a) => dnn::convolution_backward_data(
                h, alpha, wdsc.0, w, ydsc.0, y, cdsc.0, a, wptr, ws, beta, xdsc.0, x,
            ),
            Algo::Filter(a) => dnn::convolution_backward_filter(
                h, alpha, xdsc.0, x, ydsc.0, y, cdsc.0, a, wptr, ws, beta, wdsc.0, w,
            ),
        }
        .w("cudnn convolution")?;
        drop(work); // stream-ordered free, after the convolution
    }
    Ok(())
}

/// The first algorithm cuDNN's heuristics rank as usable.
unsafe fn pick(
    h: sys::cudnnHandle_t,
    pass: Pass,
    x: &TensorDesc,
    w: &FilterDesc,
    c: &ConvDesc,
    y: &TensorDesc,
) -> Result<Algo> {
    let ok = sys::cudnnStatus_t::CUDNN_STATUS_SUCCESS;
    let mut count = 0i32;
    let none = || Error::msg(format!("cuDNN found no {pass:?} convolution algorithm"));
    match pass {
        Pass::Forward => {
            let mut r: [sys::cudnnConvolutionFwdAlgoPerf_t; 8] = std::mem::zeroed();
            dnn::get_convolution_forward_algorithm(
                h,
                x.0,
                w.0,
                c.0,
                y.0,
                8,
                &mut count,
                r.as_mut_ptr(),
            )
            .w("cudnn algorithm")?;
            r[..count.max(0) as usize]
                .iter()
                .find(|p| p.status == ok)
                .map(|p| Algo::Fwd(p.algo))
                .ok_or_else(none)
        }
        Pass::BackwardData => {
            let mut r: [sys::cudnnConvolutionBwdDataAlgoPerf_t; 8] = std::mem::zeroed();
            dnn::get_convolution_backward_data_algorithm(
                h,
                w.0,
                y.0,
                c.0,
                x.0,
                8,
                &mut count,
                r.as_mut_ptr(),
            )
            .w("cudnn algorithm")?;
            r[..count.max(0) as usize]
                .iter()
                .find(|p| p.status == ok)
                .map(|p| Algo::Data(p.algo))
                .ok_or_else(none)
        }
        Pass::BackwardFilter => {
            let mut r: [sys::cudnnConvolutionBwdFilterAlgoPerf_t; 8] = std::mem::zeroed();
            dnn::get_convolution_backward_filter_algorithm(
                h,
                x.0,
                y.0,
                c.0,
                w.0,
                8,
                &mut count,
                r.as_mut_ptr(),
            )
            .w("cudnn algorithm")?;
            r[..count.max(0) as usize]
                .iter()
                .find(|p| p.status == ok)
                .map(|p| Algo::Filter(p.algo))
                .ok_or_else(none)
        }
    }
}
