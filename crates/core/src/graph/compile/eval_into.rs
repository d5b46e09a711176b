//! Kernel steps of a plan written into the plan's buffers: [`eval_into`] runs a node's op the
//! way [`super::super::run::eval`] does, but writes its (primary) result into a planned
//! buffer instead of a fresh tensor, so a compiled step allocates no result memory in the
//! steady state. Each op calls the `_into` form of the eager CPU kernel (same kernel choice,
//! same arithmetic and summation order), so results are bit-identical to
//! [`Graph::run`](crate::graph::Graph::run).
//!
//! Covered (f32, CPU): binary elementwise ops left unfused, batched matmul, convolution
//! forward and input gradient, max pooling (values and indices) and its gradient, training
//! batch norm forward and backward (the statistics and parameter gradients, `[2, C]`, stay
//! fresh small tensors), `Sum`/`Max`/`Min` reductions, (log-)softmax over the last dim.
//! Other ops, other dtypes, autocast regions and outputs that would alias an input fall
//! back to the allocating `eval` (the caller's job: [`eval_into`] returns `Ok(None)` before
//! writing).

use crate::graph::{Node, ValueId};
use crate::op::Op;
use crate::params::{MatmulDims, ReduceOp};
use crate::{cpu, CpuStorage, DType, Device, Error, Result, Tensor};

/// Whether the plan may give node `node`'s value a planned buffer for [`eval_into`]: an f32
/// CPU op that [`eval_into`] covers.
pub(super) fn writes_into(node: &Node) -> bool {
    let crate::graph::NodeKind::Op(op) = &node.kind else {
        return false;
    };
    node.dtype == DType::F32
        && node.device == Device::Cpu
        && matches!(
            op,
            Op::Matmul(..)
                | Op::Binary(..)
                | Op::Conv2d { .. }
                | Op::Conv2dBackwardInput { .. }
                | Op::BatchNorm { .. }
                | Op::BatchNormBackward { .. }
                | Op::Softmax { .. }
                | Op::MaxPool2d { .. }
                | Op::MaxPool2dBackward { .. }
                | Op::Reduce {
                    op: ReduceOp::Sum | ReduceOp::Max | ReduceOp::Min,
                    ..
                }
        )
}

/// The values of node `k` that [`eval_into`] writes into planned buffers: its result, and
/// max pooling's indices.
pub(super) fn planned_values(node: &Node, k: usize) -> Vec<usize> {
    match &node.kind {
        crate::graph::NodeKind::Op(Op::MaxPool2d { indices, .. }) => vec![k, indices.0],
        _ => vec![k],
    }
}

/// Runs `f` on `out`'s elements as a mutable i64 slice.
///
/// # Errors
/// As [`with_out`], for i64.
fn with_out_i64<R>(out: &Tensor, f: impl FnOnce(&mut [i64]) -> Result<R>) -> Result<R> {
    let (n, off) = (out.elem_count(), out.layout().offset());
    if !out.is_contiguous() {
        return Err(Error::msg(
            "eval_into: the output buffer must be a contiguous view",
        ));
    }
    let mut guard = out.storage_mut();
    match guard.as_any_mut().downcast_mut::<CpuStorage>() {
        Some(CpuStorage::I64(v)) if v.len() >= off + n => f(&mut v[off..off + n]),
        _ => Err(Error::msg(format!(
            "eval_into: the index buffer must be CPU i64 of {n} elements, got {} on {:?}",
            out.dtype(),
            out.device()
        ))),
    }
}

/// Runs `f` on `out`'s elements as a mutable f32 slice.
///
/// # Errors
/// `out` not a contiguous CPU f32 tensor over a buffer that holds it; `f`'s own.
pub(super) fn with_out<R>(out: &Tensor, f: impl FnOnce(&mut [f32]) -> Result<R>) -> Result<R> {
    let (n, off) = (out.elem_count(), out.layout().offset());
    if !out.is_contiguous() {
        return Err(Error::msg(
            "eval_into: the output buffer must be a contiguous view",
        ));
    }
    let mut guard = out.storage_mut();
    match guard.as_any_mut().downcast_mut::<CpuStorage>() {
        Some(CpuStorage::F32(v)) if v.len() >= off + n => f(&mut v[off..off + n]),
        Some(CpuStorage::F32(v)) => Err(Error::msg(format!(
            "eval_into: output buffer of {} elements cannot hold {n} from offset {off}",
            v.len()
        ))),
        _ => Err(Error::msg(format!(
            "eval_into: the output buffer must be CPU f32, got {} on {:?}",
            out.dtype(),
            out.device()
        ))),
    }
}

