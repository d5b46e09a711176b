//! The collectives data-parallel training needs, and the one-process group.

use mlfw_core::Result;

/// A group of `world_size()` processes, this one being `rank()`. Every rank must call the
/// same collectives in the same order (as with MPI and NCCL). Buffers are passed by value
/// and handed back, so a backend may move them to a communication thread.
pub trait ProcessGroup: Send + Sync {
    /// This process's rank, `0..world_size()`.
    fn rank(&self) -> usize;
    /// Number of processes.
    fn world_size(&self) -> usize;
    /// The backend's name (`single`, `mpi`).
    fn backend(&self) -> &'static str;
    /// Elementwise sum of `buf` over all ranks; every rank gets the sum.
    fn all_reduce_sum(&self, buf: Vec<f32>) -> Result<Vec<f32>>;
    /// The same in f64 (metrics, exact counters).
    fn all_reduce_sum_f64(&self, buf: Vec<f64>) -> Result<Vec<f64>>;
    /// `root`'s `buf` on every rank (the others' input is overwritten; lengths must agree).
    fn broadcast(&self, buf: Vec<f32>, root: usize) -> Result<Vec<f32>>;
    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<()>;
    /// `v` of every rank, in rank order.
    fn all_gather_f64(&self, v: f64) -> Result<Vec<f64>>;
}

/// A group of one: every collective is the identity. What training without `mpirun` uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct SingleProcess;

impl ProcessGroup for SingleProcess {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn backend(&self) -> &'static str {
        "single"
    }
    fn all_reduce_sum(&self, buf: Vec<f32>) -> Result<Vec<f32>> {
        Ok(buf)
    }
    fn all_reduce_sum_f64(&self, buf: Vec<f64>) -> Result<Vec<f64>> {
        Ok(buf)
    }
    fn broadcast(&self, buf: Vec<f32>, _root: usize) -> Result<Vec<f32>> {
        Ok(buf)
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
    fn all_gather_f64(&self, v: f64) -> Result<Vec<f64>> {
        Ok(vec![v])
    }
}
