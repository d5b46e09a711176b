//! Indexing ops against the CPU.

use crate::common::{randn, same_on_both};
use mlfw_core::{DType, Result, Tensor};

#[test]
fn index_select_gather_scatter_index_add() -> Result<()> {
    for dt in [DType::F32, DType::F64, DType::F16, DType::BF16, DType::I64] {
        let tol = if matches!(dt, DType::F16 | DType::BF16) {
            1e-2
        } else {
            1e-6
        };
        same_on_both(&format!("index {dt}"), tol, tol, |d| {
            let x = randn(&[5, 6, 7], 1, d)?.affine(4.0, 0.0)?.to_dtype(dt)?;
            let ids = Tensor::from_vec(vec![4i64, 0, 2, 2], [4], d)?;
            let g_ids = Tensor::from_vec(
                (0..5 * 3 * 7).map(|i| (i * 7 % 6) as i64).collect(),
                [5, 3, 7],
                d,
            )?;
            let src = randn(&[5, 3, 7], 2, d)?.to_dtype(dt)?;
            let src4 = randn(&[5, 4, 7], 3, d)?.to_dtype(dt)?;
            Ok(vec![
                x.index_select(&ids, 0)?,
                x.index_select(&ids, 2)?,
                x.permute(&[2, 0, 1])?.index_select(&ids, 1)?,
                x.gather(&g_ids, 1)?,
                x.transpose(0, 2)?.gather(&g_ids.transpose(0, 2)?, 1)?,
                x.scatter_add(&g_ids, &src, 1)?,
                x.index_add(&ids, &src4, 1)?,
                ids.one_hot(5, dt)?,
            ])
        })?;
    }
    Ok(())
}
