//! ONNX operators on mlfw tensors: elementwise math, activations, normalization and the
//! dense/convolution/pooling layers. Shape-manipulating operators are in `ops_shape.rs`.
//! Each returns the node's outputs in order; anything outside what is implemented is an
//! error naming the node (never a silently different result).

use mlfw_core::{Conv2dParams, DType, Pool2dParams, Result, Tensor, UnaryOp};

use super::node::NodeCtx;
use super::ops_shape;

/// Evaluates one node.
///
/// # Errors
/// `Error::Msg` naming the node: a missing input or attribute, an unsupported attribute value
/// (`select_last_index = 1`, an unknown GELU `approximate`, a Cast target), or an op no family
/// implements (listing [`SUPPORTED`](super::supported::SUPPORTED)); errors of the tensor ops on the
/// node's inputs.
pub fn eval(c: &NodeCtx) -> Result<Vec<Tensor>> {
    let x = || c.input(0);
    let one = |t: Tensor| Ok(vec![t]);
    match c.node.op_type.as_str() {
        "Add" => one(x()?.add(c.input(1)?)?),
        "Sub" => one(x()?.sub(c.input(1)?)?),
        "Mul" => one(x()?.mul(c.input(1)?)?),
        "Div" => one(x()?.div(c.input(1)?)?),
        "Pow" => one(pow(x()?, c.input(1)?)?),
        "Sqrt" => one(x()?.unary_op(UnaryOp::Sqrt)?),
        "Exp" => one(x()?.unary_op(UnaryOp::Exp)?),
        "Log" => one(x()?.unary_op(UnaryOp::Log)?),
        "Neg" => one(x()?.unary_op(UnaryOp::Neg)?),
        "Abs" => one(x()?.unary_op(UnaryOp::Abs)?),
        "Reciprocal" => one(x()?.unary_op(UnaryOp::Recip)?),
        "Sin" => one(x()?.sin()?),
        "Cos" => one(x()?.cos()?),
        "Sign" => one(x()?.sign()?),
        "Max" | "Min" => one(max_min(c)?),
        "Where" => one(x()?.where_cond(c.input(1)?, c.input(2)?)?),
        "Equal" => one(x()?.eq(c.input(1)?)?),
        "Less" => one(x()?.lt(c.input(1)?)?),
        "LessOrEqual" => one(x()?.le(c.input(1)?)?),
        "Greater" => one(x()?.gt(c.input(1)?)?),
        "GreaterOrEqual" => one(x()?.ge(c.input(1)?)?),
        "Not" => one(x()?.cmp_scalar(0.0, mlfw_core::CmpOp::Eq)?),
        "ArgMax" | "ArgMin" => {
            let x = x()?;
            if c.int("select_last_index", 0) != 0 {
                return Err(c.err("select_last_index = 1 is not supported"));
            }
            let axis = c.axis(c.int("axis", 0), x.rank())? as isize;
            let keep = c.int("keepdims", 1) != 0;
            one(if c.node.op_type == "ArgMax" {
                x.argmax(axis, keep)?
            } else {
                x.argmin(axis, keep)?
            })
        }
        "Erf" => one(x()?.erf()?),
        "Relu" => one(x()?.unary_op(UnaryOp::Relu)?),
        "LeakyRelu" => one(x()?.leaky_relu(c.float("alpha", 0.01) as f64)?),
        "Sigmoid" => one(x()?.unary_op(UnaryOp::Sigmoid)?),
        "Tanh" => one(x()?.unary_op(UnaryOp::Tanh)?),
        "Gelu" => match c.string("approximate", "none").as_str() {
            "none" => one(x()?.unary_op(UnaryOp::GeluErf)?),
            "tanh" => one(x()?.unary_op(UnaryOp::GeluTanh)?),
            other => Err(c.err(format!("approximate `{other}` is not supported"))),
        },
        "Softmax" | "LogSoftmax" => one(softmax(c)?),
        "Clip" => one(clip(c)?),
        "Cast" => {
            let to = super::tensor::dtype_of(c.int("to", 0) as i32).map_err(|e| c.err(e))?;
            one(x()?.to_dtype(to)?)
        }
        "Identity" => one(x()?.clone()),
        "Dropout" => dropout(c),
        "Gemm" => one(gemm(c)?),
        "MatMul" => one(x()?.matmul(c.input(1)?)?),
        "Conv" => one(conv(c)?),
        "MaxPool" | "AveragePool" => one(pool(c)?),
        "GlobalAveragePool" => {
            let x = x()?;
            let dims: Vec<isize> = (2..x.rank() as isize).collect();
            one(x.mean(&dims, true)?)
        }
        "BatchNormalization" => one(batch_norm(c)?),
        "LayerNormalization" => layer_norm(c),
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" => one(reduce(c)?),
        _ => ops_shape::eval(c),
    }
}

