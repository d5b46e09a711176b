//! Running a graph: each node is evaluated by the same tensor method eager code calls, so
//! results are bit-identical to eager execution. Values are dropped after their last use.

use super::{Graph, NodeKind, ValueId};
use crate::op::Op;
use crate::{Error, Result, Shape, Tensor};

impl Graph {
    /// Evaluates the graph on `inputs` (one per placeholder, in order) and returns the
    /// outputs. Ops run on the inputs' device; parameters and constants must already be
    /// there ([`Graph::to_device`]). Gradients are recorded as for eager ops.
    ///
    /// # Errors
    /// Wrong number of inputs; an input whose dtype, rank or fixed dims differ from
    /// its placeholder's (the message names the placeholder), or whose batch size differs
    /// between inputs; a custom op (it cannot be replayed); any op's own error.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::msg(format!(
                "graph run: expected {} inputs ({}), got {}",
                self.inputs.len(),
                self.input_names().join(", "),
                inputs.len()
            )));
        }
        let n = self.check_inputs(inputs)?;
        let last_use = self.last_uses();
        let mut slots: Vec<Option<Tensor>> = vec![None; self.nodes.len()];
        for (i, x) in self.inputs.iter().zip(inputs) {
            slots[i.0] = Some(x.clone());
        }
        for (k, node) in self.nodes.iter().enumerate() {
            let value = match &node.kind {
                NodeKind::Input { .. } | NodeKind::Secondary { .. } => continue,
                NodeKind::Param(t) | NodeKind::Constant(t) => t.clone(),
                NodeKind::Op(op) => {
                    let get = |v: &ValueId| -> Result<&Tensor> {
                        slots[v.0].as_ref().ok_or_else(|| {
                            Error::msg(format!(
                                "graph run: value `{}` used after it was freed",
                                self.nodes[v.0].name
                            ))
                        })
                    };
                    let shape = Shape::new(node.shape_for(n));
                    let (out, second) = eval(op, &get, &shape, node)
                        .map_err(|e| e.context(format!("graph run: node `{}`", node.name)))?;
                    if let (Some(s), Some(at)) = (second, op.secondary()) {
                        slots[at.0] = Some(s);
                    }
                    if out.shape() != &shape {
                        return Err(Error::msg(format!(
                            "graph run: node `{}` produced shape {} where the graph expects {shape}",
                            node.name,
                            out.shape()
                        )));
                    }
                    out
                }
            };
            slots[k] = Some(value);
            for v in node.inputs() {
                if last_use[v.0] == k {
                    slots[v.0] = None;
                }
            }
        }
        self.perform_writes(|v| slots[v.0].clone())?;
        self.outputs
            .iter()
            .map(|o| {
                slots[o.0].clone().ok_or_else(|| {
                    Error::msg(format!(
                        "graph run: output `{}` was not computed",
                        self.nodes[o.0].name
                    ))
                })
            })
            .collect()
    }

    /// The placeholders' names, in order.
    pub fn input_names(&self) -> Vec<String> {
        self.inputs
            .iter()
            .map(|i| self.nodes[i.0].name.clone())
            .collect()
    }

    /// The same graph with parameters and constants moved to `device`.
    ///
    /// # Errors
    /// `Error::Msg` for a graph holding a custom op, which cannot be moved; device errors copying
    /// parameters and constants.
    pub fn to_device(&self, device: &crate::Device) -> Result<Graph> {
        let mut g = self.clone();
        for node in &mut g.nodes {
            match &mut node.kind {
                NodeKind::Param(t) | NodeKind::Constant(t) => *t = t.to_device(device)?,
                _ => {}
            }
            node.device = *device;
        }
        Ok(g)
    }

    /// Checks the inputs against the placeholders; returns the batch size (the capture's
    /// own when the graph has no symbolic batch).
    pub(crate) fn check_inputs(&self, inputs: &[Tensor]) -> Result<usize> {
        let mut batch: Option<usize> = None;
        for (id, x) in self.inputs.iter().zip(inputs) {
            let node = &self.nodes[id.0];
            let bad = |why: String| {
                Err(Error::msg(format!(
                    "graph run: input `{}` {why}",
                    node.name
                )))
            };
            if x.dtype() != node.dtype {
                return bad(format!("must be {}, got {}", node.dtype, x.dtype()));
            }
            let expect = node
                .shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            if x.rank() != node.shape.len() {
                return bad(format!("must have shape [{expect}], got {}", x.shape()));
            }
            for (d, &got) in node.shape.iter().zip(x.dims()) {
                if !d.is_symbolic() {
                    if got != d.fixed {
                        return bad(format!("must have shape [{expect}], got {}", x.shape()));
                    }
                    continue;
                }
                let n = match got.checked_sub(d.fixed) {
                    Some(r) if r % d.batch == 0 && r / d.batch > 0 => r / d.batch,
                    _ => return bad(format!("must have shape [{expect}], got {}", x.shape())),
                };
                if *batch.get_or_insert(n) != n {
                    return bad(format!(
                        "has batch size {n}, but another input has {}",
                        batch.unwrap_or(0)
                    ));
                }
            }
        }
        Ok(batch.or(self.batch).unwrap_or(0))
    }

    /// For each node, the index of the last node that reads it (outputs: never freed).
    fn last_uses(&self) -> Vec<usize> {
        let mut last = vec![0; self.nodes.len()];
        for (k, node) in self.nodes.iter().enumerate() {
            for v in node.inputs() {
                last[v.0] = k;
            }
        }
        for o in self
            .outputs
            .iter()
            .chain(self.writes.iter().map(|(_, s)| s))
        {
            last[o.0] = usize::MAX;
        }
        last
    }
}

