//! Device memory.
//!
//! Buffers come from the driver's stream-ordered allocator (`cuMemAllocAsync` on the device's
//! default memory pool, through cudarc's `CudaStream::alloc`), and are freed with
//! `cuMemFreeAsync` on the same stream when the last tensor using them is dropped.
//!
//! By default a pool hands memory back to the driver at every synchronisation, so a training
//! step would allocate from the driver again each time. Opening a device (the `context` module) sets the pool's
//! release threshold to "never" (`CU_MEMPOOL_ATTR_RELEASE_THRESHOLD = u64::MAX`): freed memory
//! stays in the pool and a steady training step (same shapes each step) is served entirely
//! from it, as with PyTorch's caching allocator. Memory held by the pool is still reused
//! across shapes; [`trim`] gives unused memory back to the driver.

use crate::context::CudaDevice;
use crate::error::Wrap;
use cudarc::driver::{result, sys, CudaSlice};
use mlfw_core::{Error, Result};

/// Returns memory the pool holds but no tensor uses to the driver (keeping `keep_bytes`).
/// A device that has not been opened holds no memory: nothing to do.
///
/// # Errors
/// The driver failing to trim the pool.
pub fn trim(ordinal: usize, keep_bytes: usize) -> Result<()> {
    let Some(d) = CudaDevice::opened(ordinal)? else {
        return Ok(());
    };
    if !d.ctx.has_async_alloc() {
        return Ok(());
    }
    d.synchronize()?;
    // SAFETY: as in configure_pool.
    unsafe {
        let pool =
            result::device::get_default_mem_pool(d.ctx.cu_device()).w("getting the memory pool")?;
        result::mem_pool::trim_to(pool, keep_bytes).w("trimming the memory pool")
    }
}

/// An uninitialised buffer of at least `bytes` bytes (rounded up to 8, at least 8, so that
/// 32-bit atomics on 1- and 2-byte elements stay inside it).
pub(crate) fn alloc_bytes(dev: &CudaDevice, bytes: usize) -> Result<CudaSlice<u8>> {
    let padded = bytes.div_ceil(8).max(1) * 8;
    // SAFETY: the contents are written by a kernel or copy before they are read.
    match unsafe { dev.stream.alloc::<u8>(padded) } {
        Ok(s) => Ok(s),
        Err(e) if e.0 == sys::cudaError_enum::CUDA_ERROR_OUT_OF_MEMORY => {
            let (free, total) = dev.ctx.mem_get_info().unwrap_or((0, 0));
            Err(Error::msg(format!(
                "CUDA out of memory on cuda:{}: tried to allocate {bytes} bytes ({:.2} MiB); {:.2} MiB free of {:.2} MiB",
                dev.ordinal,
                bytes as f64 / 1048576.0,
                free as f64 / 1048576.0,
                total as f64 / 1048576.0
            )))
        }
        Err(e) => Err(e).w(&format!("allocating {bytes} bytes")),
    }
}

/// A zero-filled buffer of at least `bytes` bytes.
pub(crate) fn alloc_zeroed(dev: &CudaDevice, bytes: usize) -> Result<CudaSlice<u8>> {
    let mut s = alloc_bytes(dev, bytes)?;
    dev.stream.memset_zeros(&mut s).w("zeroing a buffer")?;
    Ok(s)
}
