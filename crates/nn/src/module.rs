//! The [`Module`] trait: a forward pass plus a tree of named parameters, buffers and children.
//!
//! # Design
//! Tensors are shared handles: cloning one shares its storage and gradient slot. A module
//! owns its parameters as plain [`Tensor`] fields (leaves with `requires_grad = true`);
//! `named_parameters()` hands out clones of those same handles, so an optimizer that updates
//! them in place (`Tensor::optim_update`, `Tensor::assign`) updates the module too, and a
//! backward pass fills the gradients the module's own handles see. Buffers (BatchNorm's
//! running statistics) are updated in place during `forward(&self)` the same way.
//!
//! Operations that change *which* tensor a field holds, or the mode, take `&mut self`:
//! [`Module::to_device`] rebuilds every parameter and buffer on the new device (so move the
//! model before building its optimizer, as in PyTorch), and [`Module::train`] switches
//! training/evaluation mode.
//!
//! # Writing a model
//! A model is a struct with a field per layer. Implement `forward`, and list the fields with
//! [`crate::children!`] so names follow the fields (`conv1.weight`, `fc1.bias`, ...):
//! ```
//! use mlfw_core::{Device, Result, Tensor};
//! use mlfw_nn::{Linear, Module};
//! struct Mlp { fc1: Linear, fc2: Linear }
//! impl Module for Mlp {
//!     fn forward(&self, x: &Tensor) -> Result<Tensor> {
//!         self.fc2.forward(&self.fc1.forward(x)?.relu()?)
//!     }
//!     mlfw_nn::children!(fc1, fc2);
//! }
//! let m = Mlp { fc1: Linear::new(4, 8, true, &Device::Cpu)?, fc2: Linear::new(8, 2, true, &Device::Cpu)? };
//! assert_eq!(m.named_parameters()[0].0, "fc1.weight");
//! assert_eq!(m.num_parameters(), 4 * 8 + 8 + 8 * 2 + 2);
//! # Ok::<(), mlfw_core::Error>(())
//! ```

use mlfw_core::{Device, Result, Tensor};

/// Whether a module's tensor is a trainable parameter or a buffer (running statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorKind {
    /// A trainable leaf with `requires_grad = true`; optimizers update it.
    Parameter,
    /// State saved in the state dict but not trained (e.g. `running_mean`).
    Buffer,
}

/// A neural-network building block (PyTorch's `nn.Module`).
///
/// Layers implement `forward` plus `visit_own`/`visit_own_mut` (their own tensors) and, if
/// they have a mode, `set_own_training`/`own_training`. Containers and user models implement
/// `forward` plus `visit_children`/`visit_children_mut` (most easily with [`crate::children!`]).
/// Everything else is provided.
pub trait Module {
    /// Runs the module on `x`.
    fn forward(&self, x: &Tensor) -> Result<Tensor>;

    /// Calls `f(local_name, tensor, kind)` for each tensor this module owns directly.
    fn visit_own(&self, _f: &mut dyn FnMut(&str, &Tensor, TensorKind)) {}

    /// Calls `f(local_name, tensor, kind)` with mutable access, stopping at the first error.
    fn visit_own_mut(
        &mut self,
        _f: &mut dyn FnMut(&str, &mut Tensor, TensorKind) -> Result<()>,
    ) -> Result<()> {
        Ok(())
    }

    /// Calls `f(name, child)` for each direct child module.
    fn visit_children(&self, _f: &mut dyn FnMut(&str, &dyn Module)) {}

    /// Calls `f(name, child)` with mutable access, stopping at the first error.
    fn visit_children_mut(
        &mut self,
        _f: &mut dyn FnMut(&str, &mut dyn Module) -> Result<()>,
    ) -> Result<()> {
        Ok(())
    }

    /// Sets this module's own mode flag (layers whose behaviour depends on it).
    fn set_own_training(&mut self, _on: bool) {}

    /// This module's own mode flag, if it has one.
    fn own_training(&self) -> Option<bool> {
        None
    }

