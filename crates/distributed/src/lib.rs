//! # mlfw-distributed
//!
//! Data-parallel training over several processes, on existing engines rather than a
//! transport of our own: a [`ProcessGroup`] (all-reduce, broadcast, barrier, all-gather) with
//! an MPI backend (`MpiGroup`, cargo feature `mpi`, Open MPI or MPICH through rsmpi: CPUs on
//! one or many hosts) and [`DistributedDataParallel`] with PyTorch's DDP semantics:
//! parameters broadcast from rank 0, gradients averaged in ~25 MB buckets in reverse
//! parameter order, each bucket reduced as soon as backward has produced all of its
//! gradients, overlapping communication with the rest of backward. Each rank reads its own
//! shard of the data (`mlfw_data::DataLoader::shard`).
//!
//! The inner rings know nothing of this: gradients are just tensors, reduced through a
//! post-accumulate-grad hook of the autograd engine.
//!
//! ```
//! use mlfw_distributed::{init_from_env, DistributedDataParallel};
//! use mlfw_core::{DType, Device, Tensor};
//! let pg = init_from_env()?; // a single process unless launched by mpirun (feature `mpi`)
//! let w = Tensor::ones([3], DType::F32, &Device::Cpu)?.requires_grad_(true)?;
//! let ddp = DistributedDataParallel::new(vec![w.clone()], pg, 25.0)?;
//! mlfw_autograd::backward(&w.square()?.sum_all()?, None, false)?;
//! ddp.finish()?; // gradients averaged over the ranks
//! assert_eq!(w.grad().unwrap().to_vec::<f32>()?, vec![2.0, 2.0, 2.0]);
//! # Ok::<(), mlfw_core::Error>(())
//! ```

mod ddp;
mod env;
mod group;
#[cfg(feature = "mpi")]
mod mpi_group;
#[cfg(feature = "nccl")]
mod nccl_group;

pub use ddp::DistributedDataParallel;
pub use env::{env_rank, init_for, init_from_env, launched_by_mpi};
pub use group::{ProcessGroup, SingleProcess};
#[cfg(feature = "mpi")]
pub use mpi_group::MpiGroup;
#[cfg(feature = "nccl")]
pub use nccl_group::NcclGroup;