/// Evaluates one op; max pooling also returns its indices.
pub(super) fn eval<'a>(
    op: &Op<ValueId>,
    get: &impl Fn(&ValueId) -> Result<&'a Tensor>,
    shape: &Shape,
    node: &super::Node,
) -> Result<(Tensor, Option<Tensor>)> {
    let hw = || -> (usize, usize) {
        let d = shape.dims();
        (d[d.len() - 2], d[d.len() - 1])
    };
    let one = |t: Tensor| Ok((t, None));
    match op {
        Op::Unary(a, u) => one(get(a)?.unary_op(*u)?),
        Op::Binary(a, b, o) => one(get(a)?.binary_op(get(b)?, *o)?),
        Op::Where(c, t, f) => one(get(c)?.where_cond(get(t)?, get(f)?)?),
        Op::Reduce {
            arg,
            op,
            dims,
            keepdim,
        } => {
            let ds: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
            one(get(arg)?.reduce_op(*op, &ds, *keepdim)?)
        }
        Op::Softmax { arg, dim, log } => {
            let x = get(arg)?;
            one(if *log {
                x.log_softmax(*dim as isize)?
            } else {
                x.softmax(*dim as isize)?
            })
        }
        Op::Matmul(a, b) => one(get(a)?.bmm(get(b)?)?),
        Op::Conv2d {
            input,
            weight,
            params,
        } => one(get(input)?.conv2d(get(weight)?, None, *params)?),
        Op::MaxPool2d { input, params, .. } => {
            let (v, i) = get(input)?.max_pool2d_with_indices(*params)?;
            Ok((v, Some(i)))
        }
        Op::AvgPool2d { input, params } => one(get(input)?.avg_pool2d(*params)?),
        Op::AdaptiveAvgPool2d { input, out_hw } => one(get(input)?.adaptive_avg_pool2d(*out_hw)?),
        Op::Reshape(a) => one(get(a)?.reshape(shape.clone())?),
        Op::Permute(a, p) => one(get(a)?.permute(p)?),
        Op::Narrow {
            arg, dim, start, ..
        } => one(get(arg)?.narrow(*dim as isize, *start, shape.dims()[*dim])?),
        Op::Expand(a) => one(get(a)?.broadcast_to(shape.clone())?),
        Op::Copy(a) => one(get(a)?.copy()?),
        Op::ToDType(a) => one(get(a)?.to_dtype(node.dtype)?),
        Op::ToDevice(a) => one(get(a)?.to_device(&node.device)?),
        Op::Cat(ts, d) => {
            let ts = ts
                .iter()
                .map(|t| get(t).cloned())
                .collect::<Result<Vec<_>>>()?;
            one(Tensor::cat(&ts, *d as isize)?)
        }
        Op::IndexSelect { arg, ids, dim } => one(get(arg)?.index_select(get(ids)?, *dim as isize)?),
        Op::Gather { arg, ids, dim } => one(get(arg)?.gather(get(ids)?, *dim as isize)?),
        Op::ScatterAdd { arg, ids, src, dim } => {
            one(get(arg)?.scatter_add(get(ids)?, get(src)?, *dim as isize)?)
        }
        Op::IndexAdd { arg, ids, src, dim } => {
            one(get(arg)?.index_add(get(ids)?, get(src)?, *dim as isize)?)
        }
        Op::Cmp(a, b, o) => one(get(a)?.cmp_op(get(b)?, *o)?),
        Op::FullLike(a, v) => one(get(a)?.full_like(*v)?),
        Op::Conv2dBackwardInput {
            grad,
            weight,
            params,
            ..
        } => one(get(grad)?.conv2d_backward_input(get(weight)?, *params, hw())?),
        Op::Conv2dBackwardWeight {
            input,
            grad,
            params,
            ..
        } => one(get(input)?.conv2d_backward_weight(get(grad)?, *params, hw())?),
        Op::MaxPool2dBackward { grad, indices, .. } => {
            one(get(grad)?.max_pool2d_backward(get(indices)?, shape)?)
        }
        Op::AvgPool2dBackward { grad, params, .. } => {
            one(get(grad)?.avg_pool2d_backward(*params, shape)?)
        }
        Op::AdaptiveAvgPool2dBackward { grad, .. } => {
            one(get(grad)?.adaptive_avg_pool2d_backward(shape)?)
        }
        Op::BatchNorm {
            input,
            weight,
            bias,
            eps,
            relu,
            ..
        } => {
            let (y, stats) = get(input)?.batch_norm_train(get(weight)?, get(bias)?, *eps, *relu)?;
            Ok((y, Some(stats)))
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
            let (dx, pg) = get(grad)?.batch_norm_train_backward(
                get(input)?,
                get(output)?,
                get(stats)?,
                get(weight)?,
                *eps,
                *relu,
            )?;
            Ok((dx, Some(pg)))
        }
        Op::Custom(c, _) => Err(Error::msg(format!(
            "custom op `{}` cannot be replayed from a graph",
            c.name()
        ))),
    }
}
