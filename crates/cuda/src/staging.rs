//! [`PinnedStaging`]: the CUDA backend's [`Staging`] — host→device uploads (a data loader's
//! batches) through a reused page-locked host buffer, copied asynchronously on a stream of
//! its own, with an event that the device's stream waits for. Above the buffer type, below
//! nothing else: it only allocates buffers and copies into them.
//!
//! Ordering, with event tracking off (see `context.rs`): the destination is allocated from the
//! device's memory pool on the copy stream and the copy queued there; an event recorded after
//! the copy is waited for by the device's stream, so every op queued later reads the uploaded
//! data. Before the host buffer is written again the previous copy out of it is waited for (on
//! the host). Such a buffer is freed on the copy stream, so [`CudaStorage`]'s `Drop` first makes
//! that stream wait for the device's stream (ops still queued may read the buffer).
//!
//! Not yet run on a GPU: this machine has none; `tests/staging.rs` checks the uploaded tensor
//! equals `to_device`'s and skips without a GPU.

use std::sync::Arc;

use cudarc::driver::{result, sys, CudaEvent, CudaStream, DevicePtr, PinnedHostSlice};
use mlfw_core::backend::{Staging, Storage};
use mlfw_core::{CpuStorage, Device, Result};

use crate::buffer::{host_bytes, CudaStorage};
use crate::context::CudaDevice;
use crate::error::Wrap;

/// Reused page-locked memory and a copy stream for one thread's uploads to one device.
pub(crate) struct PinnedStaging {
    dev: Arc<CudaDevice>,
    copy: Arc<CudaStream>,
    /// Grown (to a power of two) when an upload does not fit; reused otherwise.
    host: Option<PinnedHostSlice<u8>>,
    /// The last copy out of `host`: it must finish before `host` is written again.
    last: Option<CudaEvent>,
}

impl PinnedStaging {
    /// A staging area on `dev` with its own copy stream (no host memory until the first upload).
    ///
    /// Errors: the stream cannot be created.
    pub(crate) fn new(dev: &Arc<CudaDevice>) -> Result<Self> {
        let copy = dev.ctx.new_stream().w("creating the upload stream")?;
        Ok(PinnedStaging {
            dev: Arc::clone(dev),
            copy,
            host: None,
            last: None,
        })
    }
}

impl Drop for PinnedStaging {
    /// The last copy may still read the page-locked buffer: wait for it before it is freed.
    fn drop(&mut self) {
        if let Some(e) = self.last.take() {
            let _ = e.synchronize();
        }
    }
}

impl Staging for PinnedStaging {
    fn device(&self) -> Device {
        self.dev.device()
    }

    fn upload(&mut self, data: CpuStorage) -> Result<Storage> {
        let bytes = host_bytes(&data);
        let n = bytes.len();
        if n == 0 {
            return Ok(Box::new(CudaStorage::from_cpu(&self.dev, &data)?));
        }
        if let Some(e) = self.last.take() {
            e.synchronize().w("waiting for the previous upload")?;
        }
        if self.host.as_ref().is_none_or(|h| h.len() < n) {
            self.host = None;
            // SAFETY: the bytes are written below before any copy reads them.
            let h = unsafe { self.dev.ctx.alloc_pinned::<u8>(n.next_power_of_two()) }
                .w("allocating page-locked host memory")?;
            self.host = Some(h);
        }
        let Some(host) = self.host.as_mut() else {
            return Err(mlfw_core::Error::msg("page-locked staging buffer missing"));
        };
        let staged = &mut host.as_mut_slice().w("reading the staging buffer")?[..n];
        staged.copy_from_slice(bytes);
        // Padded as `alloc::alloc_bytes` pads (kernels may touch whole 8-byte words).
        let padded = n.div_ceil(8) * 8;
        // SAFETY: the first `n` bytes are written by the copy below before any op reads them.
        let buf = unsafe { self.copy.alloc::<u8>(padded) }.w(&format!(
            "allocating {n} bytes on cuda:{}",
            self.dev.ordinal
        ))?;
        {
            let (dst, _sync) = buf.device_ptr(&self.copy);
            // SAFETY: `dst` holds at least `n` bytes; `staged` is page-locked and is not
            // written again before `last` (recorded after this copy) has completed.
            unsafe { result::memcpy_htod_async(dst, &*staged, self.copy.cu_stream()) }
                .w("copy to device")?;
        }
        let done = self
            .copy
            .record_event(Some(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING))
            .w("recording the upload's event")?;
        self.dev
            .stream
            .wait(&done)
            .w("ordering the upload before later work")?;
        self.last = Some(done);
        Ok(Box::new(CudaStorage {
            buf,
            dtype: data.dtype(),
            len: data.len(),
            dev: Arc::clone(&self.dev),
        }))
    }
}
