//! # mlfw-core
//!
//! The centre ring of mlfw: an n-dimensional [`Tensor`] with strided views over shared
//! storage, CPU kernels, a backend trait other devices implement, seedable random
//! numbers, and safetensors I/O. When an input requires grad, ops record themselves as
//! plain data ([`Op`]); `mlfw-autograd` gives those records their derivatives.
//!
//! ```
//! use mlfw_core::{Device, Tensor};
//! let a = Tensor::from_vec(vec![1f32, 2., 3., 4.], [2, 2], &Device::Cpu)?;
//! let b = a.matmul(&a.t()?)?;
//! assert_eq!(b.to_vec::<f32>()?, vec![5., 11., 11., 25.]);
//! # Ok::<(), mlfw_core::Error>(())
//! ```

pub mod autocast;
pub mod backend;
pub mod cpu;
mod device;
mod dtype;
mod error;
pub mod graph;
mod home;
mod layout;
pub mod op;
pub mod parallel;
pub mod params;
pub mod random;
pub mod safetensors;
mod shape;
mod strided;
mod tensor;

pub use backend::{Backend, BackendStorage, DeviceGraph, Staging, Storage};
pub use cpu::CpuStorage;
pub use device::{register_backend, Device};
pub use dtype::{DType, FloatDType, WithDType};
pub use error::{Error, Result};
pub use home::mlfw_home;
pub use layout::Layout;
pub use op::{CustomOp, Op};
pub use params::{
    BinaryOp, CmpOp, Conv2dParams, MatmulDims, OptimUpdate, Pool2dParams, ReduceOp, UnaryOp,
};
pub use random::{manual_seed, Generator};
pub use shape::{resolve_dim, Shape};
pub use strided::{Blocks, StridedIndex};
pub use tensor::{is_grad_enabled, set_grad_enabled, OpState, Tensor, TensorId};
