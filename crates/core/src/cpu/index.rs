//! Indexing kernels: index_select, gather, scatter_add, index_add (PENDING).
use crate::{CpuStorage, Error, Layout, Result};

pub(crate) fn index_select(
    _x: &CpuStorage,
    _l: &Layout,
    _ids: &CpuStorage,
    _il: &Layout,
    _dim: usize,
) -> Result<CpuStorage> {
    Err(Error::msg("pending"))
}
pub(crate) fn gather(
    _x: &CpuStorage,
    _l: &Layout,
    _ids: &CpuStorage,
    _il: &Layout,
    _dim: usize,
) -> Result<CpuStorage> {
    Err(Error::msg("pending"))
}
pub(crate) fn scatter_add(
    _x: &CpuStorage,
    _l: &Layout,
    _ids: &CpuStorage,
    _il: &Layout,
    _src: &CpuStorage,
    _sl: &Layout,
    _dim: usize,
) -> Result<CpuStorage> {
    Err(Error::msg("pending"))
}
pub(crate) fn index_add(
    _x: &CpuStorage,
    _l: &Layout,
    _ids: &CpuStorage,
    _il: &Layout,
    _src: &CpuStorage,
    _sl: &Layout,
    _dim: usize,
) -> Result<CpuStorage> {
    Err(Error::msg("pending"))
}
