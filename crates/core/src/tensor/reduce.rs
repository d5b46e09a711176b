//! Reductions (sum, mean, max, min, arg-max/min, var, std, logsumexp) and (log-)softmax.

use super::Tensor;
use crate::op::Op;
use crate::params::ReduceOp;
use crate::shape::resolve_dim;
use crate::{DType, Error, Result, Shape};

impl Tensor {
    /// Resolves, sorts and dedups dims; an empty list means all dims.
    fn reduce_dims(&self, dims: &[isize], op: &'static str) -> Result<Vec<usize>> {
        if dims.is_empty() {
            return Ok((0..self.rank()).collect());
        }
        let mut ds = dims
            .iter()
            .map(|&d| resolve_dim(d, self.rank(), op))
            .collect::<Result<Vec<_>>>()?;
        ds.sort_unstable();
        ds.dedup();
        Ok(ds)
    }

    fn reduced_shape(&self, dims: &[usize], keepdim: bool) -> Shape {
        let out: Vec<usize> = self
            .dims()
            .iter()
            .enumerate()
            .filter_map(|(i, &d)| {
                if dims.contains(&i) {
                    keepdim.then_some(1)
                } else {
                    Some(d)
                }
            })
            .collect();
        Shape::new(out)
    }

    /// Runs a recorded Sum/Max/Min reduction.
    ///
    /// # Errors
    /// `Error::DimOutOfRange` for a dim outside `-rank..rank`; `Error::Msg` for `ArgMax`/`ArgMin`
    /// over other than one dim; `Error::UnsupportedDType` for bool tensors.
    pub fn reduce_op(&self, op: ReduceOp, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        if op == ReduceOp::Sum {
            if let Some(x) = crate::autocast::to_f32(self)? {
                return x.reduce_op(op, dims, keepdim);
            }
        }
        let ds = self.reduce_dims(dims, "reduce")?;
        let s = self.storage().reduce(self.layout(), op, &ds)?;
        let shape = self.reduced_shape(&ds, keepdim);
        let rec = matches!(op, ReduceOp::Sum | ReduceOp::Max | ReduceOp::Min);
        let inputs: &[&Tensor] = if rec && self.dtype().is_float() {
            &[self]
        } else {
            &[]
        };
        Ok(Tensor::from_storage(
            s,
            shape,
            || Op::Reduce {
                arg: self.clone(),
                op,
                dims: ds.clone(),
                keepdim,
            },
            inputs,
        ))
    }

    /// Sum over `dims` (empty = all).
    ///
    /// # Errors
    /// As [`Tensor::reduce_op`].
    pub fn sum(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce_op(ReduceOp::Sum, dims, keepdim)
    }

