//! # mlfw-nn
//!
//! Neural-network building blocks modelled on `torch.nn`: the [`Module`] trait with named
//! parameters and buffers, layers with PyTorch's defaults and key names, losses, weight
//! initialisation, state dicts as safetensors, and a PyTorch parity runner ([`parity`]).
//!
//! ```
//! use mlfw_core::{DType, Device, Tensor};
//! use mlfw_nn::{functional as F, Linear, Module, Relu, Sequential};
//! let model = Sequential::new().append(Linear::new(4, 8, true, &Device::Cpu)?).append(Relu).append(Linear::new(8, 3, true, &Device::Cpu)?);
//! let x = Tensor::ones([2, 4], DType::F32, &Device::Cpu)?;
//! let target = Tensor::from_vec(vec![0i64, 2], [2], &Device::Cpu)?;
//! let loss = F::cross_entropy(&model.forward(&x)?, &target)?;
//! assert_eq!(loss.rank(), 0);
//! assert_eq!(model.state_dict()[0].0, "0.weight");
//! # Ok::<(), mlfw_core::Error>(())
//! ```

#![warn(missing_docs)]

pub mod attention;
mod composed;
pub mod functional;
mod fused;
pub mod init;
mod layers;
pub mod lm;
mod loss;
mod loss_modules;
mod module;
pub mod parity;
pub mod recurrent;
pub mod seq_parity;
pub mod state_dict;
pub mod trace;

pub use layers::*;
pub use loss::{CrossEntropyOptions, Reduction};
pub use loss_modules::{
    BceLoss, BceWithLogitsLoss, CrossEntropyLoss, L1Loss, MseLoss, NllLoss, SmoothL1Loss,
};
pub use module::{join, param, Module, TensorKind};
pub use recurrent::{RnnConfig, RnnMode};
pub use state_dict::LoadReport;
pub use trace::{trace_module, trace_train_step};

#[doc(hidden)]
pub use mlfw_core::Result;
