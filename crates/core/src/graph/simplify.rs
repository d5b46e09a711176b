//! Simplifying passes over a graph: dead-code elimination, common-subexpression
//! elimination, constant folding and algebraic identities that hold exactly in IEEE
//! arithmetic (`x·1`, `x/1`, `x+0`, `x−0`, `x^1`, `−(−x)`, reshape∘reshape,
//! permute∘permute, identity reshapes, permutes, expands and casts). `x·0 → 0` is never
//! applied (it is wrong for NaN and ±inf). The only bit-level difference any pass can
//! make is the sign of a zero: `x + 0` is `x` except that `−0 + 0` is `+0`.

use super::run::eval;
use super::{Graph, NodeKind, ValueId};
use crate::op::Op;
use crate::params::{BinaryOp, UnaryOp};
use crate::{Result, Shape, Tensor};
use std::collections::HashMap;

/// What [`Graph::simplify`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimplifyStats {
    /// Op nodes evaluated once and replaced by constants.
    pub folded: usize,
    /// Nodes replaced by an identity or merged into a composition.
    pub identities: usize,
    /// Duplicate nodes merged into an earlier equal one.
    pub merged: usize,
    /// Nodes removed because no output needed them.
    pub removed: usize,
}

impl Graph {
    /// Runs the passes to a fixed point and returns what they did. The simplified graph
    /// computes the same outputs (see the module docs for the one signed-zero caveat).
    ///
    /// # Errors
    /// An op failing while a constant is folded.
    pub fn simplify(&mut self) -> Result<SimplifyStats> {
        let mut st = SimplifyStats::default();
        for _ in 0..32 {
            let before = st;
            st.folded += self.fold_constants()?;
            st.identities += self.apply_identities()?;
            st.merged += self.merge_common()?;
            st.removed += self.eliminate_dead_code();
            if st == before {
                break;
            }
        }
        Ok(st)
    }

    fn constant(&self, v: ValueId) -> Option<&Tensor> {
        match &self.nodes[v.0].kind {
            NodeKind::Constant(t) => Some(t),
            _ => None,
        }
    }

    /// True when `v` is a constant whose every element equals `x` (bitwise sign included
    /// only through `==`, so `0` matches both zeros).
    fn constant_all(&self, v: ValueId, x: f64) -> Result<bool> {
        match self.constant(v) {
            Some(t) if t.dtype().is_float() && t.elem_count() <= 1 << 16 => {
                Ok(t.to_f64_vec()?.iter().all(|&e| e == x))
            }
            _ => Ok(false),
        }
    }

    /// Evaluates op nodes whose inputs are all constants (and fills of a fixed shape).
    fn fold_constants(&mut self) -> Result<usize> {
        let mut n = 0;
        for k in 0..self.nodes.len() {
            let node = &self.nodes[k];
            let NodeKind::Op(op) = &node.kind else {
                continue;
            };
            if node.shape.iter().any(|d| d.is_symbolic())
                || op.secondary().is_some()
                || matches!(op, Op::Custom(..))
            {
                continue;
            }
            let shape = Shape::new(node.shape_for(0));
            let value = if let Op::FullLike(_, v) = op {
                Tensor::full(*v, shape, node.dtype, &node.device)?
            } else if op.inputs().iter().all(|v| self.constant(**v).is_some()) {
                let get = |v: &ValueId| -> Result<&Tensor> {
                    self.constant(*v)
                        .ok_or_else(|| crate::Error::msg("not a constant"))
                };
                let _off = NoGrad::new();
                eval(op, &get, &shape, node)?.0.detach()
            } else {
                continue;
            };
            self.nodes[k].kind = NodeKind::Constant(value);
            n += 1;
        }
        Ok(n)
    }

    /// Replaces uses of node `from` by node `to` everywhere (inputs and outputs).
    fn replace_uses(&mut self, from: usize, to: usize) {
        let f = |v: &ValueId| if v.0 == from { ValueId(to) } else { *v };
        for node in &mut self.nodes {
            let kind = std::mem::replace(&mut node.kind, NodeKind::Input { index: 0 });
            node.kind = super::remap(kind, f);
        }
        for o in &mut self.outputs {
            *o = f(o);
        }
        for (_, s) in &mut self.writes {
            *s = f(s);
        }
    }

