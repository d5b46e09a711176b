//! Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_).

use mlfw_core::{Error, Result, Tensor};

/// Scales all gradients so their joint `norm_type`-norm is at most `max_norm` (coefficient
/// `max_norm / (total + 1e-6)`, applied only when below 1, as PyTorch). `norm_type` may be
/// `f64::INFINITY`. Returns the total norm before clipping. Parameters without a gradient
/// are skipped. A NaN anywhere makes the total NaN and, as in PyTorch, every gradient NaN
/// (so the step is visibly poisoned rather than silently unclipped); use
/// [`clip_grad_norm_with`] with `error_if_nonfinite` to get an error instead.
///
/// # Errors
/// Reading a gradient's values failing (a device error); see [`clip_grad_norm_with`] for the
/// `norm_type` check (not > 0 or NaN).
pub fn clip_grad_norm(params: &[Tensor], max_norm: f64, norm_type: f64) -> Result<f64> {
    clip_grad_norm_with(params, max_norm, norm_type, false)
}

/// [`clip_grad_norm`] with PyTorch's `error_if_nonfinite`: when true, a NaN or infinite total
/// norm is an error and the gradients are left untouched.
///
/// # Errors
/// `norm_type` not > 0 (or NaN); a non-finite total norm when `error_if_nonfinite`; reading a
/// gradient's values failing (a device error).
pub fn clip_grad_norm_with(
    params: &[Tensor],
    max_norm: f64,
    norm_type: f64,
    error_if_nonfinite: bool,
) -> Result<f64> {
    if norm_type <= 0.0 || norm_type.is_nan() {
        return Err(Error::msg(format!(
            "clip_grad_norm: norm_type must be > 0, got {norm_type}"
        )));
    }
    let grads: Vec<Tensor> = params.iter().filter_map(|p| p.grad()).collect();
    if grads.is_empty() {
        return Ok(0.0);
    }
    let mut total = 0.0f64;
    for g in &grads {
        let a = g.abs()?;
        if norm_type.is_infinite() {
            // NaN-propagating max (f64::max would drop a NaN).
            let m = a.max(&[], false)?.item_f64()?;
            total = if m > total || m.is_nan() { m } else { total };
        } else {
            let n = a.powf(norm_type)?.sum_all()?.item_f64()?;
            total += n;
        }
    }
    if !norm_type.is_infinite() {
        total = total.powf(1.0 / norm_type);
    }
    if error_if_nonfinite && !total.is_finite() {
        return Err(Error::msg(format!(
            "clip_grad_norm: the total norm of order {norm_type} of the gradients is {total}, \
             so they cannot be clipped; pass error_if_nonfinite = false to clip anyway"
        )));
    }
    let coef = max_norm / (total + 1e-6);
    if coef < 1.0 || coef.is_nan() {
        for p in params {
            if let Some(g) = p.grad() {
                p.set_grad(Some(g.mul_scalar(coef)?));
            }
        }
    }
    Ok(total)
}

/// Clamps every gradient element into `[-clip, clip]`.
///
/// # Errors
/// A negative or NaN `clip`; a gradient op failing.
pub fn clip_grad_value(params: &[Tensor], clip: f64) -> Result<()> {
    if clip < 0.0 || clip.is_nan() {
        return Err(Error::msg(format!(
            "clip_grad_value: clip value must be >= 0, got {clip}"
        )));
    }
    for p in params {
        if let Some(g) = p.grad() {
            p.set_grad(Some(g.clamp(-clip, clip)?));
        }
    }
    Ok(())
}
