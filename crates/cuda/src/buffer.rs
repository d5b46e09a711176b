//! [`CudaStorage`]: a device buffer of one dtype — allocation, addresses, host copies. Below
//! the op launchers ([`crate::ops`], cuBLAS, convolution), which take and make these; the
//! backend traits that route ops to them are in `storage.rs`.

use crate::context::CudaDevice;
use crate::error::Wrap;
use cudarc::driver::{CudaSlice, DevicePtr};
use mlfw_core::backend::BackendStorage;
use mlfw_core::{CpuStorage, DType, Error, Result};
use std::sync::Arc;

/// A buffer on a CUDA device: raw bytes plus its dtype and element count. Kernels take its
/// address (and element offsets) directly.
pub struct CudaStorage {
    pub(crate) buf: CudaSlice<u8>,
    pub(crate) dtype: DType,
    pub(crate) len: usize,
    pub(crate) dev: Arc<CudaDevice>,
}

impl std::fmt::Debug for CudaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CudaStorage({:?}, {} x {})",
            self.dev, self.len, self.dtype
        )
    }
}

/// The bytes of a host buffer.
pub(crate) fn host_bytes(c: &CpuStorage) -> &[u8] {
    fn b<T>(v: &[T]) -> &[u8] {
        // SAFETY: every element type here (u8, bool, i64, f16, bf16, f32, f64) is plain data
        // without padding; the slice covers exactly the vec's initialised elements.
        unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
    }
    mlfw_core::with_cpu_vec!(c, v => b(v))
}

impl Drop for CudaStorage {
    /// A buffer uploaded on a copy stream (the `staging` module) is freed on that stream: make it
    /// wait for the work queued on the device's stream first, which may still read the buffer.
    fn drop(&mut self) {
        let own = self.buf.stream();
        if !Arc::ptr_eq(own, &self.dev.stream) {
            match self.dev.stream.record_event(None) {
                Ok(e) if own.wait(&e).is_ok() => {}
                _ => {
                    let _ = self.dev.stream.synchronize();
                }
            }
        }
    }
}

impl CudaStorage {
    /// An uninitialised buffer of `len` elements.
    pub(crate) fn alloc(dev: &Arc<CudaDevice>, dtype: DType, len: usize) -> Result<Self> {
        Ok(CudaStorage {
            buf: crate::alloc::alloc_bytes(dev, len * dtype.size_in_bytes())?,
            dtype,
            len,
            dev: dev.clone(),
        })
    }

    /// A zero-filled buffer of `len` elements.
    pub(crate) fn zeros(dev: &Arc<CudaDevice>, dtype: DType, len: usize) -> Result<Self> {
        Ok(CudaStorage {
            buf: crate::alloc::alloc_zeroed(dev, len * dtype.size_in_bytes())?,
            dtype,
            len,
            dev: dev.clone(),
        })
    }

    /// Device address of element 0.
    pub(crate) fn ptr(&self) -> u64 {
        let (p, _sync) = self.buf.device_ptr(&self.dev.stream);
        p
    }

    /// Device address of element `i`.
    pub(crate) fn ptr_at(&self, i: usize) -> u64 {
        self.ptr() + (i * self.dtype.size_in_bytes()) as u64
    }

    /// Copies host data to a new device buffer.
    pub(crate) fn from_cpu(dev: &Arc<CudaDevice>, data: &CpuStorage) -> Result<Self> {
        let mut s = CudaStorage::alloc(dev, data.dtype(), data.len())?;
        let bytes = host_bytes(data);
        if !bytes.is_empty() {
            let mut view = s.buf.slice_mut(0..bytes.len());
            dev.stream
                .memcpy_htod(bytes, &mut view)
                .w("copy to device")?;
        }
        Ok(s)
    }

    /// The buffer's bytes, copied to the host (waits for queued work).
    pub(crate) fn read_bytes(&self) -> Result<Vec<u8>> {
        let n = self.len * self.dtype.size_in_bytes();
        let mut host = vec![0u8; n];
        if n > 0 {
            self.dev
                .stream
                .memcpy_dtoh(&self.buf.slice(0..n), &mut host[..])
                .w("copy to host")?;
            self.dev.synchronize()?;
        }
        Ok(host)
    }

    /// Downcasts another operand, erroring when it lives on another device.
    pub(crate) fn other<'a>(
        &self,
        s: &'a dyn BackendStorage,
        op: &'static str,
    ) -> Result<&'a CudaStorage> {
        match s.as_any().downcast_ref::<CudaStorage>() {
            Some(c) if c.dev.ordinal == self.dev.ordinal => Ok(c),
            _ => Err(Error::DeviceMismatch {
                op,
                lhs: self.dev.device(),
                rhs: s.device(),
            }),
        }
    }
}
