//! Max, average and adaptive-average 2-D pooling with backward passes (PENDING).
use crate::params::Pool2dParams;
use crate::{CpuStorage, Error, Layout, Result, Shape};

pub(crate) fn max_pool2d(
    _x: &CpuStorage,
    _l: &Layout,
    _p: &Pool2dParams,
) -> Result<(CpuStorage, CpuStorage)> {
    Err(Error::msg("max_pool2d: pending"))
}
pub(crate) fn max_pool2d_backward(
    _g: &CpuStorage,
    _l: &Layout,
    _idx: &CpuStorage,
    _il: &Layout,
    _input: &Shape,
) -> Result<CpuStorage> {
    Err(Error::msg("pending"))
}
pub(crate) fn avg_pool2d(_x: &CpuStorage, _l: &Layout, _p: &Pool2dParams) -> Result<CpuStorage> {
    Err(Error::msg("pending"))
}
pub(crate) fn avg_pool2d_backward(
    _g: &CpuStorage,
    _l: &Layout,
    _p: &Pool2dParams,
    _input: &Shape,
) -> Result<CpuStorage> {
    Err(Error::msg("pending"))
}
pub(crate) fn adaptive_avg_pool2d(
    _x: &CpuStorage,
    _l: &Layout,
    _out: (usize, usize),
) -> Result<CpuStorage> {
    Err(Error::msg("pending"))
}
pub(crate) fn adaptive_avg_pool2d_backward(
    _g: &CpuStorage,
    _l: &Layout,
    _input: &Shape,
) -> Result<CpuStorage> {
    Err(Error::msg("pending"))
}
