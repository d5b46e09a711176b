//! Indexing ops: index_select, gather, scatter_add, index_add, one_hot, embedding.

use super::Tensor;
use crate::op::Op;
use crate::shape::resolve_dim;
use crate::{DType, Error, Result};

impl Tensor {
    /// Checks that `ids` is i64 and every entry is in `0..size`.
    fn check_ids(ids: &Tensor, size: usize, op: &'static str) -> Result<()> {
        if ids.dtype() != DType::I64 {
            return Err(Error::msg(format!(
                "{op}: indices must be int64, got {}",
                ids.dtype()
            )));
        }
        if ids.elem_count() == 0 {
            return Ok(());
        }
        let v = ids.to_vec::<i64>()?;
        if let Some(&bad) = v.iter().find(|&&i| i < 0 || i as usize >= size) {
            return Err(Error::IndexOutOfRange {
                op,
                index: bad,
                size,
            });
        }
        Ok(())
    }

    /// Entries of `dim` picked by the 1-D i64 tensor `ids`.
    ///
    /// # Errors
    /// `Error::Msg` when `ids` is not a 1-D i64 tensor; `Error::IndexOutOfRange` for an id outside
    /// `0..size`; `Error::DimOutOfRange` for a bad `dim`.
    pub fn index_select(&self, ids: &Tensor, dim: isize) -> Result<Tensor> {
        let d = resolve_dim(dim, self.rank(), "index_select")?;
        if ids.rank() != 1 {
            return Err(Error::msg(format!(
                "index_select: indices must be 1-D, got shape {}",
                ids.shape()
            )));
        }
        Self::check_ids(ids, self.dims()[d], "index_select")?;
        let s = self
            .storage()
            .index_select(self.layout(), &**ids.storage(), ids.layout(), d)?;
        let mut dims = self.dims().to_vec();
        dims[d] = ids.elem_count();
        Ok(Tensor::from_storage(
            s,
            dims,
            || Op::IndexSelect {
                arg: self.clone(),
                ids: ids.clone(),
                dim: d,
            },
            &[self],
        ))
    }

    /// `out[i][j] = self[ids[i][j]][j]` for dim 0 (torch.gather; same rank, ids no larger).
    ///
    /// # Errors
    /// `Error::ShapeMismatch` when `ids` has another rank or is larger than `self` off `dim`;
    /// `Error::Msg` for non-i64 `ids`; `Error::IndexOutOfRange` for an id outside the dim.
    pub fn gather(&self, ids: &Tensor, dim: isize) -> Result<Tensor> {
        let d = resolve_dim(dim, self.rank(), "gather")?;
        let ok = ids.rank() == self.rank()
            && ids
                .dims()
                .iter()
                .zip(self.dims())
                .enumerate()
                .all(|(i, (&a, &b))| i == d || a <= b);
        if !ok {
            return Err(Error::ShapeMismatch {
                op: "gather",
                lhs: self.shape().clone(),
                rhs: ids.shape().clone(),
            });
        }
        Self::check_ids(ids, self.dims()[d], "gather")?;
        let s = self
            .storage()
            .gather(self.layout(), &**ids.storage(), ids.layout(), d)?;
        Ok(Tensor::from_storage(
            s,
            ids.shape().clone(),
            || Op::Gather {
                arg: self.clone(),
                ids: ids.clone(),
                dim: d,
            },
            &[self],
        ))
    }

