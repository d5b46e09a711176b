//! The NCCL backend (GPUs, one process per GPU) through cudarc's `nccl` module; libnccl is
//! opened at run time like the other CUDA libraries. Rank 0's unique id reaches the other
//! ranks through a rendezvous file (`MLFW_NCCL_ID_FILE` on a shared filesystem, written
//! atomically by rank 0). Buffers are copied to the GPU, all-reduced by NCCL and copied back.
//!
//! Not yet run on a GPU: the development machines have none (see the README).

use crate::group::ProcessGroup;
use cudarc::driver::{CudaContext, CudaStream};
use cudarc::nccl::{Comm, Id, ReduceOp};
use mlfw_core::{Error, Result};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// An NCCL communicator as a [`ProcessGroup`].
pub struct NcclGroup {
    comm: Mutex<Comm>,
    stream: Arc<CudaStream>,
    rank: usize,
    world: usize,
}

// SAFETY: the communicator is only used under the mutex, one collective at a time.
unsafe impl Send for NcclGroup {}
unsafe impl Sync for NcclGroup {}

fn nccl_err(what: &str, e: impl std::fmt::Debug) -> Error {
    Error::msg(format!("NCCL {what}: {e:?}"))
}

impl NcclGroup {
    /// Joins rank `rank` of `world` on GPU `ordinal`. With `world > 1`, rank 0 writes its
    /// unique id to `id_file` and the others wait for it (up to `timeout`).
    ///
    /// # Errors
    /// Libnccl or the driver missing; the id file not appearing in time; NCCL failing.
    pub fn new(
        ordinal: usize,
        rank: usize,
        world: usize,
        id_file: &Path,
        timeout: Duration,
    ) -> Result<Self> {
        // SAFETY: only tries to dlopen candidate library names.
        let present = catch_unwind(|| unsafe { cudarc::nccl::sys::is_culib_present() });
        if !present.unwrap_or(false) {
            return Err(Error::msg(
                "NCCL is not available: libnccl.so not found (install NCCL or add its folder to LD_LIBRARY_PATH)",
            ));
        }
        if rank >= world {
            return Err(Error::msg(format!(
                "NCCL: rank {rank} is not below the world size {world}"
            )));
        }
        catch_unwind(AssertUnwindSafe(|| {
            let ctx = CudaContext::new(ordinal).map_err(|e| nccl_err("opening the GPU", e))?;
            let stream = ctx.default_stream();
            let id = if rank == 0 {
                let id = Id::new().map_err(|e| nccl_err("creating the unique id", e))?;
                if world > 1 {
                    let bytes: Vec<u8> = id.internal().iter().map(|&c| c as u8).collect();
                    mlfw_core::safetensors::write_atomic(id_file, &bytes)?;
                }
                id
            } else {
                Id::uninit(wait_for_id(id_file, timeout)?)
            };
            let comm = Comm::from_rank(stream.clone(), rank, world, id)
                .map_err(|e| nccl_err("joining the communicator", e))?;
            Ok(NcclGroup {
                comm: Mutex::new(comm),
                stream,
                rank,
                world,
            })
        }))
        .map_err(|_| Error::msg("NCCL panicked (a symbol missing in libnccl?)"))?
    }

    fn with_comm<T>(&self, f: impl FnOnce(&Comm) -> Result<T>) -> Result<T> {
        let comm = self
            .comm
            .lock()
            .map_err(|_| Error::msg("NCCL: internal lock poisoned"))?;
        f(&comm)
    }
}

impl NcclGroup {
    /// Sum over ranks: copy to the GPU, all-reduce in place, copy back.
    fn sum<T: cudarc::driver::DeviceRepr + cudarc::nccl::NcclType>(
        &self,
        buf: Vec<T>,
    ) -> Result<Vec<T>> {
        self.with_comm(|c| {
            let mut d = self
                .stream
                .clone_htod(&buf)
                .map_err(|e| nccl_err("copy", e))?;
            c.all_reduce_in_place(&mut d, &ReduceOp::Sum)
                .map_err(|e| nccl_err("all_reduce", e))?;
            self.stream.clone_dtoh(&d).map_err(|e| nccl_err("copy", e))
        })
    }
}

/// Reads rank 0's 128-byte unique id from `path`, polling until it appears.
fn wait_for_id(path: &Path, timeout: Duration) -> Result<[std::ffi::c_char; 128]> {
    let start = Instant::now();
    loop {
        if let Ok(b) = std::fs::read(path) {
            if b.len() == 128 {
                let mut id = [0 as std::ffi::c_char; 128];
                for (d, s) in id.iter_mut().zip(b) {
                    *d = s as std::ffi::c_char;
                }
                return Ok(id);
            }
        }
        if start.elapsed() > timeout {
            return Err(Error::msg(format!(
                "NCCL: rank 0's id did not appear in {} within {} s",
                path.display(),
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl ProcessGroup for NcclGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.world
    }
    fn backend(&self) -> &'static str {
        "nccl"
    }
    fn all_reduce_sum(&self, buf: Vec<f32>) -> Result<Vec<f32>> {
        self.sum(buf)
    }
    fn all_reduce_sum_f64(&self, buf: Vec<f64>) -> Result<Vec<f64>> {
        self.sum(buf)
    }
    fn broadcast(&self, buf: Vec<f32>, root: usize) -> Result<Vec<f32>> {
        self.with_comm(|c| {
            let mut d = self
                .stream
                .clone_htod(&buf)
                .map_err(|e| nccl_err("copy", e))?;
            c.broadcast_in_place(&mut d, root as i32)
                .map_err(|e| nccl_err("broadcast", e))?;
            self.stream.clone_dtoh(&d).map_err(|e| nccl_err("copy", e))
        })
    }
    fn barrier(&self) -> Result<()> {
        self.all_reduce_sum(vec![0.0]).map(|_| ())
    }
    fn all_gather_f64(&self, v: f64) -> Result<Vec<f64>> {
        let mut buf = vec![0.0; self.world];
        buf[self.rank] = v;
        self.all_reduce_sum_f64(buf)
    }
}
