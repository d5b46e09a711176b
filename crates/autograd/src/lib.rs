//! # mlfw-autograd
//!
//! Reverse-mode automatic differentiation, define-by-run as in PyTorch. mlfw-core records
//! which op made each tensor (as plain data, [`mlfw_core::Op`]) whenever an input requires
//! grad; this ring owns what those records mean: the derivative rules ([`rules`]), the
//! backward engine ([`backward`], the [`Backward`] trait), [`no_grad`] scopes, user-defined
//! differentiable ops ([`Function`]) and numerical gradient checking ([`gradcheck`]).
//!
//! ```
//! use mlfw_autograd::Backward;
//! use mlfw_core::{Device, Tensor};
//! let x = Tensor::from_vec(vec![1f32, 2., 3.], [3], &Device::Cpu)?.requires_grad_(true)?;
//! let y = x.square()?.sum_all()?; // y = Σ x²
//! y.backward()?;
//! assert_eq!(x.grad().unwrap().to_vec::<f32>()?, vec![2., 4., 6.]);
//! # Ok::<(), mlfw_core::Error>(())
//! ```

mod engine;
mod function;
mod grad_mode;
mod gradcheck;
mod gradgradcheck;
pub mod hooks;
pub mod rules;

pub use engine::{backward, backward_create_graph, grad, grad_with, Backward};
pub use function::{apply, custom_op, Function};
pub use grad_mode::{enable_grad, no_grad, GradModeGuard};
pub use gradcheck::{gradcheck, GradcheckOptions, GradcheckReport, InputReport};
pub use gradgradcheck::gradgradcheck;
