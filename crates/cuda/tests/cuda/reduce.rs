//! Reductions and softmax: CUDA against the CPU.

use crate::common::{randn, same_on_both};
use mlfw_core::{DType, Result, Tensor};

#[test]
fn sum_max_min_over_dims() -> Result<()> {
    for dt in [DType::F32, DType::F64, DType::F16, DType::BF16, DType::I64] {
        let (rtol, atol) = if dt == DType::F16 || dt == DType::BF16 {
            (1e-2, 1e-2)
        } else {
            (1e-6, 1e-5)
        };
        same_on_both(&format!("reduce {dt}"), rtol, atol, |d| {
            let x = randn(&[6, 7, 300], 1, d)?.affine(10.0, 0.0)?.to_dtype(dt)?;
            let xt = x.permute(&[2, 0, 1])?;
            let mut out = Vec::new();
            for dims in [&[0isize][..], &[1], &[2], &[0, 2], &[0, 1, 2]] {
                out.push(x.sum(dims, true)?);
                out.push(x.max(dims, true)?);
                out.push(x.min(dims, false)?);
                out.push(xt.sum(dims, true)?);
            }
            out.push(x.argmax(2, true)?);
            out.push(x.argmin(0, false)?);
            out.push(xt.argmax(1, false)?);
            Ok(out)
        })?;
    }
    Ok(())
}

#[test]
fn nan_ties_bytes_and_empty() -> Result<()> {
    same_on_both("reduce edge cases", 0.0, 0.0, |d| {
        let x = Tensor::from_vec(
            vec![
                1.0f32,
                3.0,
                3.0,
                f32::NAN,
                2.0,
                5.0,
                5.0,
                1.0,
                0.0,
                f32::NAN,
                1.0,
                f32::NAN,
            ],
            [3, 4],
            d,
        )?;
        let b = Tensor::from_vec(vec![200u8, 100, 50, 255, 1, 0], [2, 3], d)?;
        let m = b.gt(&Tensor::full(60.0, [2, 3], DType::U8, d)?)?;
        let e = Tensor::zeros([3, 0], DType::F32, d)?;
        Ok(vec![
            x.max(&[1], true)?,
            x.min(&[1], true)?,
            x.argmax(1, false)?,
            x.argmin(1, false)?,
            x.sum(&[1], false)?,
            b.sum(&[0, 1], false)?,
            m.sum(&[1], false)?,
            b.max(&[1], false)?,
            e.sum(&[1], true)?,
        ])
    })
}

#[test]
fn softmax_and_log_softmax() -> Result<()> {
    for (dt, tol) in [
        (DType::F32, 1e-6),
        (DType::F64, 1e-12),
        (DType::F16, 2e-3),
        (DType::BF16, 1e-2),
    ] {
        same_on_both(&format!("softmax {dt}"), tol, tol, |d| {
            let x = randn(&[5, 1000], 2, d)?.affine(5.0, 0.0)?.to_dtype(dt)?;
            let s = randn(&[8, 3], 3, d)?.to_dtype(dt)?.t()?; // strided rows
            let inf = Tensor::from_vec(
                vec![f64::NEG_INFINITY, 0.0, 1.0, f64::NEG_INFINITY],
                [2, 2],
                d,
            )?
            .to_dtype(dt)?;
            Ok(vec![
                x.softmax(-1)?,
                x.log_softmax(-1)?,
                s.softmax(-1)?,
                s.log_softmax(-1)?,
                inf.softmax(-1)?,
            ])
        })?;
    }
    Ok(())
}
