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
/// Generic over how an input is referred to: a recorded op holds the input [`Tensor`]s
/// themselves (the default); a captured graph (`crate::graph`) holds node ids. One
/// vocabulary serves autograd, graphs, compilation and export.
///
/// Binary ops and `where` record inputs already broadcast to the output shape (the
/// broadcast itself is recorded as an [`Op::Expand`]), so their rules never reduce.
/// Ops marked "traced only" have no gradient and are recorded only while a graph is being
/// captured; the backward kernels (`*Backward*`) are recorded whenever an input requires grad,
/// so gradients can be differentiated again (`create_graph`).
#[derive(Clone)]
pub enum Op<T = Tensor> {
    Unary(T, UnaryOp),
    Binary(T, T, BinaryOp),
    /// `where(cond, t, f)`; the condition gets no gradient.
    Where(T, T, T),
    /// Sum/Max/Min over sorted `dims` (output keeps or drops them as `keepdim` says).
    Reduce {
        arg: T,
        op: ReduceOp,
        dims: Vec<usize>,
        keepdim: bool,
    },
    /// (Log-)softmax over `dim`.
    Softmax {
        arg: T,
        dim: usize,
        log: bool,
    },
    /// Batched matmul of 3-D tensors `[b, m, k] x [b, k, n]`.
    Matmul(T, T),
    Conv2d {
        input: T,
        weight: T,
        params: Conv2dParams,
    },
    /// Max pooling; `indices` is the op's second output (i64 positions `h * W + w`).
    MaxPool2d {
        input: T,
        indices: T,
        params: Pool2dParams,
    },
    AvgPool2d {
        input: T,
        params: Pool2dParams,
    },
    AdaptiveAvgPool2d {
        input: T,
        out_hw: (usize, usize),
    },
    /// A view or copy with another shape of the same elements.
    Reshape(T),
    /// Dims reordered: output dim i is input dim `perm[i]`.
    Permute(T, Vec<usize>),
    /// `narrow(dim, start, len)`.
    Narrow {
        arg: T,
        dim: usize,
        start: usize,
        len: usize,
    },
    /// Broadcast to a larger shape (stride 0); gradients sum back.
    Expand(T),
    /// An identity copy (e.g. `contiguous`).
    Copy(T),
    /// A dtype conversion.
    ToDType(T),
    /// A device transfer.
    ToDevice(T),
    /// Concatenation along `dim`.
    Cat(Vec<T>, usize),
    IndexSelect {
        arg: T,
        ids: T,
        dim: usize,
    },
    Gather {
        arg: T,
        ids: T,
        dim: usize,
    },
    ScatterAdd {
        arg: T,
        ids: T,
        src: T,
        dim: usize,
    },
    IndexAdd {
        arg: T,
        ids: T,
        src: T,
        dim: usize,
    },
    /// Comparison with broadcasting, a bool mask (traced only).
    Cmp(T, T, CmpOp),
    /// A tensor shaped, typed and placed like the input, filled with a value (traced only).
    FullLike(T, f64),
    /// conv2d's gradient w.r.t. its input (a transposed convolution of `grad`);
    /// output `[N, C, in_hw.0, in_hw.1]`.
    Conv2dBackwardInput {
        grad: T,
        weight: T,
        params: Conv2dParams,
        in_hw: (usize, usize),
    },
    /// conv2d's gradient w.r.t. its weight; output `[O, C/groups, k_hw.0, k_hw.1]`.
    Conv2dBackwardWeight {
        input: T,
        grad: T,
        params: Conv2dParams,
        k_hw: (usize, usize),
    },
    /// Max pooling's gradient: `grad` scattered to `indices` in an `[N, C, in_hw]` plane.
    MaxPool2dBackward {
        grad: T,
        indices: T,
        in_hw: (usize, usize),
    },
    /// Average pooling's gradient, output `[N, C, in_hw]`.
    AvgPool2dBackward {
        grad: T,
        params: Pool2dParams,
        in_hw: (usize, usize),
    },
    /// Adaptive average pooling's gradient, output `[N, C, in_hw]`.
    AdaptiveAvgPool2dBackward {
        grad: T,
        in_hw: (usize, usize),
    },
    /// Training-mode batch norm of a CPU f32 `input [N, C, *]` by the fused kernels, with the
    /// batch's statistics (traced only: eager code records it inside a custom autograd op);
    /// `stats` is the op's second output, `[2, C]` f32 (mean, biased variance). With `relu`
    /// the output is `max(bn, 0)`.
    BatchNorm {
        input: T,
        weight: T,
        bias: T,
        stats: T,
        eps: f64,
        relu: bool,
    },
    /// [`Op::BatchNorm`]'s gradient (PyTorch's `native_batch_norm_backward`, traced only):
    /// the output is `dx`, shaped `input`; `param_grads` is the second output, `[2, C]`
    /// (`dweight`, `dbias`). `output` (the forward's result) masks `grad` when `relu`.
    BatchNormBackward {
        grad: T,
        input: T,
        output: T,
        stats: T,
        weight: T,
        param_grads: T,
        eps: f64,
        relu: bool,
    },
    /// A user-defined op.
    Custom(Arc<dyn CustomOp>, Vec<T>),
}

