//! Derivative rules: for each recorded [`Op`], the gradients of its inputs given the
//! gradient of its output. Grouped by op family, mirroring mlfw-core's tensor modules
//! (`elementwise`, `reduce`, `linalg`, `nn_ops`, `view`, `index`).
//!
//! Every rule receives the op record, the op's output and the output's gradient, and
//! returns one `Option<Tensor>` per input in [`Op::inputs`] order (`None`: no gradient).

mod elementwise;
mod index;
mod linalg;
mod nn_ops;
mod reduce;
mod view;

use crate::function::FunctionNode;
use mlfw_core::{Error, Op, Result, Tensor};

/// Gradients of `op`'s inputs given `out` and its gradient `g`. Expensive rules skip the
/// inputs that do not require grad (e.g. the image fed to a first convolution).
///
/// # Errors
/// The rule for `op` failing (shapes, dtypes or devices of `out` and `g` that do not match
/// its inputs); an op without a gradient (argmax/argmin).
pub fn op_backward(op: &Op, out: &Tensor, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
    match op {
        Op::Unary(x, u) => Ok(vec![Some(elementwise::unary(x, out, g, *u)?)]),
        Op::Binary(a, b, bop) => {
            let (ga, gb) = elementwise::binary(a, b, out, g, *bop)?;
            Ok(vec![Some(ga), Some(gb)])
        }
        Op::Where(c, _, _) => {
            let (gt, gf) = elementwise::where_cond(c, g)?;
            Ok(vec![None, Some(gt), Some(gf)])
        }
        Op::Reduce {
            arg,
            op,
            dims,
            keepdim,
        } => Ok(vec![Some(reduce::reduce(
            arg, out, g, *op, dims, *keepdim,
        )?)]),
        Op::Softmax { dim, log, .. } => Ok(vec![Some(reduce::softmax(out, g, *dim, *log)?)]),
        Op::Matmul(a, b) => {
            let (ga, gb) = linalg::bmm(a, b, g)?;
            Ok(vec![ga, gb])
        }
        Op::Conv2d {
            input,
            weight,
            params,
        } => {
            let (gi, gw) = nn_ops::conv2d(input, weight, g, *params)?;
            Ok(vec![gi, gw])
        }
        Op::MaxPool2d { input, indices, .. } => {
            Ok(vec![Some(g.max_pool2d_backward(indices, input.shape())?)])
        }
        Op::AvgPool2d { input, params } => {
            Ok(vec![Some(g.avg_pool2d_backward(*params, input.shape())?)])
        }
        Op::AdaptiveAvgPool2d { input, .. } => {
            Ok(vec![Some(g.adaptive_avg_pool2d_backward(input.shape())?)])
        }
        Op::Reshape(x) => Ok(vec![Some(g.reshape(x.shape().clone())?)]),
        Op::Permute(_, perm) => Ok(vec![Some(view::permute(g, perm)?)]),
        Op::Narrow {
            arg,
            dim,
            start,
            len,
        } => Ok(vec![Some(view::narrow(arg, g, *dim, *start, *len)?)]),
        Op::Expand(x) => Ok(vec![Some(view::sum_to(g, x.shape())?)]),
        Op::Copy(_) => Ok(vec![Some(g.clone())]),
        Op::ToDType(x) => Ok(vec![Some(g.to_dtype(x.dtype())?)]),
        Op::ToDevice(x) => Ok(vec![Some(g.to_device(&x.device())?)]),
        Op::Cat(ts, dim) => view::cat(ts, g, *dim),
        Op::IndexSelect { arg, ids, dim } => Ok(vec![
            Some(arg.zeros_like()?.index_add(ids, g, *dim as isize)?),
            None,
        ]),
        Op::Gather { arg, ids, dim } => Ok(vec![
            Some(arg.zeros_like()?.scatter_add(ids, g, *dim as isize)?),
            None,
        ]),
        Op::ScatterAdd { ids, src, dim, .. } => Ok(vec![
            Some(g.clone()),
            None,
            Some(index::gather_src(g, ids, src, *dim)?),
        ]),
        Op::IndexAdd { ids, dim, .. } => Ok(vec![
            Some(g.clone()),
            None,
            Some(g.index_select(ids, *dim as isize)?),
        ]),
        Op::Cmp(..) => Ok(vec![None, None]),
        // Traced only (eager code records the custom op around them).
        Op::BatchNorm { .. } | Op::BatchNormBackward { .. } => Err(mlfw_core::Error::msg(
            "batch_norm kernels are differentiated by their custom op, not recorded alone",
        )),
        Op::FullLike(..) => Ok(vec![None]),
        Op::Conv2dBackwardInput {
            grad,
            weight,
            params,
            ..
        } => {
            let (gg, gw) = nn_ops::conv2d_backward_input(grad, weight, g, *params)?;
            Ok(vec![gg, gw])
        }
        Op::Conv2dBackwardWeight {
            input,
            grad,
            params,
            ..
        } => {
            let (gi, gg) = nn_ops::conv2d_backward_weight(input, grad, g, *params)?;
            Ok(vec![gi, gg])
        }
        Op::MaxPool2dBackward { grad, indices, .. } => Ok(vec![
            Some(nn_ops::max_pool2d_backward(grad, indices, g)?),
            None,
        ]),
        Op::AvgPool2dBackward { params, .. } => Ok(vec![Some(g.avg_pool2d(*params)?)]),
        Op::AdaptiveAvgPool2dBackward { grad, .. } => {
            let d = grad.dims();
            Ok(vec![Some(g.adaptive_avg_pool2d((d[2], d[3]))?)])
        }
        Op::Custom(node, inputs) => {
            let f = node
                .as_any()
                .downcast_ref::<FunctionNode>()
                .ok_or_else(|| {
                    Error::msg(format!(
                        "custom op `{}` was not made by mlfw_autograd::apply",
                        node.name()
                    ))
                })?;
            f.backward(inputs, out, g)
        }
    }
}