    /// Sum of all elements (0-dim).
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for bool tensors.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum(&[], false)
    }

    /// Mean over `dims` (empty = all).
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for non-float tensors; `Error::DimOutOfRange` for a bad dim.
    pub fn mean(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        if !self.dtype().is_float() {
            return Err(Error::UnsupportedDType {
                op: "mean",
                dtype: self.dtype(),
            });
        }
        let ds = self.reduce_dims(dims, "mean")?;
        let n: usize = ds.iter().map(|&d| self.dims()[d]).product();
        self.sum(dims, keepdim)?.mul_scalar(1.0 / n as f64)
    }

    /// Mean of all elements (0-dim).
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for non-float tensors.
    pub fn mean_all(&self) -> Result<Tensor> {
        self.mean(&[], false)
    }

    /// Maximum over `dims` (torch.amax; a NaN makes it NaN; the gradient is shared evenly
    /// among ties).
    ///
    /// # Errors
    /// As [`Tensor::reduce_op`].
    pub fn max(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce_op(ReduceOp::Max, dims, keepdim)
    }

    /// Minimum over `dims` (torch.amin; as [`Tensor::max`]).
    ///
    /// # Errors
    /// As [`Tensor::reduce_op`].
    pub fn min(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce_op(ReduceOp::Min, dims, keepdim)
    }

    /// Index (i64) of the first maximum along `dim`.
    ///
    /// # Errors
    /// `Error::DimOutOfRange` for a bad `dim`; `Error::UnsupportedDType` for bool tensors.
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce_op(ReduceOp::ArgMax, &[dim], keepdim)
    }

    /// Index (i64) of the first minimum along `dim`.
    ///
    /// # Errors
    /// `Error::DimOutOfRange` for a bad `dim`; `Error::UnsupportedDType` for bool tensors.
    pub fn argmin(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce_op(ReduceOp::ArgMin, &[dim], keepdim)
    }

    /// `(values, indices)` of the maximum along `dim` (torch.max(x, dim)): the index is the
    /// first maximal one (a NaN counts as maximal) and the values' gradient goes entirely to it,
    /// as in PyTorch (unlike [`Tensor::max`], which shares it among ties).
    ///
    /// # Errors
    /// As [`Tensor::argmax`].
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extreme_at_index(ReduceOp::ArgMax, dim, keepdim)
    }

    /// `(values, indices)` of the minimum along `dim` (torch.min(x, dim)); see [`Tensor::max_dim`].
    ///
    /// # Errors
    /// As [`Tensor::argmin`].
    pub fn min_dim(&self, dim: isize, keepdim: bool) -> Result<(Tensor, Tensor)> {
        self.extreme_at_index(ReduceOp::ArgMin, dim, keepdim)
    }

    /// The values at the arg-max/min indices, read with `gather` so that the gradient is
    /// routed to the returned index alone.
    fn extreme_at_index(
        &self,
        op: ReduceOp,
        dim: isize,
        keepdim: bool,
    ) -> Result<(Tensor, Tensor)> {
        let idx = self.reduce_op(op, &[dim], true)?;
        let vals = self.gather(&idx, dim)?;
        if keepdim {
            return Ok((vals, idx));
        }
        let d = resolve_dim(dim, self.rank(), "max/min")?;
        let shape = self.reduced_shape(&[d], false);
        Ok((vals.reshape(shape.clone())?, idx.reshape(shape)?))
    }

    /// Variance over `dims`; `unbiased` divides by n-1 (PyTorch's default).
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for non-float tensors; `Error::DimOutOfRange` for a bad dim.
    pub fn var(&self, dims: &[isize], unbiased: bool, keepdim: bool) -> Result<Tensor> {
        let ds = self.reduce_dims(dims, "var")?;
        let n: usize = ds.iter().map(|&d| self.dims()[d]).product();
        let ddof = if unbiased { 1 } else { 0 };
        let m = self.mean(dims, true)?;
        let d = self.sub(&m)?;
        d.square()?
            .sum(dims, keepdim)?
            .mul_scalar(1.0 / (n as f64 - ddof as f64).max(0.0))
    }

    /// Standard deviation over `dims`; its gradient at a constant input (std 0) is 0, as
    /// PyTorch defines it (not the NaN of `sqrt`'s infinite slope times zero).
    ///
    /// # Errors
    /// As [`Tensor::var`].
    pub fn std(&self, dims: &[isize], unbiased: bool, keepdim: bool) -> Result<Tensor> {
        self.var(dims, unbiased, keepdim)?.sqrt_of_sum()
    }

    /// Euclidean (L2) norm over `dims` (empty = all), torch.linalg.vector_norm; its gradient
    /// at an all-zero input is 0, as in PyTorch.
    ///
    /// # Errors
    /// As [`Tensor::var`].
    pub fn norm(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.square()?.sum(dims, keepdim)?.sqrt_of_sum()
    }

    /// `sqrt` of a non-negative sum (a variance, a sum of squares) whose gradient is 0 where
    /// the sum is 0, the rule PyTorch applies to std and norm. Built from `where` so that the
    /// zero points never reach `sqrt`'s rule: both branches stay differentiable and finite.
    fn sqrt_of_sum(&self) -> Result<Tensor> {
        if !self.requires_grad() {
            return self.sqrt();
        }
        let zero = self.cmp_scalar(0.0, crate::params::CmpOp::Eq)?;
        let safe = zero.where_cond(&self.ones_like()?, self)?;
        zero.where_cond(&self.zeros_like()?, &safe.sqrt()?)
    }

    /// `log(sum(exp(x)))` over `dims`, computed stably.
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for non-float tensors; `Error::DimOutOfRange` for a bad dim.
    pub fn logsumexp(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        let m = self.detach().max(dims, true)?;
        let m = m.where_cond_finite()?;
        let s = self.sub(&m)?.exp()?.sum(dims, true)?.log()?.add(&m)?;
        if keepdim {
            Ok(s)
        } else {
            let ds = self.reduce_dims(dims, "logsumexp")?;
            let shape = self.reduced_shape(&ds, false);
            s.reshape(shape)
        }
    }

    /// Replaces infinities by 0 (used to stabilise logsumexp of all -inf rows).
    fn where_cond_finite(&self) -> Result<Tensor> {
        let inf = self
            .abs()?
            .cmp_scalar(f64::INFINITY, crate::params::CmpOp::Eq)?;
        inf.where_cond(&self.zeros_like()?, self)
    }

    fn softmax_impl(&self, dim: isize, log: bool) -> Result<Tensor> {
        if let Some(x) = crate::autocast::to_f32(self)? {
            return x.softmax_impl(dim, log);
        }
        if !self.dtype().is_float() {
            return Err(Error::UnsupportedDType {
                op: "softmax",
                dtype: self.dtype(),
            });
        }
        if self.rank() == 0 {
            return self
                .reshape([1])?
                .softmax_impl(0, log)?
                .reshape(Shape::new(vec![]));
        }
        let d = resolve_dim(dim, self.rank(), "softmax")?;
        let last = self.rank() - 1;
        let moved = if d == last {
            self.clone()
        } else {
            self.transpose(d as isize, last as isize)?
        };
        let s = moved.storage().softmax(moved.layout(), log)?;
        let out = Tensor::from_storage(
            s,
            moved.shape().clone(),
            || Op::Softmax {
                arg: moved.clone(),
                dim: last,
                log,
            },
            &[&moved],
        );
        if d == last {
            Ok(out)
        } else {
            out.transpose(d as isize, last as isize)
        }
    }

    /// Softmax over `dim`. As in PyTorch, a row's max is subtracted whatever it is (a `+inf`
    /// makes the row NaN) and an all `-inf` row gives NaN.
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for non-float tensors; `Error::DimOutOfRange` for a bad `dim`.
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        self.softmax_impl(dim, false)
    }

    /// Log-softmax over `dim`.
    ///
    /// # Errors
    /// As [`Tensor::softmax`].
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        self.softmax_impl(dim, true)
    }

    /// Number of elements equal between two tensors, as f64 (handy for accuracy).
    ///
    /// # Errors
    /// As [`Tensor::cmp_op`] (shapes must broadcast, dtypes and devices agree).
    pub fn count_eq(&self, other: &Tensor) -> Result<f64> {
        self.eq(other)?
            .to_dtype(DType::F64)?
            .sum_all()?
            .item::<f64>()
    }
}