impl<T> Op<T> {
    /// The values this op reads (gradients flow to these). Max pooling's `indices` is an
    /// output, not an input, and is not listed.
    pub fn inputs(&self) -> Vec<&T> {
        match self {
            Op::Unary(a, _)
            | Op::Reshape(a)
            | Op::Permute(a, _)
            | Op::Expand(a)
            | Op::Copy(a)
            | Op::ToDType(a)
            | Op::ToDevice(a)
            | Op::FullLike(a, _) => vec![a],
            Op::Binary(a, b, _) | Op::Matmul(a, b) | Op::Cmp(a, b, _) => vec![a, b],
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
            Op::Conv2dBackwardInput { grad, weight, .. } => vec![grad, weight],
            Op::Conv2dBackwardWeight { input, grad, .. } => vec![input, grad],
            Op::MaxPool2dBackward { grad, indices, .. } => vec![grad, indices],
            Op::AvgPool2dBackward { grad, .. } | Op::AdaptiveAvgPool2dBackward { grad, .. } => {
                vec![grad]
            }
            Op::BatchNorm {
                input,
                weight,
                bias,
                ..
            } => vec![input, weight, bias],
            Op::BatchNormBackward {
                grad,
                input,
                output,
                stats,
                weight,
                ..
            } => vec![grad, input, output, stats, weight],
        }
    }

    /// The op's second output, when it has one (max pooling's `indices`, batch norm's
    /// `stats`, batch norm backward's `param_grads`); not listed by [`Op::inputs`].
    pub fn secondary(&self) -> Option<&T> {
        match self {
            Op::MaxPool2d { indices, .. } => Some(indices),
            Op::BatchNorm { stats, .. } => Some(stats),
            Op::BatchNormBackward { param_grads, .. } => Some(param_grads),
            _ => None,
        }
    }

    /// Consumes the record, giving back every value it holds (inputs and max pooling's
    /// indices; used to drop long graphs iteratively instead of recursively).
    pub fn into_inputs(self) -> Vec<T> {
        match self {
            Op::Unary(a, _)
            | Op::Reshape(a)
            | Op::Permute(a, _)
            | Op::Expand(a)
            | Op::Copy(a)
            | Op::ToDType(a)
            | Op::ToDevice(a)
            | Op::FullLike(a, _) => vec![a],
            Op::Binary(a, b, _) | Op::Matmul(a, b) | Op::Cmp(a, b, _) => vec![a, b],
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
            Op::Conv2dBackwardInput { grad, weight, .. } => vec![grad, weight],
            Op::Conv2dBackwardWeight { input, grad, .. } => vec![input, grad],
            Op::MaxPool2dBackward { grad, indices, .. } => vec![grad, indices],
            Op::AvgPool2dBackward { grad, .. } | Op::AdaptiveAvgPool2dBackward { grad, .. } => {
                vec![grad]
            }
            Op::BatchNorm {
                input,
                weight,
                bias,
                stats,
                ..
            } => vec![input, weight, bias, stats],
            Op::BatchNormBackward {
                grad,
                input,
                output,
                stats,
                weight,
                param_grads,
                ..
            } => vec![grad, input, output, stats, weight, param_grads],
        }
    }

