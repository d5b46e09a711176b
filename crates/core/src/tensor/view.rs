//! Views without copies: reshape, permute, narrow, expand and friends; plus cat/stack.

use super::Tensor;
use crate::op::Op;
use crate::shape::resolve_dim;
use crate::{Error, Layout, Result, Shape};

impl Tensor {
    fn resolve(&self, dim: isize, op: &'static str) -> Result<usize> {
        resolve_dim(dim, self.rank(), op)
    }

    /// Same elements, new shape; a view when strides allow, else a copy. One dim may be
    /// given as `usize::MAX` via [`Tensor::reshape_infer`].
    ///
    /// # Errors
    /// `Error::Msg` when the new shape's element count differs.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.elem_count() != self.elem_count() {
            return Err(Error::msg(format!(
                "reshape: cannot view shape {} ({} elements) as {shape} ({} elements)",
                self.shape(),
                self.elem_count(),
                shape.elem_count()
            )));
        }
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        match self.layout().reshape_view(&shape) {
            Some(l) => Ok(self.view_with(l, || Op::Reshape(self.clone()))),
            None => {
                let c = self.copy()?;
                let l = Layout::contiguous(shape);
                Ok(c.view_with(l, || Op::Reshape(c.clone())))
            }
        }
    }

    /// Reshape where one entry may be `-1` (inferred), as `torch.reshape`.
    ///
    /// # Errors
    /// `Error::Msg` for more than one `-1`, another negative entry, or a count that does not
    /// divide.
    pub fn reshape_infer(&self, dims: &[isize]) -> Result<Tensor> {
        let known: usize = dims
            .iter()
            .filter(|&&d| d >= 0)
            .map(|&d| d as usize)
            .product();
        let n_infer = dims.iter().filter(|&&d| d == -1).count();
        if n_infer > 1 || dims.iter().any(|&d| d < -1) {
            return Err(Error::msg(format!("reshape: invalid shape {dims:?}")));
        }
        let resolved: Vec<usize> = dims
            .iter()
            .map(|&d| {
                if d == -1 {
                    self.elem_count().checked_div(known).unwrap_or(0)
                } else {
                    d as usize
                }
            })
            .collect();
        self.reshape(resolved)
    }

    /// Alias of [`Tensor::reshape`] (PyTorch's `view`).
    ///
    /// # Errors
    /// As [`Tensor::reshape`].
    pub fn view(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        self.reshape(shape)
    }

    /// Reorders dims: output dim i is input dim `perm[i]`.
    ///
    /// # Errors
    /// `Error::Msg` when `perm` is not a permutation of `0..rank`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let l = self.layout().permute(perm)?;
        Ok(self.view_with(l, || Op::Permute(self.clone(), perm.to_vec())))
    }

    /// Swaps two dims (negative dims count from the end).
    ///
    /// # Errors
    /// `Error::DimOutOfRange` for a dim outside `-rank..rank`.
    pub fn transpose(&self, d0: isize, d1: isize) -> Result<Tensor> {
        let (a, b) = (
            self.resolve(d0, "transpose")?,
            self.resolve(d1, "transpose")?,
        );
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Transpose of a 2-D tensor (identity for 0-D and 1-D, as PyTorch).
    ///
    /// # Errors
    /// `Error::Msg` for a tensor of rank above 2.
    pub fn t(&self) -> Result<Tensor> {
        match self.rank() {
            0 | 1 => Ok(self.clone()),
            2 => self.transpose(0, 1),
            r => Err(Error::msg(format!(
                "t: expects a tensor of at most 2 dims, got {r}"
            ))),
        }
    }

    /// Elements `start..start+len` along `dim`.
    ///
    /// # Errors
    /// `Error::DimOutOfRange` for a bad `dim`; `Error::Msg` when `start + len` exceeds its size.
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = self.resolve(dim, "narrow")?;
        let l = self.layout().narrow(d, start, len)?;
        if start == 0 && len == self.dims()[d] {
            return Ok(self.clone());
        }
        Ok(self.view_with(l, || Op::Narrow {
            arg: self.clone(),
            dim: d,
            start,
            len,
        }))
    }

    /// Alias of [`Tensor::narrow`] taking a range.
    ///
    /// # Errors
    /// As [`Tensor::narrow`].
    pub fn slice(&self, dim: isize, range: std::ops::Range<usize>) -> Result<Tensor> {
        self.narrow(dim, range.start, range.end.saturating_sub(range.start))
    }

    /// Index `index` of `dim`, removing that dim (negative index counts from the end).
    ///
    /// # Errors
    /// `Error::DimOutOfRange` for a bad `dim`; `Error::IndexOutOfRange` for `index` outside
    /// `-size..size`.
    pub fn select(&self, dim: isize, index: isize) -> Result<Tensor> {
        let d = self.resolve(dim, "select")?;
        let size = self.dims()[d] as isize;
        let i = if index < 0 { index + size } else { index };
        if i < 0 || i >= size {
            return Err(Error::IndexOutOfRange {
                op: "select",
                index: index as i64,
                size: size as usize,
            });
        }
        self.narrow(d as isize, i as usize, 1)?.squeeze(d as isize)
    }

    /// Removes `dim` if its size is 1 (else returns the tensor unchanged, as PyTorch).
    ///
    /// # Errors
    /// `Error::DimOutOfRange` for a bad `dim`.
    pub fn squeeze(&self, dim: isize) -> Result<Tensor> {
        let d = self.resolve(dim, "squeeze")?;
        if self.dims()[d] != 1 {
            return Ok(self.clone());
        }
        let mut dims = self.dims().to_vec();
        dims.remove(d);
        self.reshape(dims)
    }

    /// Removes every size-1 dim.
    ///
    /// # Errors
    /// None in practice (a view of the same elements).
    pub fn squeeze_all(&self) -> Result<Tensor> {
        let dims: Vec<usize> = self.dims().iter().copied().filter(|&d| d != 1).collect();
        self.reshape(dims)
    }

    /// Inserts a size-1 dim at `dim` (in `-(rank+1)..=rank`).
    ///
    /// # Errors
    /// `Error::DimOutOfRange` for `dim` outside `-(rank+1)..=rank`.
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let d = resolve_dim(dim, self.rank() + 1, "unsqueeze")?;
        let mut dims = self.dims().to_vec();
        dims.insert(d, 1);
        self.reshape(dims)
    }

    /// Broadcasts to `shape` without copying (stride 0 on repeated dims).
    ///
    /// # Errors
    /// `Error::ShapeMismatch` when `shape` has fewer dims, or a dim of size other than 1 differs.
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        let l = self.layout().broadcast_as(&shape)?;
        Ok(self.view_with(l, || Op::Expand(self.clone())))
    }

    /// Alias of [`Tensor::broadcast_to`] (PyTorch's `expand`).
    ///
    /// # Errors
    /// As [`Tensor::broadcast_to`].
    pub fn expand(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        self.broadcast_to(shape)
    }

    /// Merges dims `start..=end` into one.
    ///
    /// # Errors
    /// `Error::DimOutOfRange` for a bad dim; `Error::Msg` when `start > end`.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape([1]);
        }
        let (s, e) = (
            self.resolve(start, "flatten")?,
            self.resolve(end, "flatten")?,
        );
        if s > e {
            return Err(Error::msg(format!(
                "flatten: start dim {s} after end dim {e}"
            )));
        }
        let mut dims = self.dims()[..s].to_vec();
        dims.push(self.dims()[s..=e].iter().product());
        dims.extend_from_slice(&self.dims()[e + 1..]);
        self.reshape(dims)
    }

    /// Splits `dim` into pieces of `size` (the last may be smaller).
    ///
    /// # Errors
    /// `Error::Msg` when `size` is 0; `Error::DimOutOfRange` for a bad `dim`.
    pub fn split(&self, size: usize, dim: isize) -> Result<Vec<Tensor>> {
        let d = self.resolve(dim, "split")?;
        if size == 0 {
            return Err(Error::msg("split: size must be positive"));
        }
        let n = self.dims()[d];
        (0..n)
            .step_by(size)
            .map(|s| self.narrow(d as isize, s, size.min(n - s)))
            .collect()
    }

    /// Splits `dim` into `chunks` nearly equal pieces (as torch.chunk).
    ///
    /// # Errors
    /// `Error::Msg` when `chunks` is 0; `Error::DimOutOfRange` for a bad `dim`.
    pub fn chunk(&self, chunks: usize, dim: isize) -> Result<Vec<Tensor>> {
        if chunks == 0 {
            return Err(Error::msg("chunk: number of chunks must be positive"));
        }
        let d = self.resolve(dim, "chunk")?;
        let size = self.dims()[d].div_ceil(chunks).max(1);
        self.split(size, d as isize)
    }

    /// Concatenates along `dim`; all other dims must agree.
    ///
    /// # Errors
    /// `Error::Msg` for an empty list; `Error::ShapeMismatch` when ranks or the other dims differ;
    /// `Error::DTypeMismatch` / `Error::DeviceMismatch` between tensors.
    pub fn cat(ts: &[Tensor], dim: isize) -> Result<Tensor> {
        let first = ts
            .first()
            .ok_or_else(|| Error::msg("cat: expected at least one tensor"))?;
        let d = first.resolve(dim, "cat")?;
        let mut total = 0;
        for t in ts {
            super::same_device_dtype(first, t, "cat")?;
            let ok = t.rank() == first.rank()
                && t.dims()
                    .iter()
                    .zip(first.dims())
                    .enumerate()
                    .all(|(i, (a, b))| i == d || a == b);
            if !ok {
                return Err(Error::ShapeMismatch {
                    op: "cat",
                    lhs: first.shape().clone(),
                    rhs: t.shape().clone(),
                });
            }
            total += t.dims()[d];
        }
        let mut dims = first.dims().to_vec();
        dims[d] = total;
        let shape = Shape::new(dims);
        let mut out = first
            .device()
            .backend()?
            .full(shape.elem_count(), 0.0, first.dtype())?;
        let full = Layout::contiguous(shape.clone());
        let mut start = 0;
        for t in ts {
            let n = t.dims()[d];
            let dl = full.narrow(d, start, n)?;
            t.storage().copy_into(t.layout(), &mut *out, &dl)?;
            start += n;
        }
        let refs: Vec<&Tensor> = ts.iter().collect();
        Ok(Tensor::from_storage(
            out,
            shape,
            || Op::Cat(ts.to_vec(), d),
            &refs,
        ))
    }

    /// Stacks equal-shaped tensors along a new `dim`.
    ///
    /// # Errors
    /// `Error::Msg` for an empty list; `Error::ShapeMismatch` when the shapes differ; dtype and
    /// device errors as [`Tensor::cat`].
    pub fn stack(ts: &[Tensor], dim: isize) -> Result<Tensor> {
        let first = ts
            .first()
            .ok_or_else(|| Error::msg("stack: expected at least one tensor"))?;
        for t in ts {
            if t.shape() != first.shape() {
                return Err(Error::ShapeMismatch {
                    op: "stack",
                    lhs: first.shape().clone(),
                    rhs: t.shape().clone(),
                });
            }
        }
        let d = resolve_dim(dim, first.rank() + 1, "stack")?;
        let us = ts
            .iter()
            .map(|t| t.unsqueeze(d as isize))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&us, d as isize)
    }
}