/// Runs `f` on `t`'s whole f32 buffer (the view's layout applies), or returns `None` when
/// `t` is not CPU f32.
fn with_in<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    let guard = t.storage();
    match guard.as_any().downcast_ref::<CpuStorage>() {
        Some(CpuStorage::F32(v)) => Some(f(v)),
        _ => None,
    }
}

/// Calls `f(a's elements, b's elements, out's range)` for two CPU f32 operands; an error
/// naming `what` when one is not.
fn with_two(
    out: &Tensor,
    (a, b): (&Tensor, &Tensor),
    what: &str,
    f: impl FnOnce(&[f32], &[f32], &mut [f32]) -> Result<()>,
) -> Result<()> {
    with_out(out, |o| {
        with_in(a, |x| with_in(b, |y| f(x, y, o)))
            .flatten()
            .unwrap_or_else(|| {
                Err(Error::msg(format!(
                    "eval_into: {what} operands are not f32"
                )))
            })
    })
}

/// Evaluates `op` (the node's, whose value has `out`'s shape) into `out`, a planned buffer.
/// Returns `Ok(Some((out, secondary)))` when written, `Ok(None)`, having written nothing,
/// when this op, these inputs (another dtype or device, an input sharing `out`'s storage) or
/// an active autocast need the allocating `eval`.
///
/// # Errors
/// The op's own errors (as eager), a wrongly sized `out` buffer.
pub(super) fn eval_into<'a>(
    op: &Op<ValueId>,
    get: &impl Fn(&ValueId) -> Result<&'a Tensor>,
    out: &Tensor,
    second: Option<&Tensor>,
) -> Result<Option<(Tensor, Option<Tensor>)>> {
    if crate::autocast::autocast_dtype().is_some() {
        return Ok(None);
    }
    if out.dtype() != DType::F32 {
        return Ok(None);
    }
    for v in op.inputs() {
        let t = get(v)?;
        let float = t.dtype() == DType::F32 || matches!(op, Op::MaxPool2dBackward { .. });
        if !float || t.device() != Device::Cpu || t.same_storage(out) {
            return Ok(None);
        }
    }
    let done = |second: Option<Tensor>| Ok(Some((out.clone(), second)));
    match op {
        Op::Matmul(a, b) => {
            let (a, b) = (get(a)?, get(b)?);
            let (da, db) = (a.dims(), b.dims());
            if da.len() != 3 || db.len() != 3 || da[0] != db[0] || da[2] != db[1] {
                return Ok(None); // eager's shape error
            }
            let d = MatmulDims {
                b: da[0],
                m: da[1],
                k: da[2],
                n: db[2],
            };
            with_two(out, (a, b), "matmul", |x, y, o| {
                cpu::matmul_f32_into(x, a.layout(), y, b.layout(), d, o)
            })?;
            done(None)
        }
        Op::Binary(a, b, bop) => {
            let (a, b) = get(a)?.broadcast_pair(get(b)?, "binary")?;
            if a.elem_count() != out.elem_count() {
                return Ok(None); // eager's shape error
            }
            with_two(out, (&a, &b), "binary", |x, y, o| {
                cpu::binary_f32_into(x, a.layout(), y, b.layout(), *bop, o)
            })?;
            done(None)
        }
        Op::Conv2d {
            input,
            weight,
            params,
        } => {
            let (x, w) = (get(input)?, get(weight)?);
            with_two(out, (x, w), "conv2d", |xs, ws, o| {
                cpu::conv2d_f32_into(xs, x.layout(), ws, w.layout(), params, o)
            })?;
            done(None)
        }
        Op::Conv2dBackwardInput {
            grad,
            weight,
            params,
            ..
        } => {
            let (gy, w) = (get(grad)?, get(weight)?);
            let d = out.dims();
            if d.len() != 4 {
                return Ok(None);
            }
            let hw = (d[2], d[3]);
            with_two(out, (gy, w), "conv2d", |gs, ws, o| {
                let (gl, wl) = (gy.layout(), w.layout());
                cpu::conv2d_backward_input_f32_into(gs, gl, ws, wl, params, hw, o)
            })?;
            done(None)
        }
        Op::BatchNorm {
            input,
            weight,
            bias,
            eps,
            relu,
            ..
        } => {
            let (x, w, b) = (get(input)?, get(weight)?, get(bias)?);
            let stats = with_out(out, |o| x.batch_norm_train_into(w, b, *eps, *relu, o))?;
            done(Some(stats))
        }
        Op::BatchNormBackward {
            grad,
            input,
            output,
            stats,
            weight,
            eps,
            relu,
            ..
        } => {
            let (g, x, y, s, w) = (
                get(grad)?,
                get(input)?,
                get(output)?,
                get(stats)?,
                get(weight)?,
            );
            let pg = with_out(out, |o| {
                g.batch_norm_train_backward_into(x, y, s, w, *eps, *relu, o)
            })?;
            done(Some(pg))
        }
        Op::Softmax { arg, dim, log } => {
            let x = get(arg)?;
            if x.rank() == 0 || *dim != x.rank() - 1 {
                return Ok(None);
            }
            with_out(out, |o| {
                with_in(x, |xs| cpu::softmax_f32_into(xs, x.layout(), *log, o))
                    .unwrap_or_else(|| Err(Error::msg("eval_into: softmax input is not f32")))
            })?;
            done(None)
        }
        Op::Reduce { arg, op, dims, .. } => {
            let x = get(arg)?;
            let sorted = dims.windows(2).all(|w| w[0] < w[1]);
            if dims.is_empty() || !sorted {
                return Ok(None);
            }
            with_out(out, |o| {
                with_in(x, |xs| cpu::reduce_f32_into(xs, x.layout(), *op, dims, o))
                    .unwrap_or_else(|| Err(Error::msg("eval_into: reduce input is not f32")))
            })?;
            done(None)
        }
        Op::MaxPool2d { input, params, .. } => {
            let x = get(input)?;
            let Some(idx) = second.filter(|i| !i.same_storage(x) && !i.same_storage(out)) else {
                return Ok(None);
            };
            with_out(out, |o| {
                with_out_i64(idx, |is| {
                    with_in(x, |xs| {
                        cpu::max_pool2d_f32_into(xs, x.layout(), params, o, is)
                    })
                    .unwrap_or_else(|| Err(Error::msg("eval_into: max_pool2d input is not f32")))
                })
            })?;
            done(Some(idx.clone()))
        }
        Op::MaxPool2dBackward { grad, indices, .. } => {
            let (gy, idx) = (get(grad)?, get(indices)?);
            if gy.dtype() != DType::F32 {
                return Ok(None);
            }
            let shape = out.shape().clone();
            with_out(out, |o| {
                let ig = idx.storage();
                let Some(CpuStorage::I64(iv)) = ig.as_any().downcast_ref::<CpuStorage>() else {
                    return Err(Error::msg("max_pool2d_backward: indices must be CPU i64"));
                };
                with_in(gy, |gs| {
                    cpu::max_pool2d_backward_f32_into(gs, gy.layout(), iv, idx.layout(), &shape, o)
                })
                .unwrap_or_else(|| Err(Error::msg("eval_into: max_pool2d grad is not f32")))
            })?;
            done(None)
        }
        _ => Ok(None),
    }
}

/// A copy of `t`'s whole f32 buffer (for tests).
#[cfg(test)]
pub(super) fn with_in_test(t: &Tensor) -> Vec<f32> {
    with_in(t, <[f32]>::to_vec).expect("an f32 CPU tensor")
}
