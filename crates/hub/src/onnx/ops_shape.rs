//! ONNX operators that move or select elements, or compute shapes: Flatten, Reshape,
//! Transpose, Squeeze, Unsqueeze, Concat, Slice, Gather, Shape, Constant, ConstantOfShape.
//! Shape arguments (Reshape's `shape`, Slice's `starts`, …) are read as host integers.

use mlfw_core::{DType, Error, Result, Tensor};

use super::node::NodeCtx;

/// Evaluates one shape-family node; an op no family knows is an "unsupported" error.
///
/// # Errors
/// As [`super::ops::eval`]; `Error::Msg` naming the op, node and opset for an op not supported.
pub fn eval(c: &NodeCtx) -> Result<Vec<Tensor>> {
    let one = |t: Tensor| Ok(vec![t]);
    match c.node.op_type.as_str() {
        "Flatten" => {
            let x = c.input(0)?;
            let r = x.rank();
            let axis = if c.int("axis", 1) == r as i64 {
                r
            } else {
                c.axis(c.int("axis", 1), r)?
            };
            let outer: usize = x.dims()[..axis].iter().product();
            let inner: usize = x.dims()[axis..].iter().product();
            one(x.reshape([outer, inner])?)
        }
        "Reshape" => one(reshape(c)?),
        "Transpose" => {
            let x = c.input(0)?;
            let perm: Vec<usize> = match c.ints("perm") {
                Some(p) => p
                    .iter()
                    .map(|&a| c.axis(a, x.rank()))
                    .collect::<Result<_>>()?,
                None => (0..x.rank()).rev().collect(),
            };
            one(x.permute(&perm)?)
        }
        "Squeeze" => one(squeeze(c)?),
        "Unsqueeze" => one(unsqueeze(c)?),
        "Concat" => {
            let xs: Vec<Tensor> = (0..c.inputs.len())
                .map(|k| c.input(k).cloned())
                .collect::<Result<_>>()?;
            let rank = xs.first().map_or(0, |t| t.rank());
            let axis = c.axis(c.int("axis", 0), rank)?;
            one(Tensor::cat(&xs, axis as isize)?)
        }
        "Slice" => one(slice(c)?),
        "Expand" => one(expand(c)?),
        "GatherElements" => {
            let x = c.input(0)?;
            let axis = c.axis(c.int("axis", 0), x.rank())?;
            one(x.gather(&c.input(1)?.to_dtype(DType::I64)?, axis as isize)?)
        }
        "Gather" => one(gather(c)?),
        "Shape" => {
            let x = c.input(0)?;
            let r = x.rank() as i64;
            let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let (s, e) = (clampi(c.int("start", 0)), clampi(c.int("end", r)));
            let dims: Vec<i64> = x.dims()[s..e.max(s)].iter().map(|&d| d as i64).collect();
            let n = dims.len();
            one(Tensor::from_vec(dims, [n], &c.device)?)
        }
        "Constant" => {
            for name in [
                "value",
                "value_float",
                "value_floats",
                "value_int",
                "value_ints",
            ] {
                if let Some(t) = c.tensor_attr(name)? {
                    return one(t);
                }
            }
            Err(c.err(
                "no supported value attribute (sparse and string constants are not supported)",
            ))
        }
        "ConstantOfShape" => {
            let shape: Vec<usize> = c
                .ints_input(0)?
                .unwrap_or_default()
                .iter()
                .map(|&d| usize::try_from(d).map_err(|_| c.err(format!("negative dim {d}"))))
                .collect::<Result<_>>()?;
            let (value, dtype) = match c.tensor_attr("value")? {
                Some(v) => (v.to_f64_vec()?.first().copied().unwrap_or(0.0), v.dtype()),
                None => (0.0, DType::F32),
            };
            // The shape comes from the file: check it fits before allocating.
            let bytes = shape
                .iter()
                .try_fold(dtype.size_in_bytes() as u64, |n, &d| {
                    n.checked_mul(d as u64)
                });
            mlfw_data::memory::check_fits(bytes, "ConstantOfShape", "the model asks for too much")
                .map_err(|e| c.err(e))?;
            one(Tensor::full(value, shape, dtype, &c.device)?)
        }
        other => Err(Error::msg(format!(
            "onnx: unsupported op `{other}` (node `{}`, opset {}); supported: {}",
            c.node.name,
            c.opset,
            super::supported::SUPPORTED.join(", ")
        ))),
    }
}

fn reshape(c: &NodeCtx) -> Result<Tensor> {
    let x = c.input(0)?;
    let shape = match c.ints_input(1)? {
        Some(s) => s,
        None => c.ints("shape").ok_or_else(|| c.err("no target shape"))?,
    };
    let allow_zero = c.int("allowzero", 0) != 0;
    let dims: Vec<isize> = shape
        .iter()
        .enumerate()
        .map(|(i, &d)| match d {
            0 if !allow_zero => x
                .dims()
                .get(i)
                .map(|&v| v as isize)
                .ok_or_else(|| c.err("0 in shape past the input's rank")),
            d if d >= -1 => Ok(d as isize),
            d => Err(c.err(format!("bad dim {d} in target shape"))),
        })
        .collect::<Result<_>>()?;
    x.reshape_infer(&dims).map_err(|e| c.err(e))
}

