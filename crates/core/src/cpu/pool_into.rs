//! Max pooling and its gradient into a caller's buffers (compiled plans' planned memory):
//! the kernels of `pool.rs`, every element written, bit-identical to the allocating forms.

use super::{backward_geom, max_pool_backward_into_t, max_pool_into_t, pool_out};
use crate::cpu::map::contiguous_cow;
use crate::params::Pool2dParams;
use crate::{Error, Layout, Result, Shape};

/// Checks that a caller's output buffer holds exactly `want` elements.
fn check_out(op: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(Error::msg(format!(
        "{op} into: output buffer of {got} elements, the result needs {want}"
    )))
}

/// [`max_pool2d`] of an f32 view into `vals` and `idx` (the contiguous `[N, C, oH, oW]`
/// results, any prior contents, every element written), bit-identical to it.
///
/// # Errors
/// As [`max_pool2d`]; buffers of the wrong length.
pub(crate) fn max_pool2d_f32_into(
    x: &[f32],
    l: &Layout,
    p: &Pool2dParams,
    vals: &mut [f32],
    idx: &mut [i64],
) -> Result<()> {
    let op = "max_pool2d";
    let g = pool_out(l, p, op)?;
    check_out(op, vals.len(), g.count * g.out_len())?;
    check_out(op, idx.len(), g.count * g.out_len())?;
    max_pool_into_t(&contiguous_cow(x, l), &g, p, vals, idx);
    Ok(())
}

/// [`max_pool2d_backward`] of an f32 gradient into `dx` (the contiguous `input`-shaped
/// gradient, any prior contents, every element written), bit-identical to it.
///
/// # Errors
/// As [`max_pool2d_backward`]; `dx` of the wrong length.
pub(crate) fn max_pool2d_backward_f32_into(
    gy: &[f32],
    l: &Layout,
    idx: &[i64],
    il: &Layout,
    input: &Shape,
    dx: &mut [f32],
) -> Result<()> {
    let op = "max_pool2d_backward";
    let (g, ids) = backward_geom(l, idx, il, input)?;
    check_out(op, dx.len(), g.count * g.in_len())?;
    max_pool_backward_into_t(&contiguous_cow(gy, l), &ids, &g, dx);
    Ok(())
}
