//! 2-D convolution and its two backward passes (PENDING: kernels being written).
use crate::params::Conv2dParams;
use crate::{CpuStorage, Error, Layout, Result};

pub(crate) fn conv2d(
    _x: &CpuStorage,
    _xl: &Layout,
    _w: &CpuStorage,
    _wl: &Layout,
    _p: &Conv2dParams,
) -> Result<CpuStorage> {
    Err(Error::msg("conv2d: pending"))
}
pub(crate) fn conv2d_backward_input(
    _g: &CpuStorage,
    _gl: &Layout,
    _w: &CpuStorage,
    _wl: &Layout,
    _p: &Conv2dParams,
    _input_hw: (usize, usize),
) -> Result<CpuStorage> {
    Err(Error::msg("conv2d_backward_input: pending"))
}
pub(crate) fn conv2d_backward_weight(
    _x: &CpuStorage,
    _xl: &Layout,
    _g: &CpuStorage,
    _gl: &Layout,
    _p: &Conv2dParams,
    _kernel_hw: (usize, usize),
) -> Result<CpuStorage> {
    Err(Error::msg("conv2d_backward_weight: pending"))
}