    /// The same op over other references to its values (`f` is called once per value held,
    /// including max pooling's `indices`, in field order).
    pub fn map<U>(&self, mut f: impl FnMut(&T) -> U) -> Op<U> {
        match self {
            Op::Unary(a, u) => Op::Unary(f(a), *u),
            Op::Binary(a, b, o) => Op::Binary(f(a), f(b), *o),
            Op::Where(c, a, b) => Op::Where(f(c), f(a), f(b)),
            Op::Reduce {
                arg,
                op,
                dims,
                keepdim,
            } => Op::Reduce {
                arg: f(arg),
                op: *op,
                dims: dims.clone(),
                keepdim: *keepdim,
            },
            Op::Softmax { arg, dim, log } => Op::Softmax {
                arg: f(arg),
                dim: *dim,
                log: *log,
            },
            Op::Matmul(a, b) => Op::Matmul(f(a), f(b)),
            Op::Conv2d {
                input,
                weight,
                params,
            } => Op::Conv2d {
                input: f(input),
                weight: f(weight),
                params: *params,
            },
            Op::MaxPool2d {
                input,
                indices,
                params,
            } => Op::MaxPool2d {
                input: f(input),
                indices: f(indices),
                params: *params,
            },
            Op::AvgPool2d { input, params } => Op::AvgPool2d {
                input: f(input),
                params: *params,
            },
            Op::AdaptiveAvgPool2d { input, out_hw } => Op::AdaptiveAvgPool2d {
                input: f(input),
                out_hw: *out_hw,
            },
            Op::Reshape(a) => Op::Reshape(f(a)),
            Op::Permute(a, p) => Op::Permute(f(a), p.clone()),
            Op::Narrow {
                arg,
                dim,
                start,
                len,
            } => Op::Narrow {
                arg: f(arg),
                dim: *dim,
                start: *start,
                len: *len,
            },
            Op::Expand(a) => Op::Expand(f(a)),
            Op::Copy(a) => Op::Copy(f(a)),
            Op::ToDType(a) => Op::ToDType(f(a)),
            Op::ToDevice(a) => Op::ToDevice(f(a)),
            Op::Cat(ts, d) => Op::Cat(ts.iter().map(f).collect(), *d),
            Op::IndexSelect { arg, ids, dim } => Op::IndexSelect {
                arg: f(arg),
                ids: f(ids),
                dim: *dim,
            },
            Op::Gather { arg, ids, dim } => Op::Gather {
                arg: f(arg),
                ids: f(ids),
                dim: *dim,
            },
            Op::ScatterAdd { arg, ids, src, dim } => Op::ScatterAdd {
                arg: f(arg),
                ids: f(ids),
                src: f(src),
                dim: *dim,
            },
            Op::IndexAdd { arg, ids, src, dim } => Op::IndexAdd {
                arg: f(arg),
                ids: f(ids),
                src: f(src),
                dim: *dim,
            },
            Op::Cmp(a, b, o) => Op::Cmp(f(a), f(b), *o),
            Op::FullLike(a, v) => Op::FullLike(f(a), *v),
            Op::Conv2dBackwardInput {
                grad,
                weight,
                params,
                in_hw,
            } => Op::Conv2dBackwardInput {
                grad: f(grad),
                weight: f(weight),
                params: *params,
                in_hw: *in_hw,
            },
            Op::Conv2dBackwardWeight {
                input,
                grad,
                params,
                k_hw,
            } => Op::Conv2dBackwardWeight {
                input: f(input),
                grad: f(grad),
                params: *params,
                k_hw: *k_hw,
            },
            Op::MaxPool2dBackward {
                grad,
                indices,
                in_hw,
            } => Op::MaxPool2dBackward {
                grad: f(grad),
                indices: f(indices),
                in_hw: *in_hw,
            },
            Op::AvgPool2dBackward {
                grad,
                params,
                in_hw,
            } => Op::AvgPool2dBackward {
                grad: f(grad),
                params: *params,
                in_hw: *in_hw,
            },
            Op::AdaptiveAvgPool2dBackward { grad, in_hw } => Op::AdaptiveAvgPool2dBackward {
                grad: f(grad),
                in_hw: *in_hw,
            },
            Op::BatchNorm {
                input,
                weight,
                bias,
                stats,
                eps,
                relu,
            } => Op::BatchNorm {
                input: f(input),
                weight: f(weight),
                bias: f(bias),
                stats: f(stats),
                eps: *eps,
                relu: *relu,
            },
            Op::BatchNormBackward {
                grad,
                input,
                output,
                stats,
                weight,
                param_grads,
                eps,
                relu,
            } => Op::BatchNormBackward {
                grad: f(grad),
                input: f(input),
                output: f(output),
                stats: f(stats),
                weight: f(weight),
                param_grads: f(param_grads),
                eps: *eps,
                relu: *relu,
            },
            Op::Custom(c, ts) => Op::Custom(c.clone(), ts.iter().map(f).collect()),
        }
    }

    /// A short name for messages and graph listings.
    pub fn name(&self) -> String {
        match self {
            Op::Unary(_, UnaryOp::Affine(_, a)) if *a == 0.0 => "mul_scalar".into(),
            Op::Unary(_, UnaryOp::Affine(m, _)) if *m == 1.0 => "add_scalar".into(),
            Op::Unary(_, u) => unary_name(u),
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
            Op::Cmp(_, _, c) => format!("{c:?}").to_lowercase(),
            Op::FullLike(..) => "full_like".into(),
            Op::Conv2dBackwardInput { .. } => "conv2d_backward_input".into(),
            Op::Conv2dBackwardWeight { .. } => "conv2d_backward_weight".into(),
            Op::MaxPool2dBackward { .. } => "max_pool2d_backward".into(),
            Op::AvgPool2dBackward { .. } => "avg_pool2d_backward".into(),
            Op::AdaptiveAvgPool2dBackward { .. } => "adaptive_avg_pool2d_backward".into(),
            Op::BatchNorm { .. } => "batch_norm".into(),
            Op::BatchNormBackward { .. } => "batch_norm_backward".into(),
            Op::Custom(c, _) => c.name().to_string(),
        }
    }
}

/// `UnaryOp` names without their parameters (those are listed separately in graphs).
fn unary_name(u: &UnaryOp) -> String {
    let s = format!("{u:?}");
    let base = s.split('(').next().unwrap_or(&s);
    let mut out = String::new();
    for (i, ch) in base.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(ch.to_lowercase());
    }
    out
}
