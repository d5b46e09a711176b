//! Reductions over any set of dims and row-wise (log-)softmax.

use super::{cfg_rows, launch};
use crate::buffer::CudaStorage;
use crate::lay::Lay;
use mlfw_core::params::ReduceOp;
use mlfw_core::{DType, Error, Layout, Result};

/// Reduces `dims` (sorted, distinct); the output keeps them with size 1 (contiguous).
pub(crate) fn reduce(
    s: &CudaStorage,
    l: &Layout,
    op: ReduceOp,
    dims: &[usize],
) -> Result<CudaStorage> {
    let shape = l.dims();
    if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) {
        if dims.len() != 1 {
            return Err(Error::msg("argmax/argmin: exactly one dim expected"));
        }
        if shape[dims[0]] == 0 {
            return Err(Error::msg(
                "argmax/argmin: cannot reduce an empty dimension",
            ));
        }
    }
    if matches!(op, ReduceOp::Max | ReduceOp::Min) && dims.iter().any(|&d| shape[d] == 0) {
        return Err(Error::msg(format!(
            "max/min: cannot reduce an empty dimension of shape {}",
            l.shape()
        )));
    }
    // Sums of bytes and bools count in i64, as in PyTorch (and the CPU backend).
    if op == ReduceOp::Sum && matches!(s.dtype, DType::U8 | DType::Bool) {
        let wide = super::elementwise::to_dtype(s, l, DType::I64)?;
        return reduce(&wide, &Layout::contiguous(l.shape().clone()), op, dims);
    }
    let rows: usize = (0..shape.len())
        .filter(|d| !dims.contains(d))
        .map(|d| shape[d])
        .product();
    let inner: usize = dims.iter().map(|&d| shape[d]).product();
    let out_dtype = if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) {
        DType::I64
    } else {
        s.dtype
    };
    if rows == 0 {
        return CudaStorage::alloc(&s.dev, out_dtype, 0);
    }
    if inner == 0 {
        return CudaStorage::zeros(&s.dev, out_dtype, rows); // empty sums are 0
    }
    let out = CudaStorage::alloc(&s.dev, out_dtype, rows)?;
    let mut perm: Vec<usize> = (0..shape.len()).filter(|d| !dims.contains(d)).collect();
    perm.extend_from_slice(dims);
    let lx = Lay::of(&l.permute(&perm)?)?;
    let cfg = cfg_rows(rows);
    let (r, k) = (rows as u64, inner as u64);
    match op {
        ReduceOp::Sum => {
            let f = s.dev.func("reduce", Some(s.dtype), "reduce_sum")?;
            launch!(s.dev, f, cfg; r, k, s.ptr(), lx, out.ptr())?
        }
        ReduceOp::Max | ReduceOp::Min => {
            let f = s.dev.func("reduce", Some(s.dtype), "reduce_maxmin")?;
            let is_min = (op == ReduceOp::Min) as i32;
            launch!(s.dev, f, cfg; r, k, is_min, s.ptr(), lx, out.ptr())?
        }
        ReduceOp::ArgMax | ReduceOp::ArgMin => {
            let f = s.dev.func("reduce", Some(s.dtype), "reduce_arg")?;
            let is_min = (op == ReduceOp::ArgMin) as i32;
            launch!(s.dev, f, cfg; r, k, is_min, s.ptr(), lx, out.ptr())?
        }
    }
    Ok(out)
}

/// (Log-)softmax over the last dim (float dtypes).
pub(crate) fn softmax(s: &CudaStorage, l: &Layout, log: bool) -> Result<CudaStorage> {
    if !s.dtype.is_float() {
        return Err(Error::UnsupportedDType {
            op: "softmax",
            dtype: s.dtype,
        });
    }
    let n = l.elem_count();
    let row = *l.dims().last().unwrap_or(&1);
    if n == 0 || row == 0 {
        return CudaStorage::alloc(&s.dev, s.dtype, n);
    }
    let rows = n / row;
    let out = CudaStorage::alloc(&s.dev, s.dtype, n)?;
    let f = s.dev.func("reduce", Some(s.dtype), "softmax_rows")?;
    launch!(s.dev, f, cfg_rows(rows); rows as u64, row as u64, log as i32, s.ptr(), Lay::of(l)?, out.ptr())?;
    Ok(out)
}