/// `x ^ e`; a scalar exponent uses the unary kernel (exact for 2, 0.5, …).
fn pow(x: &Tensor, e: &Tensor) -> Result<Tensor> {
    if e.elem_count() == 1 && e.rank() <= x.rank() {
        let v = first_f64(e)?;
        return x.powf(v);
    }
    x.pow(&e.to_dtype(x.dtype())?)
}

/// The first element of `t` as f64 (scalar operands such as Clip's bounds).
fn first_f64(t: &Tensor) -> Result<f64> {
    Ok(t.to_f64_vec()?.first().copied().unwrap_or(0.0))
}

fn softmax(c: &NodeCtx) -> Result<Tensor> {
    let x = c.input(0)?;
    let log = c.node.op_type == "LogSoftmax";
    let run = |t: &Tensor, d: isize| if log { t.log_softmax(d) } else { t.softmax(d) };
    if c.opset >= 13 {
        let axis = c.axis(c.int("axis", -1), x.rank())?;
        return run(x, axis as isize);
    }
    // Before opset 13 the input is coerced to 2-D at `axis` (default 1).
    let axis = c.axis(c.int("axis", 1), x.rank())?;
    let outer: usize = x.dims()[..axis].iter().product();
    let y = run(&x.reshape([outer, x.elem_count() / outer.max(1)])?, 1)?;
    y.reshape(x.dims().to_vec())
}

fn clip(c: &NodeCtx) -> Result<Tensor> {
    let x = c.input(0)?;
    let (lo, hi) = if c.opset >= 11 {
        let v = |k| -> Result<Option<f64>> { c.opt_input(k).map(first_f64).transpose() };
        (v(1)?, v(2)?)
    } else {
        (
            Some(c.float("min", f32::MIN) as f64),
            Some(c.float("max", f32::MAX) as f64),
        )
    };
    x.clamp(lo.unwrap_or(f64::NEG_INFINITY), hi.unwrap_or(f64::INFINITY))
}

/// Elementwise max or min of any number of inputs (broadcasting).
fn max_min(c: &NodeCtx) -> Result<Tensor> {
    let mut y = c.input(0)?.clone();
    for k in 1..c.inputs.len() {
        y = if c.node.op_type == "Max" {
            y.maximum(c.input(k)?)?
        } else {
            y.minimum(c.input(k)?)?
        };
    }
    Ok(y)
}

fn dropout(c: &NodeCtx) -> Result<Vec<Tensor>> {
    let x = c.input(0)?;
    if c.int("training_mode", 0) != 0
        || c.opt_input(2)
            .is_some_and(|t| first_f64(t).unwrap_or(0.0) != 0.0)
    {
        return Err(c.err("training mode is not supported (inference only)"));
    }
    let mut out = vec![x.clone()];
    if c.node.output.get(1).is_some_and(|o| !o.is_empty()) {
        out.push(x.ones_like()?.to_dtype(DType::Bool)?);
    }
    Ok(out)
}

