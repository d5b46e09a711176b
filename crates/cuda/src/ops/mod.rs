//! Host-side launchers: each checks dtypes and shapes, prepares layouts, and launches the
//! NVRTC kernels of [`crate::kernels`]. Outputs are fresh contiguous buffers.

pub(crate) mod elementwise;
pub(crate) mod index;
pub(crate) mod optim;
pub(crate) mod pool;
pub(crate) mod random;
pub(crate) mod reduce;

use crate::buffer::CudaStorage;
use cudarc::driver::LaunchConfig;
use mlfw_core::{Layout, Result};

/// Threads per block for elementwise kernels (and the `BS` of the reduction kernels).
pub(crate) const THREADS: u32 = 256;

/// Grid for a grid-stride loop over `n` elements.
pub(crate) fn cfg_1d(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(THREADS as usize).clamp(1, 1 << 20) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// One block per row (rows beyond the grid are looped over inside the kernel).
pub(crate) fn cfg_rows(rows: usize) -> LaunchConfig {
    LaunchConfig {
        grid_dim: (rows.clamp(1, 1 << 20) as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Launches `$func` on the device's stream with the given kernel arguments (each a value
/// implementing `DeviceRepr`: integers, floats, `Lay`, device pointers as `u64`).
macro_rules! launch {
    ($dev:expr, $func:expr, $cfg:expr; $($arg:expr),* $(,)?) => {{
        use cudarc::driver::PushKernelArg;
        use $crate::error::Wrap;
        let func = $func;
        let mut builder = $dev.stream.launch_builder(&func);
        $(
            let a = $arg;
            builder.arg(&a);
        )*
        // SAFETY: the argument list matches the kernel's C signature (reviewed side by side
        // with the source in `kernels/`), and every pointer is a live buffer of this device
        // whose extent covers the indices the kernel touches.
        unsafe { builder.launch($cfg) }.map(|_| ()).w("kernel launch")
    }};
}
pub(crate) use launch;

/// A pointer to the view `l` of `s` laid out contiguously: `s` itself when it already is,
/// else a gathered copy (returned so that it lives until the kernel is queued).
pub(crate) fn contiguous(s: &CudaStorage, l: &Layout) -> Result<(u64, Option<CudaStorage>)> {
    match l.contiguous_range() {
        Some((start, _)) => Ok((s.ptr_at(start), None)),
        None => {
            let c = elementwise::copy_layout(s, l)?;
            Ok((c.ptr(), Some(c)))
        }
    }
}
