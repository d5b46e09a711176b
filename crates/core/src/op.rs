//! The record of how a tensor was made, kept as plain data when an input requires grad.
//! mlfw-autograd gives these records their meaning (derivative rules); core knows none.

use crate::params::*;
use crate::Tensor;
use std::any::Any;
use std::sync::Arc;

/// A user-defined differentiable op (see `mlfw_autograd::Function`); core only stores it.
pub trait CustomOp: Send + Sync {
    /// A name for error messages and graph dumps.
    fn name(&self) -> &str;
    /// For downcasting by the autograd ring.
    fn as_any(&self) -> &dyn Any;
}

/// Which op produced a tensor, with its inputs and parameters.
///
/// Binary ops and `where` record inputs already broadcast to the output shape (the
/// broadcast itself is recorded as an [`Op::Expand`]), so their rules never reduce.
#[derive(Clone)]
pub enum Op {
    Unary(Tensor, UnaryOp),
    Binary(Tensor, Tensor, BinaryOp),
    /// `where(cond, t, f)`; the condition gets no gradient.
    Where(Tensor, Tensor, Tensor),
    /// Sum/Max/Min over sorted `dims` (output keeps or drops them as `keepdim` says).
    Reduce {
        arg: Tensor,
        op: ReduceOp,
        dims: Vec<usize>,
        keepdim: bool,
    },
    /// (Log-)softmax over `dim`.
    Softmax {
        arg: Tensor,
        dim: usize,
        log: bool,
    },
    /// Batched matmul of 3-D tensors `[b, m, k] x [b, k, n]`.
    Matmul(Tensor, Tensor),
    Conv2d {
        input: Tensor,
        weight: Tensor,
        params: Conv2dParams,
    },
    MaxPool2d {
        input: Tensor,
        indices: Tensor,
        params: Pool2dParams,
    },
    AvgPool2d {
        input: Tensor,
        params: Pool2dParams,
    },
    AdaptiveAvgPool2d {
        input: Tensor,
        out_hw: (usize, usize),
    },
    /// A view or copy with another shape of the same elements.
    Reshape(Tensor),
    /// Dims reordered: output dim i is input dim `perm[i]`.
    Permute(Tensor, Vec<usize>),
    /// `narrow(dim, start, len)`.
    Narrow {
        arg: Tensor,
        dim: usize,
        start: usize,
        len: usize,
    },
    /// Broadcast to a larger shape (stride 0); gradients sum back.
    Expand(Tensor),
    /// An identity copy (e.g. `contiguous`).
    Copy(Tensor),
    /// A dtype conversion.
    ToDType(Tensor),
    /// A device transfer.
    ToDevice(Tensor),
    /// Concatenation along `dim`.
    Cat(Vec<Tensor>, usize),
    IndexSelect {
        arg: Tensor,
        ids: Tensor,
        dim: usize,
    },
    Gather {
        arg: Tensor,
        ids: Tensor,
        dim: usize,
    },
    ScatterAdd {
        arg: Tensor,
        ids: Tensor,
        src: Tensor,
        dim: usize,
    },
    IndexAdd {
        arg: Tensor,
        ids: Tensor,
        src: Tensor,
        dim: usize,
    },
    /// A user-defined op.
    Custom(Arc<dyn CustomOp>, Vec<Tensor>),
}

impl Op {
    /// The tensors this op read (gradients flow to these).
    pub fn inputs(&self) -> Vec<&Tensor> {
        match self {
            Op::Unary(a, _)
            | Op::Reshape(a)
            | Op::Permute(a, _)
            | Op::Expand(a)
            | Op::Copy(a)
            | Op::ToDType(a)
            | Op::ToDevice(a) => vec![a],
            Op::Binary(a, b, _) | Op::Matmul(a, b) => vec![a, b],
            Op::Where(c, a, b) => vec![c, a, b],
            Op::Reduce { arg, .. } | Op::Softmax { arg, .. } | Op::Narrow { arg, .. } => vec![arg],
            Op::Conv2d { input, weight, .. } => vec![input, weight],
            Op::MaxPool2d { input, .. }
            | Op::AvgPool2d { input, .. }
            | Op::AdaptiveAvgPool2d { input, .. } => {
                vec![input]
            }
            Op::Cat(ts, _) | Op::Custom(_, ts) => ts.iter().collect(),
            Op::IndexSelect { arg, ids, .. } | Op::Gather { arg, ids, .. } => vec![arg, ids],
            Op::ScatterAdd { arg, ids, src, .. } | Op::IndexAdd { arg, ids, src, .. } => {
                vec![arg, ids, src]
            }
        }
    }

    /// Consumes the record, giving back the input tensors (used to drop long graphs
    /// iteratively instead of recursively).
    pub fn into_inputs(self) -> Vec<Tensor> {
        match self {
            Op::Unary(a, _)
            | Op::Reshape(a)
            | Op::Permute(a, _)
            | Op::Expand(a)
            | Op::Copy(a)
            | Op::ToDType(a)
            | Op::ToDevice(a) => vec![a],
            Op::Binary(a, b, _) | Op::Matmul(a, b) => vec![a, b],
            Op::Where(c, a, b) => vec![c, a, b],
            Op::Reduce { arg, .. } | Op::Softmax { arg, .. } | Op::Narrow { arg, .. } => vec![arg],
            Op::Conv2d { input, weight, .. } => vec![input, weight],
            Op::MaxPool2d { input, indices, .. } => vec![input, indices],
            Op::AvgPool2d { input, .. } | Op::AdaptiveAvgPool2d { input, .. } => vec![input],
            Op::Cat(ts, _) | Op::Custom(_, ts) => ts,
            Op::IndexSelect { arg, ids, .. } | Op::Gather { arg, ids, .. } => vec![arg, ids],
            Op::ScatterAdd { arg, ids, src, .. } | Op::IndexAdd { arg, ids, src, .. } => {
                vec![arg, ids, src]
            }
        }
    }

    /// A short name for messages.
    pub fn name(&self) -> String {
        match self {
            Op::Unary(_, u) => format!("{u:?}").to_lowercase(),
            Op::Binary(_, _, b) => format!("{b:?}").to_lowercase(),
            Op::Where(..) => "where".into(),
            Op::Reduce { op, .. } => format!("{op:?}").to_lowercase(),
            Op::Softmax { log, .. } => if *log { "log_softmax" } else { "softmax" }.into(),
            Op::Matmul(..) => "matmul".into(),
            Op::Conv2d { .. } => "conv2d".into(),
            Op::MaxPool2d { .. } => "max_pool2d".into(),
            Op::AvgPool2d { .. } => "avg_pool2d".into(),
            Op::AdaptiveAvgPool2d { .. } => "adaptive_avg_pool2d".into(),
            Op::Reshape(_) => "reshape".into(),
            Op::Permute(..) => "permute".into(),
            Op::Narrow { .. } => "narrow".into(),
            Op::Expand(_) => "expand".into(),
            Op::Copy(_) => "copy".into(),
            Op::ToDType(_) => "to_dtype".into(),
            Op::ToDevice(_) => "to_device".into(),
            Op::Cat(..) => "cat".into(),
            Op::IndexSelect { .. } => "index_select".into(),
            Op::Gather { .. } => "gather".into(),
            Op::ScatterAdd { .. } => "scatter_add".into(),
            Op::IndexAdd { .. } => "index_add".into(),
            Op::Custom(c, _) => c.name().to_string(),
        }
    }
}