fn gemm(c: &NodeCtx) -> Result<Tensor> {
    let (mut a, mut b) = (c.input(0)?.clone(), c.input(1)?.clone());
    if c.int("transA", 0) != 0 {
        a = a.t()?;
    }
    if c.int("transB", 0) != 0 {
        b = b.t()?;
    }
    let (alpha, beta) = (c.float("alpha", 1.0) as f64, c.float("beta", 1.0) as f64);
    let mut y = a.matmul(&b)?;
    if alpha != 1.0 {
        y = y.mul_scalar(alpha)?;
    }
    if let Some(bias) = c.opt_input(2) {
        let bias = if beta != 1.0 {
            bias.mul_scalar(beta)?
        } else {
            bias.clone()
        };
        y = y.add(&bias)?;
    }
    Ok(y)
}

/// Symmetric 2-D padding from `pads` (`[h0, w0, h1, w1]`) or `auto_pad`.
fn pads_2d(
    c: &NodeCtx,
    in_hw: (usize, usize),
    k: (usize, usize),
    s: (usize, usize),
    d: (usize, usize),
) -> Result<(usize, usize)> {
    let p = match c.string("auto_pad", "NOTSET").as_str() {
        "NOTSET" => c.ints("pads").unwrap_or(vec![0; 4]),
        "VALID" => vec![0; 4],
        mode @ ("SAME_UPPER" | "SAME_LOWER") => {
            let total = |i: usize, k: usize, s: usize, d: usize| {
                let out = i.div_ceil(s);
                ((out - 1) * s + (k - 1) * d + 1).saturating_sub(i) as i64
            };
            let (th, tw) = (total(in_hw.0, k.0, s.0, d.0), total(in_hw.1, k.1, s.1, d.1));
            let ((h0, h1), (w0, w1)) = (split(th), split(tw));
            if mode == "SAME_LOWER" {
                vec![h1, w1, h0, w0]
            } else {
                vec![h0, w0, h1, w1]
            }
        }
        other => return Err(c.err(format!("auto_pad `{other}` is not supported"))),
    };
    if p.len() != 4 || p.iter().any(|&v| v < 0) {
        return Err(c.err(format!("only 2-D pads are supported, got {p:?}")));
    }
    if p[0] != p[2] || p[1] != p[3] {
        return Err(c.err(format!("asymmetric pads {p:?} are not supported")));
    }
    Ok((p[0] as usize, p[1] as usize))
}

fn split(t: i64) -> (i64, i64) {
    (t / 2, t - t / 2)
}

/// A 2-element attribute as a pair, or `default`.
fn pair(c: &NodeCtx, name: &str, default: usize) -> Result<(usize, usize)> {
    match c.ints(name) {
        None => Ok((default, default)),
        Some(v) if v.len() == 2 && v.iter().all(|&x| x > 0) => Ok((v[0] as usize, v[1] as usize)),
        Some(v) => Err(c.err(format!("`{name}` {v:?}: only 2-D (NCHW) is supported"))),
    }
}

fn spatial(c: &NodeCtx, x: &Tensor) -> Result<(usize, usize)> {
    match x.dims() {
        [_, _, h, w] => Ok((*h, *w)),
        d => Err(c.err(format!(
            "only 2-D (NCHW) inputs are supported, got shape {d:?}"
        ))),
    }
}

fn conv(c: &NodeCtx) -> Result<Tensor> {
    let (x, w) = (c.input(0)?, c.input(1)?);
    let hw = spatial(c, x)?;
    let k = match w.dims() {
        [_, _, kh, kw] => (*kh, *kw),
        d => return Err(c.err(format!("only 2-D kernels are supported, got weight {d:?}"))),
    };
    let stride = pair(c, "strides", 1)?;
    let dilation = pair(c, "dilations", 1)?;
    let p = Conv2dParams {
        stride,
        dilation,
        padding: pads_2d(c, hw, k, stride, dilation)?,
        groups: c.int("group", 1).max(1) as usize,
    };
    x.conv2d(w, c.opt_input(2), p)
}

