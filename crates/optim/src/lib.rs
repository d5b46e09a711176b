//! # mlfw-optim
//!
//! Optimizers (SGD, Adam, AdamW, RMSprop, Adagrad, NAdam) with PyTorch's exact update formulas,
//! each step one fused in-place kernel per parameter on the parameter's device (NAdam: tensor
//! expressions, the way to add an optimizer without touching core or CUDA); parameter
//! groups; resumable state dicts; gradient clipping; and learning-rate schedules.
//!
//! ```
//! use mlfw_autograd::Backward;
//! use mlfw_core::{DType, Device, Tensor};
//! use mlfw_nn::{functional as F, Linear, Module};
//! use mlfw_optim::{Optimizer, Sgd, SgdConfig};
//! let model = Linear::new(3, 2, true, &Device::Cpu)?;
//! let mut opt = Sgd::new(model.parameters(), SgdConfig::new(0.1).momentum(0.9))?;
//! let x = Tensor::ones([4, 3], DType::F32, &Device::Cpu)?;
//! let y = Tensor::from_vec(vec![0i64, 1, 0, 1], [4], &Device::Cpu)?;
//! opt.zero_grad();
//! F::cross_entropy(&model.forward(&x)?, &y)?.backward()?;
//! opt.step()?;
//! # Ok::<(), mlfw_core::Error>(())
//! ```

#![warn(missing_docs)]

mod adagrad;
mod adam;
mod clip;
mod compiled;
mod grad_scaler;
mod nadam;
mod optimizer;
mod rmsprop;
pub mod sched;
mod sgd;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamW};
pub use clip::{clip_grad_norm, clip_grad_norm_with, clip_grad_value};
pub use compiled::{CompiledStep, SplitMode, StepOutput};
pub use grad_scaler::{GradScaler, GradScalerState};
pub use nadam::{NAdam, NAdamConfig};
pub use optimizer::{Hyper, Optim, Optimizer, OptimizerState, ParamGroup};
pub use rmsprop::{RmsProp, RmsPropConfig};
pub use sgd::{Sgd, SgdConfig};
