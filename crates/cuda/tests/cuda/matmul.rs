//! Matmul on cuBLAS against the CPU: transposed, sliced and broadcast operands, all float dtypes.

use crate::common::{randn, same_on_both};
use mlfw_core::{DType, Result, Tensor};

#[test]
fn matmul_layouts_and_dtypes() -> Result<()> {
    mlfw_cuda::set_allow_tf32(false);
    for (dt, rtol, atol) in [
        (DType::F32, 1e-5, 1e-4),
        (DType::F64, 1e-12, 1e-12),
        (DType::F16, 1e-2, 2e-2),
        (DType::BF16, 2e-2, 1e-1),
    ] {
        same_on_both(&format!("matmul {dt}"), rtol, atol, |d| {
            let a = randn(&[3, 17, 33], 1, d)?.to_dtype(dt)?;
            let b = randn(&[3, 33, 9], 2, d)?.to_dtype(dt)?;
            let bt = randn(&[3, 9, 33], 3, d)?.to_dtype(dt)?.transpose(1, 2)?;
            let at = randn(&[3, 33, 17], 4, d)?.to_dtype(dt)?.transpose(1, 2)?;
            let w = randn(&[33, 9], 5, d)?.to_dtype(dt)?;
            let wide = randn(&[17, 50], 6, d)?.to_dtype(dt)?.narrow(1, 4, 33)?; // row stride 50
            let bc = randn(&[1, 33], 7, d)?.to_dtype(dt)?.expand([17, 33])?; // zero row stride
            let v = randn(&[33], 8, d)?.to_dtype(dt)?;
            let e = Tensor::zeros([4, 0], dt, d)?;
            Ok(vec![
                a.matmul(&b)?,
                a.matmul(&bt)?,
                at.matmul(&bt)?,
                a.matmul(&w)?, // broadcast rhs over the batch
                wide.matmul(&w)?,
                bc.matmul(&w)?,
                wide.matmul(&v.unsqueeze(1)?)?,
                e.matmul(&Tensor::zeros([0, 3], dt, d)?)?,
            ])
        })?;
    }
    Ok(())
}

#[test]
fn tf32_switch() -> Result<()> {
    let Some(gpu) = crate::common::cuda() else {
        return Ok(());
    };
    let a = randn(&[256, 256], 1, &gpu)?;
    let b = randn(&[256, 256], 2, &gpu)?;
    let exact = a
        .to(&mlfw_core::Device::Cpu)?
        .matmul(&b.to(&mlfw_core::Device::Cpu)?)?;
    mlfw_cuda::set_allow_tf32(true);
    let fast = a.matmul(&b)?;
    mlfw_cuda::set_allow_tf32(false);
    crate::common::assert_close("tf32", &exact, &fast, 1e-2, 5e-2)?;
    Ok(())
}