fn pool(c: &NodeCtx) -> Result<Tensor> {
    let x = c.input(0)?;
    let hw = spatial(c, x)?;
    let kernel = pair(c, "kernel_shape", 0)?;
    if kernel.0 == 0 {
        return Err(c.err("kernel_shape is required"));
    }
    let stride = pair(c, "strides", 1)?;
    let dilation = pair(c, "dilations", 1)?;
    let p = Pool2dParams {
        kernel,
        stride,
        dilation,
        padding: pads_2d(c, hw, kernel, stride, dilation)?,
        ceil_mode: c.int("ceil_mode", 0) != 0,
        count_include_pad: c.int("count_include_pad", 0) != 0,
    };
    if c.node.op_type == "MaxPool" {
        if c.node.output.get(1).is_some_and(|o| !o.is_empty()) {
            return Err(c.err("the Indices output is not supported"));
        }
        x.max_pool2d(p)
    } else {
        if dilation != (1, 1) {
            return Err(c.err("dilated average pooling is not supported"));
        }
        x.avg_pool2d(p)
    }
}

/// Per-channel `[1, C, 1, …]` view of a 1-D tensor for an input of rank `rank`.
fn channel(t: &Tensor, rank: usize) -> Result<Tensor> {
    let mut dims = vec![1; rank.max(2)];
    dims[1] = t.elem_count();
    t.reshape(dims)
}

fn batch_norm(c: &NodeCtx) -> Result<Tensor> {
    if c.int("training_mode", 0) != 0 {
        return Err(c.err("training mode is not supported (inference only)"));
    }
    let x = c.input(0)?;
    let eps = c.float("epsilon", 1e-5) as f64;
    let (scale, bias, mean, var) = (c.input(1)?, c.input(2)?, c.input(3)?, c.input(4)?);
    let factor = scale.div(&var.add_scalar(eps)?.sqrt()?)?;
    let shift = bias.sub(&mean.mul(&factor)?)?;
    let r = x.rank();
    x.mul(&channel(&factor, r)?)?.add(&channel(&shift, r)?)
}

fn layer_norm(c: &NodeCtx) -> Result<Vec<Tensor>> {
    let x = c.input(0)?;
    let axis = c.axis(c.int("axis", -1), x.rank())?;
    let eps = c.float("epsilon", 1e-5) as f64;
    let dims: Vec<isize> = (axis as isize..x.rank() as isize).collect();
    let mean = x.mean(&dims, true)?;
    let centered = x.sub(&mean)?;
    let inv_std = centered
        .square()?
        .mean(&dims, true)?
        .add_scalar(eps)?
        .rsqrt()?;
    let mut y = centered.mul(&inv_std)?.mul(c.input(1)?)?;
    if let Some(b) = c.opt_input(2) {
        y = y.add(b)?;
    }
    Ok(vec![y, mean, inv_std])
}

fn reduce(c: &NodeCtx) -> Result<Tensor> {
    let x = c.input(0)?;
    let axes_from_input = match c.node.op_type.as_str() {
        "ReduceSum" => c.opset >= 13,
        _ => c.opset >= 18,
    };
    let axes = if axes_from_input {
        c.ints_input(1)?
    } else {
        c.ints("axes")
    };
    let keep = c.int("keepdims", 1) != 0;
    let dims: Vec<isize> = match axes {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|&a| c.axis(a, x.rank()).map(|d| d as isize))
            .collect::<Result<_>>()?,
        _ if c.int("noop_with_empty_axes", 0) != 0 => return Ok(x.clone()),
        _ => (0..x.rank() as isize).collect(),
    };
    match c.node.op_type.as_str() {
        "ReduceSum" => x.sum(&dims, keep),
        "ReduceMax" => x.max(&dims, keep),
        "ReduceMin" => x.min(&dims, keep),
        _ => x.mean(&dims, keep),
    }
}
