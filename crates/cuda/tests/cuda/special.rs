//! Special values (NaN, ±inf, ties) on CUDA exactly as on the CPU (issue 14): NaN passes
//! through relu/clamp/leaky_relu, max/min reductions, maximum/minimum and max pooling; a +inf
//! softmax max makes the row NaN. Gradients: `special.safetensors` on CUDA, in mlfw-nn's
//! torch_parity test.

use crate::common::same_on_both;
use mlfw_core::{DType, Device, Pool2dParams, Result, Tensor};

#[test]
fn nan_and_infinities_match_cpu() -> Result<()> {
    let (nan, inf) = (f64::NAN, f64::INFINITY);
    for (dt, tol) in [
        (DType::F32, 1e-6),
        (DType::F64, 1e-12),
        (DType::F16, 2e-3),
        (DType::BF16, 1e-2),
    ] {
        let body = |d: &Device| -> Result<Vec<Tensor>> {
            let x = Tensor::from_vec(vec![nan, -1., 2., 0., -inf, inf], [6], d)?.to_dtype(dt)?;
            let y = Tensor::from_vec(vec![0., nan, 2., 1., 3., -inf], [6], d)?.to_dtype(dt)?;
            let rows = Tensor::from_vec(
                vec![0., inf, 1., -inf, -inf, -inf, nan, 0., 1., 1., 3., 3.],
                [4, 3],
                d,
            )?
            .to_dtype(dt)?;
            let (vmax, imax) = rows.max_dim(1, false)?;
            let (vmin, imin) = rows.min_dim(0, true)?;
            let plane = x.narrow(0, 0, 4)?.reshape([1, 1, 2, 2])?;
            Ok(vec![
                x.relu()?,
                x.clamp(-0.5, 0.5)?,
                x.leaky_relu(0.1)?,
                x.sign()?,
                x.maximum(&y)?,
                x.minimum(&y)?,
                rows.softmax(-1)?,
                rows.log_softmax(-1)?,
                rows.max(&[1], false)?,
                rows.min(&[], false)?,
                vmax,
                imax,
                vmin,
                imin,
                plane.max_pool2d(Pool2dParams::new(2))?,
            ])
        };
        // The body runs on the CPU everywhere (so it is kept valid), then on both with a GPU.
        body(&Device::Cpu)?;
        same_on_both(&format!("special values {dt}"), tol, tol, body)?;
    }
    Ok(())
}
