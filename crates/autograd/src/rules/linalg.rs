//! Rule for batched matmul (all `torch.matmul` cases reduce to it plus recorded views).

use mlfw_core::{Result, Tensor};

/// Gradients of `a.bmm(b)`: `g·bᵀ` and `aᵀ·g` (transposes are views, not copies).
pub fn bmm(a: &Tensor, b: &Tensor, g: &Tensor) -> Result<(Tensor, Tensor)> {
    Ok((g.bmm(&b.transpose(1, 2)?)?, a.transpose(1, 2)?.bmm(g)?))
}
