//! Opening a GPU: probing for the CUDA libraries, the table of opened devices, and
//! registering the backend with `mlfw-core`. The device itself is [`crate::context`].

use crate::context::{lock, CudaDevice, OPENED};
use crate::error::Wrap;
use mlfw_core::{Device, Error, Result};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

fn not_available(lib: &str, what: &str) -> Error {
    Error::msg(format!(
        "CUDA is not available: lib{lib}.so not found ({what}); install it or add its folder to LD_LIBRARY_PATH"
    ))
}

/// Checks that the CUDA libraries mlfw needs can be opened (driver, NVRTC, cuBLAS);
/// cuDNN is optional. Loads nothing else and never panics.
///
/// # Errors
/// The driver library, NVRTC or cuBLAS cannot be opened (the message names which).
pub fn probe() -> Result<()> {
    // SAFETY: these only try to dlopen candidate library names.
    unsafe {
        if !cudarc::driver::sys::is_culib_present() {
            return Err(not_available("cuda", "the NVIDIA driver library"));
        }
        if !cudarc::nvrtc::sys::is_culib_present() {
            return Err(not_available(
                "nvrtc",
                "the CUDA runtime compiler, used for kernels",
            ));
        }
        if !cudarc::cublas::sys::is_culib_present() {
            return Err(not_available("cublas", "cuBLAS, used for matmul"));
        }
    }
    Ok(())
}

/// True when [`device`]`(0)` would succeed in opening a GPU.
pub fn is_available() -> bool {
    probe().is_ok() && open(0).is_ok()
}

/// The opened device for `ordinal` (opening it on first use).
pub(crate) fn open(ordinal: usize) -> Result<Arc<CudaDevice>> {
    if let Some(d) = CudaDevice::opened(ordinal)? {
        return Ok(d);
    }
    probe()?;
    let dev = catch_unwind(AssertUnwindSafe(|| CudaDevice::create(ordinal))).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Error::msg(format!(
            "CUDA is not available: initialisation failed: {msg}"
        ))
    })??;
    let dev = Arc::new(dev);
    let mut all = lock(&OPENED)?;
    if let Some(d) = all.iter().find(|d| d.ordinal == ordinal) {
        return Ok(d.clone());
    }
    all.push(dev.clone());
    Ok(dev)
}

/// Opens CUDA device `ordinal`, registers its backend with `mlfw-core`, and returns
/// `Device::Cuda(ordinal)`. Never panics: failures are one-line errors.
///
/// # Errors
/// CUDA, the GPU `ordinal` or a needed library (driver, NVRTC, cuBLAS) missing; registering the
/// backend failing.
pub fn device(ordinal: usize) -> Result<Device> {
    let dev = open(ordinal)?;
    mlfw_core::register_backend(Arc::new(crate::storage::CudaBackend { dev }))?;
    Ok(Device::Cuda(ordinal))
}

/// A one-line description of an opened device: name, compute capability, memory, cuDNN.
///
/// # Errors
/// As [`device`] (opening `ordinal`); the driver failing to report memory info.
pub fn device_info(ordinal: usize) -> Result<String> {
    let d = open(ordinal)?;
    let (free, total) = d.ctx.mem_get_info().w("reading memory info")?;
    Ok(format!(
        "cuda:{} {} (sm_{}{}), {:.1} GiB total, {:.1} GiB free, cuDNN {}",
        d.ordinal,
        d.name,
        d.cc.0,
        d.cc.1,
        total as f64 / (1u64 << 30) as f64,
        free as f64 / (1u64 << 30) as f64,
        if d.has_cudnn {
            "present"
        } else {
            "absent (im2col fallback)"
        }
    ))
}

/// Parses `cpu`, `cuda` or `cuda:N` and, for a CUDA device, opens it (registering the
/// backend), so the returned device is ready for `Tensor::to_device`.
///
/// # Errors
/// `s` not `cpu`, `cuda` or `cuda:N`; opening the CUDA device failing (as [`device`]).
pub fn parse_device(s: &str) -> Result<Device> {
    match Device::parse(s)? {
        Device::Cuda(i) => device(i),
        d => Ok(d),
    }
}