    /// The identity rewrites; returns how many applied.
    fn apply_identities(&mut self) -> Result<usize> {
        let mut n = 0;
        for k in 0..self.nodes.len() {
            let NodeKind::Op(op) = &self.nodes[k].kind else {
                continue;
            };
            let op = op.clone();
            let same_as = |v: &ValueId| {
                let (a, b) = (&self.nodes[v.0], &self.nodes[k]);
                a.shape == b.shape && a.dtype == b.dtype
            };
            // `Some(v)`: node k equals value v.
            let alias: Option<ValueId> = match &op {
                Op::Binary(a, b, BinaryOp::Mul) => {
                    if self.constant_all(*b, 1.0)? && same_as(a) {
                        Some(*a)
                    } else if self.constant_all(*a, 1.0)? && same_as(b) {
                        Some(*b)
                    } else {
                        None
                    }
                }
                Op::Binary(a, b, BinaryOp::Add) => {
                    if self.constant_all(*b, 0.0)? && same_as(a) {
                        Some(*a)
                    } else if self.constant_all(*a, 0.0)? && same_as(b) {
                        Some(*b)
                    } else {
                        None
                    }
                }
                Op::Binary(a, b, BinaryOp::Sub) if self.constant_all(*b, 0.0)? && same_as(a) => {
                    Some(*a)
                }
                Op::Binary(a, b, BinaryOp::Div) if self.constant_all(*b, 1.0)? && same_as(a) => {
                    Some(*a)
                }
                Op::Unary(a, UnaryOp::Powf(e)) if *e == 1.0 => Some(*a),
                Op::Unary(a, UnaryOp::Affine(m, c)) if *m == 1.0 && *c == 0.0 => Some(*a),
                Op::Unary(a, UnaryOp::Neg) => match &self.nodes[a.0].kind {
                    NodeKind::Op(Op::Unary(x, UnaryOp::Neg)) => Some(*x),
                    _ => None,
                },
                Op::Reshape(a) | Op::Expand(a) | Op::ToDType(a) if same_as(a) => Some(*a),
                Op::Permute(a, p) if p.iter().enumerate().all(|(i, &d)| i == d) => Some(*a),
                _ => None,
            };
            if let Some(v) = alias.filter(|v| same_as(v)) {
                self.replace_uses(k, v.0);
                n += 1;
                continue;
            }
            // Compositions: reshape(reshape(x)) -> reshape(x); permute(permute(x)) -> permute(x).
            let new_op = match &op {
                Op::Reshape(a) => match &self.nodes[a.0].kind {
                    NodeKind::Op(Op::Reshape(x)) => Some(Op::Reshape(*x)),
                    _ => None,
                },
                Op::Permute(a, p2) => match &self.nodes[a.0].kind {
                    NodeKind::Op(Op::Permute(x, p1)) => {
                        Some(Op::Permute(*x, p2.iter().map(|&i| p1[i]).collect()))
                    }
                    _ => None,
                },
                _ => None,
            };
            if let Some(op) = new_op {
                self.nodes[k].kind = NodeKind::Op(op);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Merges op nodes equal to an earlier one (same op, parameters, inputs, shape, dtype).
    fn merge_common(&mut self) -> Result<usize> {
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut n = 0;
        for k in 0..self.nodes.len() {
            let node = &self.nodes[k];
            let NodeKind::Op(op) = &node.kind else {
                continue;
            };
            if op.secondary().is_some() || matches!(op, Op::Custom(..)) {
                continue;
            }
            let key = format!(
                "{}|{}|{:?}|{:?}|{:?}|{}",
                op.name(),
                op_key(op),
                op.inputs(),
                node.shape,
                node.dtype,
                node.device
            );
            match seen.get(&key) {
                Some(&j) => {
                    self.replace_uses(k, j);
                    n += 1;
                }
                None => {
                    seen.insert(key, k);
                }
            }
        }
        Ok(n)
    }
}

/// Every parameter of an op as text (exact: floats print so they round-trip).
fn op_key(op: &Op<ValueId>) -> String {
    match op {
        Op::Unary(_, u) => format!("{u:?}"),
        Op::Binary(_, _, b) => format!("{b:?}"),
        Op::Reduce {
            op, dims, keepdim, ..
        } => format!("{op:?}{dims:?}{keepdim}"),
        Op::Softmax { dim, log, .. } => format!("{dim}{log}"),
        Op::Conv2d { params, .. } => format!("{params:?}"),
        Op::Conv2dBackwardInput { params, .. } | Op::Conv2dBackwardWeight { params, .. } => {
            format!("{params:?}")
        }
        Op::AvgPool2d { params, .. } | Op::AvgPool2dBackward { params, .. } => {
            format!("{params:?}")
        }
        Op::AdaptiveAvgPool2d { out_hw, .. } => format!("{out_hw:?}"),
        Op::Permute(_, p) => format!("{p:?}"),
        Op::Narrow {
            dim, start, len, ..
        } => format!("{dim},{start},{len}"),
        Op::Cat(_, d)
        | Op::IndexSelect { dim: d, .. }
        | Op::Gather { dim: d, .. }
        | Op::ScatterAdd { dim: d, .. }
        | Op::IndexAdd { dim: d, .. } => format!("{d}"),
        Op::Cmp(_, _, c) => format!("{c:?}"),
        Op::FullLike(_, v) => format!("{v:?}"),
        Op::BatchNorm { eps, relu, .. } | Op::BatchNormBackward { eps, relu, .. } => {
            format!("{eps:?},{relu}")
        }
        _ => String::new(),
    }
}

/// Turns gradient recording off while a constant is folded.
struct NoGrad(bool);

impl NoGrad {
    fn new() -> Self {
        NoGrad(crate::set_grad_enabled(false))
    }
}

impl Drop for NoGrad {
    fn drop(&mut self) {
        crate::set_grad_enabled(self.0);
    }
}
