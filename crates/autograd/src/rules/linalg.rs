//! Rule for batched matmul (all `torch.matmul` cases reduce to it plus recorded views).

use mlfw_core::{Result, Tensor};

/// Gradients of `a.bmm(b)`: `g·bᵀ` and `aᵀ·g` (transposes are views, not copies); each only
/// when that input requires grad.
///
/// # Errors
/// `a`, `b` or `g` not 3-d or of batch/inner sizes that do not match.
pub fn bmm(a: &Tensor, b: &Tensor, g: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let ga = if a.requires_grad() {
        Some(g.bmm(&b.transpose(1, 2)?)?)
    } else {
        None
    };
    let gb = if b.requires_grad() {
        Some(a.transpose(1, 2)?.bmm(g)?)
    } else {
        None
    };
    Ok((ga, gb))
}
