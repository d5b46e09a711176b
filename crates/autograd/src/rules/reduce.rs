//! Rules for reductions and (log-)softmax.

use mlfw_core::{CmpOp, ReduceOp, Result, Tensor};

/// `g` reshaped so reduced dims are size 1 again (undoing `keepdim=false`).
fn keepdim_shape(arg: &Tensor, g: &Tensor, dims: &[usize], keepdim: bool) -> Result<Tensor> {
    if keepdim {
        return Ok(g.clone());
    }
    let shape: Vec<usize> = arg
        .dims()
        .iter()
        .enumerate()
        .map(|(i, &d)| if dims.contains(&i) { 1 } else { d })
        .collect();
    g.reshape(shape)
}

/// Gradient of Sum/Max/Min over `dims`. Max/min share the gradient evenly among ties.
///
/// # Errors
/// `op` is argmax or argmin (no gradient); `g` or `out` not shaped like `arg` reduced over
/// `dims`.
pub fn reduce(
    arg: &Tensor,
    out: &Tensor,
    g: &Tensor,
    op: ReduceOp,
    dims: &[usize],
    keepdim: bool,
) -> Result<Tensor> {
    let gk = keepdim_shape(arg, g, dims, keepdim)?;
    match op {
        ReduceOp::Sum => gk.broadcast_to(arg.shape().clone())?.contiguous(),
        ReduceOp::Max | ReduceOp::Min => {
            let ok = keepdim_shape(arg, out, dims, keepdim)?;
            let mask = arg.cmp_op(&ok, CmpOp::Eq)?.to_dtype(arg.dtype())?;
            let isdims: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
            let count = mask.sum(&isdims, true)?;
            mask.mul(&gk.div(&count)?)
        }
        ReduceOp::ArgMax | ReduceOp::ArgMin => {
            Err(mlfw_core::Error::msg("argmax/argmin have no gradient"))
        }
    }
}

/// Gradient of (log-)softmax over `dim` given its output `y`.
///
/// # Errors
/// `dim` out of range, or `y` and `g` of different shapes, dtypes or devices.
pub fn softmax(y: &Tensor, g: &Tensor, dim: usize, log: bool) -> Result<Tensor> {
    let d = dim as isize;
    if log {
        g.sub(&y.exp()?.mul(&g.sum(&[d], true)?)?)
    } else {
        y.mul(&g.sub(&g.mul(y)?.sum(&[d], true)?)?)
    }
}