    /// A copy of `self` with `src` added at the positions `ids` names along `dim` (torch.scatter_add).
    ///
    /// # Errors
    /// `Error::ShapeMismatch` when `ids` and `src` differ in shape or exceed `self` off `dim`;
    /// `Error::Msg` for non-i64 `ids`; `Error::IndexOutOfRange` for an id outside the dim.
    pub fn scatter_add(&self, ids: &Tensor, src: &Tensor, dim: isize) -> Result<Tensor> {
        let d = resolve_dim(dim, self.rank(), "scatter_add")?;
        super::same_device_dtype(self, src, "scatter_add")?;
        let ok = ids.rank() == self.rank()
            && src.rank() == self.rank()
            && ids.dims().iter().zip(src.dims()).all(|(a, b)| a <= b)
            && ids
                .dims()
                .iter()
                .zip(self.dims())
                .enumerate()
                .all(|(i, (&a, &b))| i == d || a <= b);
        if !ok {
            return Err(Error::ShapeMismatch {
                op: "scatter_add",
                lhs: self.shape().clone(),
                rhs: ids.shape().clone(),
            });
        }
        Self::check_ids(ids, self.dims()[d], "scatter_add")?;
        let s = self.storage().scatter_add(
            self.layout(),
            &**ids.storage(),
            ids.layout(),
            &**src.storage(),
            src.layout(),
            d,
        )?;
        Ok(Tensor::from_storage(
            s,
            self.shape().clone(),
            || Op::ScatterAdd {
                arg: self.clone(),
                ids: ids.clone(),
                src: src.clone(),
                dim: d,
            },
            &[self, src],
        ))
    }

    /// A copy of `self` with slice i of `src` added to slice `ids[i]` along `dim` (torch.index_add).
    ///
    /// # Errors
    /// `Error::ShapeMismatch` when `src` does not match `self` with `ids.len()` at `dim`;
    /// `Error::Msg` for `ids` that is not 1-D i64; `Error::IndexOutOfRange` for an id outside the
    /// dim.
    pub fn index_add(&self, ids: &Tensor, src: &Tensor, dim: isize) -> Result<Tensor> {
        let d = resolve_dim(dim, self.rank(), "index_add")?;
        super::same_device_dtype(self, src, "index_add")?;
        let ok = ids.rank() == 1
            && src.rank() == self.rank()
            && src.dims()[d] == ids.elem_count()
            && src
                .dims()
                .iter()
                .zip(self.dims())
                .enumerate()
                .all(|(i, (&a, &b))| i == d || a == b);
        if !ok {
            return Err(Error::ShapeMismatch {
                op: "index_add",
                lhs: self.shape().clone(),
                rhs: src.shape().clone(),
            });
        }
        Self::check_ids(ids, self.dims()[d], "index_add")?;
        let s = self.storage().index_add(
            self.layout(),
            &**ids.storage(),
            ids.layout(),
            &**src.storage(),
            src.layout(),
            d,
        )?;
        Ok(Tensor::from_storage(
            s,
            self.shape().clone(),
            || Op::IndexAdd {
                arg: self.clone(),
                ids: ids.clone(),
                src: src.clone(),
                dim: d,
            },
            &[self, src],
        ))
    }

    /// One-hot encoding of i64 class indices: shape `[..., num_classes]`, dtype `dtype`.
    ///
    /// # Errors
    /// `Error::Msg` when `self` is not i64; `Error::IndexOutOfRange` for a class outside
    /// `0..num_classes`.
    pub fn one_hot(&self, num_classes: usize, dtype: DType) -> Result<Tensor> {
        Self::check_ids(self, num_classes, "one_hot")?;
        let flat = self.reshape([self.elem_count(), 1])?;
        let zeros = Tensor::zeros([self.elem_count(), num_classes], dtype, &self.device())?;
        let ones = Tensor::ones([self.elem_count(), 1], dtype, &self.device())?;
        let out = zeros.scatter_add(&flat, &ones, 1)?;
        let mut dims = self.dims().to_vec();
        dims.push(num_classes);
        out.reshape(dims)
    }

    /// Rows of the `[num, dim]` table `self` for the i64 indices `ids` (any shape): `[..ids, dim]`.
    ///
    /// # Errors
    /// `Error::Msg` when `self` is not 2-D or `ids` is not i64; `Error::IndexOutOfRange` for an id
    /// outside `0..num`.
    pub fn embedding(&self, ids: &Tensor) -> Result<Tensor> {
        if self.rank() != 2 {
            return Err(Error::msg(format!(
                "embedding: table must be 2-D, got {}",
                self.shape()
            )));
        }
        let flat = ids.flatten(0, -1)?;
        let rows = self.index_select(&flat, 0)?;
        let mut dims = ids.dims().to_vec();
        dims.push(self.dims()[1]);
        rows.reshape(dims)
    }
}
