//! Matrix multiplication with `torch.matmul` semantics.

use super::{same_device_dtype, Tensor};
use crate::op::Op;
use crate::params::MatmulDims;
use crate::{Error, Result, Shape};

impl Tensor {
    /// Batched matmul of 3-D tensors `[b, m, k] x [b, k, n]` (any strides, no copies).
    ///
    /// # Errors
    /// `Error::ShapeMismatch` unless both are 3-D with equal batch and inner dims;
    /// `Error::DTypeMismatch` / `Error::DeviceMismatch` between the operands;
    /// `Error::UnsupportedDType` for dtypes the backend's matmul lacks.
    pub fn bmm(&self, rhs: &Tensor) -> Result<Tensor> {
        if let Some((a, b)) = crate::autocast::lower_pair(self, rhs)? {
            return a.bmm(&b);
        }
        same_device_dtype(self, rhs, "matmul")?;
        let (a, b) = (self.dims(), rhs.dims());
        if a.len() != 3 || b.len() != 3 || a[0] != b[0] || a[2] != b[1] {
            return Err(Error::ShapeMismatch {
                op: "bmm",
                lhs: self.shape().clone(),
                rhs: rhs.shape().clone(),
            });
        }
        let d = MatmulDims {
            b: a[0],
            m: a[1],
            k: a[2],
            n: b[2],
        };
        let s = self
            .storage()
            .matmul(self.layout(), &**rhs.storage(), rhs.layout(), d)?;
        Ok(Tensor::from_storage(
            s,
            [d.b, d.m, d.n],
            || Op::Matmul(self.clone(), rhs.clone()),
            &[self, rhs],
        ))
    }

    /// Matrix product as `torch.matmul`: 1-D operands are promoted (and the added dim
    /// removed), batch dims broadcast, and `[..., m, k] x [k, n]` folds the batch into m.
    ///
    /// # Errors
    /// `Error::Msg` for a 0-D operand; `Error::ShapeMismatch` when the inner dims differ or the
    /// batch dims do not broadcast; dtype and device errors as [`Tensor::bmm`].
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        let mismatch = || Error::ShapeMismatch {
            op: "matmul",
            lhs: self.shape().clone(),
            rhs: rhs.shape().clone(),
        };
        let (ra, rb) = (self.rank(), rhs.rank());
        if ra == 0 || rb == 0 {
            return Err(Error::msg(format!(
                "matmul: both arguments need at least 1 dim, got shapes {} and {}",
                self.shape(),
                rhs.shape()
            )));
        }
        let a = if ra == 1 {
            self.unsqueeze(0)?
        } else {
            self.clone()
        };
        let b = if rb == 1 {
            rhs.unsqueeze(1)?
        } else {
            rhs.clone()
        };
        let (m, k) = (a.dims()[a.rank() - 2], a.dims()[a.rank() - 1]);
        let (k2, n) = (b.dims()[b.rank() - 2], b.dims()[b.rank() - 1]);
        if k != k2 {
            return Err(mismatch());
        }
        let out = if b.rank() == 2 {
            // Fold every batch dim of `a` into its rows: one gemm.
            let batch: Vec<usize> = a.dims()[..a.rank() - 2].to_vec();
            let rows: usize = batch.iter().product::<usize>() * m;
            let a3 = a.reshape([1, rows, k])?;
            let b3 = b.unsqueeze(0)?;
            let mut dims = batch;
            dims.extend([m, n]);
            a3.bmm(&b3)?.reshape(dims)?
        } else {
            let ba = Shape::new(a.dims()[..a.rank() - 2].to_vec());
            let bb = Shape::new(b.dims()[..b.rank() - 2].to_vec());
            let batch = ba.broadcast_with(&bb, "matmul").map_err(|_| mismatch())?;
            let nb = batch.elem_count();
            let mut da = batch.dims().to_vec();
            da.extend([m, k]);
            let mut db = batch.dims().to_vec();
            db.extend([k, n]);
            let a3 = a.broadcast_to(da)?.reshape([nb, m, k])?;
            let b3 = b.broadcast_to(db)?.reshape([nb, k, n])?;
            let mut dims = batch.dims().to_vec();
            dims.extend([m, n]);
            a3.bmm(&b3)?.reshape(dims)?
        };
        let out = if ra == 1 { out.squeeze(-2)? } else { out };
        if rb == 1 {
            out.squeeze(-1)
        } else {
            Ok(out)
        }
    }
}
