//! # mlfw-cuda
//!
//! The CUDA backend of mlfw: [`device`] opens a GPU and registers it with `mlfw-core`, after
//! which `tensor.to(&Device::Cuda(0))` and every op run there. Nothing CUDA is needed at build
//! time: the driver, NVRTC, cuBLAS and (optionally) cuDNN are opened at run time, and their
//! absence is an [`mlfw_core::Error`], never a panic.
//!
//! - Kernels are CUDA C sources ([`kernels`]) compiled with NVRTC on first use, once per device.
//! - Matmul runs on cuBLAS ([`set_allow_tf32`] mirrors `torch.backends.cuda.matmul.allow_tf32`).
//! - Convolutions run on cuDNN when present, else on im2col + cuBLAS.
//! - Memory comes from the driver's stream-ordered pool (see [`alloc`]).
//! - Compiled plans ([`mlfw_core::graph::compile`]) run their fused groups as one generated
//!   NVRTC kernel each ([`fused`], [`fused_run`]) and replay as a CUDA graph (`graph.rs`).
//!   Neither has run on a GPU yet: they compile, their CPU-side logic is tested, and their
//!   GPU tests skip without a GPU.
//!
//! ```no_run
//! use mlfw_core::{DType, Tensor};
//! let dev = mlfw_cuda::device(0)?; // Err("CUDA is not available: ...") without a GPU
//! let x = Tensor::ones([2, 3], DType::F32, &dev)?;
//! # Ok::<(), mlfw_core::Error>(())
//! ```

pub mod alloc;
mod blas;
mod buffer;
pub mod compile;
mod context;
mod conv;
mod cudnn;
mod device;
mod error;
pub mod fused;
pub mod fused_run;
mod graph;
#[doc(hidden)]
pub mod host_build;
pub mod kernels;
mod lay;
mod ops;
mod staging;
mod storage;

pub use blas::{allow_tf32, set_allow_tf32};
pub use buffer::CudaStorage;
pub use conv::set_use_cudnn;
pub use cudnn::{cudnn_allow_tf32, set_cudnn_allow_tf32};
pub use device::{device, device_info, is_available, parse_device, probe};
