//! Rules for views and concatenation: gradients are routed back to the viewed elements.

use mlfw_core::{Result, Shape, Tensor};

/// Inverse permutation applied to the gradient.
///
/// # Errors
/// `perm` not a permutation of `g`'s dims.
pub fn permute(g: &Tensor, perm: &[usize]) -> Result<Tensor> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    g.permute(&inv)
}

/// The gradient of a narrow: `g` placed at `start` along `dim`, zeros elsewhere.
///
/// # Errors
/// `dim` out of range of `arg`, or `g` not shaped like `arg` narrowed to `len` along `dim`.
pub fn narrow(arg: &Tensor, g: &Tensor, dim: usize, start: usize, len: usize) -> Result<Tensor> {
    let size = arg.dims()[dim];
    let mut parts = Vec::with_capacity(3);
    let zeros = |n: usize| -> Result<Tensor> {
        let mut d = arg.dims().to_vec();
        d[dim] = n;
        Tensor::zeros(d, g.dtype(), &g.device())
    };
    if start > 0 {
        parts.push(zeros(start)?);
    }
    parts.push(g.clone());
    if start + len < size {
        parts.push(zeros(size - start - len)?);
    }
    if parts.len() == 1 {
        return Ok(g.clone());
    }
    Tensor::cat(&parts, dim as isize)
}

/// Sums a broadcast gradient back to `shape` (the inverse of broadcasting).
///
/// # Errors
/// `g` not broadcast from `shape` (fewer dims, or a size that differs and is not 1 in `shape`).
pub fn sum_to(g: &Tensor, shape: &Shape) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.clone());
    }
    let lead = g.rank() - shape.rank();
    let mut dims: Vec<isize> = (0..lead as isize).collect();
    for (i, &d) in shape.dims().iter().enumerate() {
        if d == 1 && g.dims()[lead + i] != 1 {
            dims.push((lead + i) as isize);
        }
    }
    let s = if dims.is_empty() {
        g.clone()
    } else {
        g.sum(&dims, true)?
    };
    s.reshape(shape.clone())
}

/// Gradients of `cat(ts, dim)`: slices of `g`.
///
/// # Errors
/// `dim` out of range, or `g` shorter along `dim` than the sizes of `ts` together.
pub fn cat(ts: &[Tensor], g: &Tensor, dim: usize) -> Result<Vec<Option<Tensor>>> {
    let mut start = 0;
    let mut out = Vec::with_capacity(ts.len());
    for t in ts {
        let n = t.dims()[dim];
        out.push(Some(g.narrow(dim as isize, start, n)?));
        start += n;
    }
    Ok(out)
}
