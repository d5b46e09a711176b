//! Uniform and normal random buffers, element i a pure function of `(seed, offset + i)`.

use super::{cfg_1d, launch};
use crate::buffer::CudaStorage;
use crate::context::CudaDevice;
use mlfw_core::{DType, Result};
use std::sync::Arc;

/// `lo + (hi - lo) * uniform_at(seed, offset + i)` converted to `dtype`.
pub(crate) fn uniform(
    dev: &Arc<CudaDevice>,
    n: usize,
    lo: f64,
    hi: f64,
    dtype: DType,
    seed: u64,
    offset: u64,
) -> Result<CudaStorage> {
    let out = CudaStorage::alloc(dev, dtype, n)?;
    if n > 0 {
        let f = dev.func("random", Some(dtype), "rand_uniform")?;
        launch!(dev, f, cfg_1d(n); n as u64, lo, hi, seed, offset, out.ptr())?;
    }
    Ok(out)
}

/// `mean + std * normal_at(seed, offset + i)` converted to `dtype`.
pub(crate) fn normal(
    dev: &Arc<CudaDevice>,
    n: usize,
    mean: f64,
    std: f64,
    dtype: DType,
    seed: u64,
    offset: u64,
) -> Result<CudaStorage> {
    let out = CudaStorage::alloc(dev, dtype, n)?;
    if n > 0 {
        let f = dev.func("random", Some(dtype), "rand_normal")?;
        launch!(dev, f, cfg_1d(n); n as u64, mean, std, seed, offset, out.ptr())?;
    }
    Ok(out)
}