/// The `axes` of Squeeze/Unsqueeze: an input from opset 13, an attribute before.
fn axes(c: &NodeCtx) -> Result<Option<Vec<i64>>> {
    if c.opset >= 13 {
        c.ints_input(1)
    } else {
        Ok(c.ints("axes"))
    }
}

fn squeeze(c: &NodeCtx) -> Result<Tensor> {
    let x = c.input(0)?;
    let drop: Vec<usize> = match axes(c)? {
        Some(a) => a
            .iter()
            .map(|&a| c.axis(a, x.rank()))
            .collect::<Result<_>>()?,
        None => (0..x.rank()).filter(|&d| x.dims()[d] == 1).collect(),
    };
    if let Some(&d) = drop.iter().find(|&&d| x.dims()[d] != 1) {
        return Err(c.err(format!("cannot squeeze dim {d} of size {}", x.dims()[d])));
    }
    let dims: Vec<usize> = (0..x.rank())
        .filter(|d| !drop.contains(d))
        .map(|d| x.dims()[d])
        .collect();
    x.reshape(dims)
}

fn unsqueeze(c: &NodeCtx) -> Result<Tensor> {
    let x = c.input(0)?;
    let a = axes(c)?.ok_or_else(|| c.err("axes are required"))?;
    let out_rank = x.rank() + a.len();
    let mut new: Vec<usize> = a
        .iter()
        .map(|&v| c.axis(v, out_rank))
        .collect::<Result<_>>()?;
    new.sort_unstable();
    let mut src = x.dims().iter();
    let dims: Vec<usize> = (0..out_rank)
        .map(|d| {
            if new.contains(&d) {
                1
            } else {
                src.next().copied().unwrap_or(1)
            }
        })
        .collect();
    x.reshape(dims)
}

fn slice(c: &NodeCtx) -> Result<Tensor> {
    let x = c.input(0)?;
    let (starts, ends, axes, steps) = if c.opset >= 10 {
        (
            c.ints_input(1)?,
            c.ints_input(2)?,
            c.ints_input(3)?,
            c.ints_input(4)?,
        )
    } else {
        (c.ints("starts"), c.ints("ends"), c.ints("axes"), None)
    };
    let starts = starts.ok_or_else(|| c.err("starts are required"))?;
    let ends = ends.ok_or_else(|| c.err("ends are required"))?;
    let n = starts.len();
    let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    if ends.len() != n || axes.len() != n || steps.len() != n {
        return Err(c.err("starts, ends, axes and steps differ in length"));
    }
    let mut y = x.clone();
    for i in 0..n {
        let axis = c.axis(axes[i], x.rank())?;
        let dim = x.dims()[axis] as i64;
        let step = steps[i];
        if step == 0 {
            return Err(c.err("a step of 0"));
        }
        let norm = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
        let (start, end) = if step > 0 {
            (norm(starts[i]).clamp(0, dim), norm(ends[i]).clamp(0, dim))
        } else {
            (
                norm(starts[i]).clamp(0, dim - 1),
                norm(ends[i]).clamp(-1, dim - 1),
            )
        };
        if step == 1 {
            y = y.narrow(axis as isize, start as usize, (end - start).max(0) as usize)?;
            continue;
        }
        let ids: Vec<i64> = if step > 0 {
            (start..end).step_by(step as usize).collect()
        } else {
            let mut v = Vec::new();
            let mut k = start;
            while k > end {
                v.push(k);
                k += step;
            }
            v
        };
        let len = ids.len();
        y = y.index_select(&Tensor::from_vec(ids, [len], &c.device)?, axis as isize)?;
    }
    Ok(y)
}

fn gather(c: &NodeCtx) -> Result<Tensor> {
    let (x, ids) = (c.input(0)?, c.input(1)?);
    let axis = c.axis(c.int("axis", 0), x.rank())?;
    let dim = x.dims()[axis] as i64;
    let flat: Vec<i64> = ids
        .to_dtype(DType::I64)?
        .to_vec::<i64>()?
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + dim } else { i };
            if (0..dim).contains(&j) {
                Ok(j)
            } else {
                Err(c.err(format!("index {i} is out of range for a dim of size {dim}")))
            }
        })
        .collect::<Result<_>>()?;
    let len = flat.len();
    let picked = x.index_select(&Tensor::from_vec(flat, [len], &c.device)?, axis as isize)?;
    let mut dims = x.dims()[..axis].to_vec();
    dims.extend_from_slice(ids.dims());
    dims.extend_from_slice(&x.dims()[axis + 1..]);
    picked.reshape(dims)
}

/// Expand: numpy broadcasting of the input with the target shape (either may be larger).
fn expand(c: &NodeCtx) -> Result<Tensor> {
    let x = c.input(0)?;
    let shape = c.ints_input(1)?.ok_or_else(|| c.err("shape is required"))?;
    let rank = x.rank().max(shape.len());
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            let a = (i + x.rank()).checked_sub(rank).map_or(1, |k| x.dims()[k]);
            let b = (i + shape.len())
                .checked_sub(rank)
                .map_or(1, |k| shape[k].max(0) as usize);
            match (a, b) {
                (a, 1) => Ok(a),
                (1, b) => Ok(b),
                (a, b) if a == b => Ok(a),
                (a, b) => Err(c.err(format!("cannot broadcast dim {a} to {b}"))),
            }
        })
        .collect::<Result<_>>()?;
    x.broadcast_to(dims)
}
