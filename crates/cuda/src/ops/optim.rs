//! Fused in-place optimizer updates (see kernels/optim.rs for the formulas).

use super::{cfg_1d, contiguous, launch};
use crate::buffer::CudaStorage;
use mlfw_core::params::OptimUpdate;
use mlfw_core::{Error, Layout, Result};

/// Updates the contiguous parameter `p` from `g` (any layout of the same shape) and `state`.
pub(crate) fn update(
    p: &CudaStorage,
    g: &CudaStorage,
    gl: &Layout,
    state: &[&CudaStorage],
    u: &OptimUpdate,
) -> Result<()> {
    if !p.dtype.is_float() {
        return Err(Error::UnsupportedDType {
            op: "optimizer step",
            dtype: p.dtype,
        });
    }
    for s in std::iter::once(&g).chain(state.iter()) {
        if s.dtype != p.dtype {
            return Err(Error::DTypeMismatch {
                op: "optimizer step",
                lhs: p.dtype,
                rhs: s.dtype,
            });
        }
    }
    // The parameter tensor is contiguous from offset 0 and shaped like the gradient.
    let n = gl.elem_count();
    if p.len < n || state.iter().any(|s| s.len < n) {
        return Err(Error::msg(
            "optimizer step: gradient and state must have as many elements as the parameter",
        ));
    }
    let expected = match *u {
        OptimUpdate::Sgd { momentum, .. } => (momentum != 0.0) as usize,
        OptimUpdate::Adam { amsgrad, .. } => 2 + amsgrad as usize,
        OptimUpdate::RmsProp {
            momentum, centered, ..
        } => 1 + (momentum > 0.0) as usize + centered as usize,
        OptimUpdate::Adagrad { .. } => 1,
    };
    if state.len() != expected {
        return Err(Error::msg(format!(
            "optimizer step: expected {expected} state buffers for {u:?}, got {}",
            state.len()
        )));
    }
    if n == 0 {
        return Ok(());
    }
    let (gp, _gk) = contiguous(g, gl)?;
    let dev = &p.dev;
    let cfg = cfg_1d(n);
    let nn = n as u64;
    let st = |i: usize| state.get(i).map_or(0u64, |s| s.ptr());
    match *u {
        OptimUpdate::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
            maximize,
            first_step,
        } => {
            let f = dev.func("optim", Some(p.dtype), "sgd")?;
            launch!(dev, f, cfg; nn, p.ptr(), gp, st(0), lr, momentum, dampening, weight_decay,
                nesterov as i32, maximize as i32, first_step as i32)
        }
        OptimUpdate::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            amsgrad,
            decoupled,
            maximize,
            step,
        } => {
            let step = step.max(1) as f64;
            let bc1 = 1.0 - beta1.powf(step);
            let bc2 = 1.0 - beta2.powf(step);
            let f = dev.func("optim", Some(p.dtype), "adam")?;
            launch!(dev, f, cfg; nn, p.ptr(), gp, st(0), st(1), st(2), lr, beta1, beta2, eps, weight_decay,
                amsgrad as i32, decoupled as i32, maximize as i32, lr / bc1, bc2.sqrt())
        }
        OptimUpdate::RmsProp {
            lr,
            alpha,
            eps,
            weight_decay,
            momentum,
            centered,
            maximize,
        } => {
            let buf = if momentum > 0.0 { st(1) } else { 0 };
            let gavg = if centered {
                st(1 + (momentum > 0.0) as usize)
            } else {
                0
            };
            let f = dev.func("optim", Some(p.dtype), "rmsprop")?;
            launch!(dev, f, cfg; nn, p.ptr(), gp, st(0), buf, gavg, lr, alpha, eps, weight_decay, momentum,
                centered as i32, maximize as i32)
        }
        OptimUpdate::Adagrad {
            lr,
            lr_decay,
            weight_decay,
            eps,
            maximize,
            step,
        } => {
            let clr = lr / (1.0 + (step.max(1) - 1) as f64 * lr_decay);
            let f = dev.func("optim", Some(p.dtype), "adagrad")?;
            launch!(dev, f, cfg; nn, p.ptr(), gp, st(0), clr, weight_decay, eps, maximize as i32)
        }
    }
}
