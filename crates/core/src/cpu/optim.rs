//! Fused in-place optimizer updates (PENDING).
use crate::params::OptimUpdate;
use crate::{CpuStorage, Error, Layout, Result};

pub(crate) fn optim_update(
    _p: &mut CpuStorage,
    _g: &CpuStorage,
    _gl: &Layout,
    _state: &mut [&mut CpuStorage],
    _u: &OptimUpdate,
) -> Result<()> {
    Err(Error::msg("pending"))
}