    /// Visits every tensor of the tree with its dotted name (`prefix` + path).
    fn visit_tensors(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor, TensorKind)) {
        self.visit_own(&mut |n, t, k| f(&join(prefix, n), t, k));
        self.visit_children(&mut |n, c| c.visit_tensors(&join(prefix, n), f));
    }

    /// Visits every tensor of the tree mutably with its dotted name.
    fn visit_tensors_mut(
        &mut self,
        prefix: &str,
        f: &mut dyn FnMut(&str, &mut Tensor, TensorKind) -> Result<()>,
    ) -> Result<()> {
        self.visit_own_mut(&mut |n, t, k| f(&join(prefix, n), t, k))?;
        self.visit_children_mut(&mut |n, c| c.visit_tensors_mut(&join(prefix, n), f))
    }

    /// Parameters with PyTorch's dotted names, in registration order.
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        self.visit_tensors("", &mut |n, t, k| {
            if k == TensorKind::Parameter {
                v.push((n.to_string(), t.clone()));
            }
        });
        v
    }

    /// Parameters (shared handles), in registration order.
    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// Buffers with dotted names (`bn1.running_mean`, `bn1.num_batches_tracked`, ...).
    fn named_buffers(&self) -> Vec<(String, Tensor)> {
        let mut v = Vec::new();
        self.visit_tensors("", &mut |n, t, k| {
            if k == TensorKind::Buffer {
                v.push((n.to_string(), t.clone()));
            }
        });
        v
    }

    /// Total number of parameter elements.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|t| t.elem_count()).sum()
    }

    /// Switches the whole tree to training (`true`) or evaluation (`false`) mode.
    fn train(&mut self, on: bool) {
        self.set_own_training(on);
        let _ = self.visit_children_mut(&mut |_, c| {
            c.train(on);
            Ok(())
        });
    }

    /// Shorthand for `train(false)`.
    fn eval(&mut self) {
        self.train(false)
    }

    /// The mode: this module's flag, else the first child's that has one, else `true`.
    fn is_training(&self) -> bool {
        fn find(m: &dyn Module) -> Option<bool> {
            if let Some(t) = m.own_training() {
                return Some(t);
            }
            let mut r = None;
            m.visit_children(&mut |_, c| {
                if r.is_none() {
                    r = find(c);
                }
            });
            r
        }
        let mut r = self.own_training();
        if r.is_none() {
            self.visit_children(&mut |_, c| {
                if r.is_none() {
                    r = find(c);
                }
            });
        }
        r.unwrap_or(true)
    }

    /// Moves every parameter and buffer to `device` (parameters stay leaves requiring grad).
    /// Build optimizers after moving: they hold the tensors that exist when they are made.
    fn to_device(&mut self, device: &Device) -> Result<()> {
        self.visit_tensors_mut("", &mut |_, t, k| {
            if t.device() != *device {
                let moved = t.to_device(device)?.detach();
                if k == TensorKind::Parameter {
                    moved.set_requires_grad(true)?;
                }
                *t = moved;
            }
            Ok(())
        })
    }

    /// Clears every parameter's gradient.
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }

    /// Every parameter and buffer with its PyTorch key (see [`crate::state_dict`]).
    fn state_dict(&self) -> Vec<(String, Tensor)> {
        crate::state_dict::state_dict(self)
    }

    /// Copies a state dict in place; `strict` also rejects missing and unexpected keys.
    fn load_state_dict(
        &self,
        sd: &std::collections::HashMap<String, Tensor>,
        strict: bool,
    ) -> Result<crate::LoadReport> {
        crate::state_dict::load_state_dict(self, sd, strict)
    }

    /// Saves the state dict as safetensors at `path` (atomic write).
    fn save(&self, path: &std::path::Path) -> Result<()> {
        crate::state_dict::save(self, path)
    }

    /// Loads a safetensors state dict from `path` (strict).
    fn load(&self, path: &std::path::Path) -> Result<crate::LoadReport> {
        crate::state_dict::load(self, path, true)
    }
}

/// `prefix.name`, or `name` when the prefix is empty.
pub fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Implements `visit_children` and `visit_children_mut` inside an `impl Module for` block,
/// naming each child after its field: `mlfw_nn::children!(conv1, conv2, fc1);`.
#[macro_export]
macro_rules! children {
    ($($field:ident),* $(,)?) => {
        fn visit_children(&self, f: &mut dyn FnMut(&str, &dyn $crate::Module)) {
            $( f(stringify!($field), &self.$field); )*
        }
        fn visit_children_mut(
            &mut self,
            f: &mut dyn FnMut(&str, &mut dyn $crate::Module) -> $crate::Result<()>,
        ) -> $crate::Result<()> {
            $( f(stringify!($field), &mut self.$field)?; )*
            Ok(())
        }
    };
}

/// Makes a new parameter: a detached leaf of `t` with `requires_grad = true`.
///
/// # Errors
/// `Error::Msg` when `t` is not a float tensor.
pub fn param(t: Tensor) -> Result<Tensor> {
    t.detach().requires_grad_(true)
}
