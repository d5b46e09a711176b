//! index_select, gather, scatter_add, index_add (indices are range-checked by mlfw-core).

use super::{cfg_1d, contiguous, launch};
use crate::buffer::CudaStorage;
use crate::lay::Lay;
use mlfw_core::{DType, Error, Layout, Result};

fn check_ids(ids: &CudaStorage, op: &'static str) -> Result<()> {
    if ids.dtype != DType::I64 {
        return Err(Error::msg(format!(
            "{op}: indices must be int64, got {}",
            ids.dtype
        )));
    }
    Ok(())
}

/// `(pre, size, post)` of `dims` around `dim`.
fn split(dims: &[usize], dim: usize) -> (usize, usize, usize) {
    (
        dims[..dim].iter().product(),
        dims[dim],
        dims[dim + 1..].iter().product(),
    )
}

/// Entries of `dim` picked by the 1-D ids.
pub(crate) fn index_select(
    s: &CudaStorage,
    l: &Layout,
    ids: &CudaStorage,
    il: &Layout,
    dim: usize,
) -> Result<CudaStorage> {
    check_ids(ids, "index_select")?;
    let (pre, size, post) = split(l.dims(), dim);
    let nids = il.elem_count();
    let n = pre * nids * post;
    let out = CudaStorage::alloc(&s.dev, s.dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let (xp, _xk) = contiguous(s, l)?;
    let (ip, _ik) = contiguous(ids, il)?;
    let f = s.dev.func("index", Some(s.dtype), "index_select")?;
    launch!(s.dev, f, cfg_1d(n); n as u64, size as u64, nids as u64, post as u64, xp, ip, out.ptr())?;
    Ok(out)
}

/// torch.gather along `dim`; output shaped like the ids.
pub(crate) fn gather(
    s: &CudaStorage,
    l: &Layout,
    ids: &CudaStorage,
    il: &Layout,
    dim: usize,
) -> Result<CudaStorage> {
    check_ids(ids, "gather")?;
    let n = il.elem_count();
    let out = CudaStorage::alloc(&s.dev, s.dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let f = s.dev.func("index", Some(s.dtype), "gather")?;
    launch!(s.dev, f, cfg_1d(n); n as u64, dim as i32, s.ptr(), Lay::exact(l)?, ids.ptr(), Lay::exact(il)?, out.ptr())?;
    Ok(out)
}

/// A copy of `self` with `src` added at `ids` along `dim` (torch.scatter_add).
#[allow(clippy::too_many_arguments)]
pub(crate) fn scatter_add(
    s: &CudaStorage,
    l: &Layout,
    ids: &CudaStorage,
    il: &Layout,
    src: &CudaStorage,
    sl: &Layout,
    dim: usize,
) -> Result<CudaStorage> {
    check_ids(ids, "scatter_add")?;
    same_dtype(s, src, "scatter_add")?;
    let out = super::elementwise::copy_layout(s, l)?;
    let n = il.elem_count();
    if n == 0 {
        return Ok(out);
    }
    let lo = Lay::exact(&Layout::contiguous(l.shape().clone()))?;
    let f = s.dev.func("index", Some(s.dtype), "scatter_add")?;
    launch!(s.dev, f, cfg_1d(n); n as u64, dim as i32, out.ptr(), lo, ids.ptr(), Lay::exact(il)?, src.ptr(), Lay::exact(sl)?)?;
    Ok(out)
}

/// A copy of `self` with slice i of `src` added to slice `ids[i]` along `dim` (torch.index_add).
#[allow(clippy::too_many_arguments)]
pub(crate) fn index_add(
    s: &CudaStorage,
    l: &Layout,
    ids: &CudaStorage,
    il: &Layout,
    src: &CudaStorage,
    sl: &Layout,
    dim: usize,
) -> Result<CudaStorage> {
    check_ids(ids, "index_add")?;
    same_dtype(s, src, "index_add")?;
    let out = super::elementwise::copy_layout(s, l)?;
    let (_, size, post) = split(l.dims(), dim);
    let nids = il.elem_count();
    let n = sl.elem_count();
    if n == 0 {
        return Ok(out);
    }
    let (ip, _ik) = contiguous(ids, il)?;
    let (sp, _sk) = contiguous(src, sl)?;
    let f = s.dev.func("index", Some(s.dtype), "index_add")?;
    launch!(s.dev, f, cfg_1d(n); n as u64, size as u64, nids as u64, post as u64, out.ptr(), ip, sp)?;
    Ok(out)
}

fn same_dtype(a: &CudaStorage, b: &CudaStorage, op: &'static str) -> Result<()> {
    if a.dtype != b.dtype {
        return Err(Error::DTypeMismatch {
            op,
            lhs: a.dtype,
            rhs: b.dtype,
        });
    }
    Ok(())
}
