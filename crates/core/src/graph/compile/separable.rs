//! Whether a captured step is **sample-separable**: whether it can run as micro-batches (each
//! a plan compiled for fewer samples, e.g. one per thread) whose outputs, combined, give the
//! whole batch's outputs up to summation order.
//!
//! [`sample_separable`] walks a graph with a symbolic batch `N` and classifies every value:
//!
//! - *fixed*: depends on no batched value (parameters, constants, `full_like` of anything);
//! - *batched*: one dim of its shape is batch-sized, and every op on the way kept samples apart
//!   (elementwise ops, convolution and pooling over dim 0, reductions, softmax, narrow and cat
//!   over other dims, matmul over non-contracted dims, reshapes that keep each sample's
//!   elements in one block, permutes);
//! - *sum*: a sum over the samples (a reduction over the batch dim, a matmul contracting it, a
//!   convolution's weight gradient), possibly followed by linear ops;
//! - *scale*: `c / D` with `c` fixed and `D` the **normalizer**: a sum over the samples used as
//!   a divisor (cross-entropy's mean divides by the number of counted targets, which during a
//!   capture is a value computed from the targets, not a constant);
//! - *other*: any other value computed from several samples (a maximum over the batch, a
//!   product of sums, batch norm's statistics).
//!
//! The step is separable when no *sum* or *other* value flows back into a batched value
//! (batch norm's statistics, a hand-written `x - x.sum(0) / D`), the graph writes no state
//! (batch norm's running statistics would be updated once per micro-batch), and every output
//! is fixed, batched over dim 0 (combined by concatenation), or a sum. A sum output is
//! combined as `Σ_k out_k` when it does not depend on the normalizer, and as
//! `Σ_k (D_k / D)·out_k` when it is homogeneous of degree one in `1 / D`: each micro-batch's
//! plan divides by its own `D_k` (the mean's `1/N` becomes `1/n_k`), and `D = Σ_k D_k`. The
//! degree is tracked per value (`D`-free, linear in `1/D`, or mixed; exact zeros are neutral,
//! as ReLU's backward selects them), so a loss or gradient that mixes both is refused.
//!
//! The analysis is conservative: an op it does not know to keep samples apart, applied to a
//! batched value, makes the step non-separable, with a message naming the node.

use super::super::{Graph, NodeKind, SymDim, ValueId};
use crate::op::Op;
use crate::params::{BinaryOp, ReduceOp, UnaryOp};
use crate::{Error, Result};

/// How one output of a separable graph is assembled from the micro-batches' outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Batched over dim 0: the micro-batches' outputs concatenated along dim 0, in order.
    Concat,
    /// A sum over the samples not involving the normalizer: `Σ_k out_k`.
    Sum,
    /// A sum over the samples divided by the normalizer `D` (a mean loss, its gradients):
    /// `Σ_k (D_k / D)·out_k`, with `D_k` the normalizer of micro-batch `k` and `D = Σ_k D_k`.
    NormalizedSum,
    /// Independent of the batch: any micro-batch's output.
    Same,
}

/// The result of [`sample_separable`]: how each output combines, and the normalizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Separable {
    /// One per graph output, in order.
    pub combine: Vec<Combine>,
    /// The normalizer `D` (a scalar sum over the samples that some output is divided by);
    /// present whenever an output is [`Combine::NormalizedSum`]. Compile a copy of the graph
    /// with it appended to the outputs to read each micro-batch's `D_k`.
    pub normalizer: Option<ValueId>,
}

/// Degree of a value in `1 / D` (the normalizer's reciprocal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deg {
    /// Exactly zero (neutral in sums and selections).
    Zero,
    /// Independent of `D`.
    D0,
    /// Linear in `1 / D`.
    D1,
    /// Neither.
    Mixed,
}

fn join(a: Deg, b: Deg) -> Deg {
    match (a, b) {
        (Deg::Zero, x) | (x, Deg::Zero) => x,
        (x, y) if x == y => x,
        _ => Deg::Mixed,
    }
}

fn product(a: Deg, b: Deg) -> Deg {
    match (a, b) {
        (Deg::Zero, _) | (_, Deg::Zero) => Deg::Zero,
        (Deg::D0, x) | (x, Deg::D0) => x,
        _ => Deg::Mixed,
    }
}

fn nonlinear(ds: &[Deg]) -> Deg {
    if ds.iter().all(|d| matches!(d, Deg::Zero | Deg::D0)) {
        Deg::D0
    } else {
        Deg::Mixed
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Fixed,
    /// Batched, with the batch-sized dim at this axis.
    Batched(usize),
    Scale,
    Sum,
    Other,
    /// Samples are mixed into a batched value; the reason.
    Poison(String),
}

#[derive(Debug, Clone)]
struct Info {
    kind: Kind,
    deg: Deg,
}

/// The one batch-sized dim of a shape: `Ok(None)` when there is none, `Err` when several.
fn batch_axis(shape: &[SymDim]) -> std::result::Result<Option<usize>, ()> {
    let mut it = shape.iter().enumerate().filter(|(_, d)| d.is_symbolic());
    match (it.next(), it.next()) {
        (None, _) => Ok(None),
        (Some((i, _)), None) => Ok(Some(i)),
        _ => Err(()),
    }
}

/// Whether each sample's elements form one block, in sample order, on both sides of a
/// reshape: the batch-sized dim `a·N` comes first (after size-1 dims) in both shapes.
fn reshape_keeps_samples(a: &[SymDim], b: &[SymDim]) -> bool {
    // Only size-1 dims added or removed: the same layout.
    let big = |s: &[SymDim]| -> Vec<SymDim> {
        s.iter()
            .copied()
            .filter(|d| *d != SymDim::fixed(1))
            .collect()
    };
    if big(a) == big(b) {
        return true;
    }
    let lead = |s: &[SymDim]| match batch_axis(s) {
        Ok(Some(i)) => s[..i].iter().all(|d| *d == SymDim::fixed(1)) && s[i].fixed == 0,
        _ => false,
    };
    lead(a) && lead(b)
}

/// Whether a constant is all zeros (small constants only).
fn is_zero(t: &crate::Tensor) -> bool {
    t.elem_count() <= 64
        && t.to_dtype(crate::DType::F64)
            .and_then(|t| t.to_vec::<f64>())
            .is_ok_and(|v| v.iter().all(|&x| x == 0.0))
}

/// Decides whether `graph` (captured with a symbolic batch) is sample-separable, and how
/// each output combines (see the module docs).
///
/// # Errors
/// The graph is not separable: no symbolic batch, state writes, or a value that mixes
/// samples reaching an output (the message names the first node that does).
pub fn sample_separable(graph: &Graph) -> Result<Separable> {
    let no = |why: String| Err(Error::msg(format!("not sample-separable: {why}")));
    if graph.batch.is_none() {
        return no("the step was captured for one batch size only".into());
    }
    if let Some((p, _)) = graph.writes.first() {
        return no(format!(
            "the step writes `{}` in place (once per micro-batch, not once per batch)",
            graph.node(*p).name
        ));
    }
    let mut infos: Vec<Info> = Vec::with_capacity(graph.nodes.len());
    let mut normalizer: Option<ValueId> = None;
    for (k, node) in graph.nodes.iter().enumerate() {
        let info = match &node.kind {
            NodeKind::Input { .. } => match batch_axis(&node.shape) {
                Ok(None) => fixed(Deg::D0),
                Ok(Some(0)) if node.shape[0] == (SymDim { batch: 1, fixed: 0 }) => Info {
                    kind: Kind::Batched(0),
                    deg: Deg::D0,
                },
                _ => poison(format!("input `{}` is not batched over dim 0", node.name)),
            },
            NodeKind::Param(_) => fixed(Deg::D0),
            NodeKind::Constant(t) => fixed(if is_zero(t) { Deg::Zero } else { Deg::D0 }),
            NodeKind::Secondary { of } => {
                let of = &infos[of.0];
                let kind = match (&of.kind, batch_axis(&node.shape)) {
                    (Kind::Poison(r), _) => Kind::Poison(r.clone()),
                    (Kind::Fixed, _) => Kind::Fixed,
                    (Kind::Batched(_), Ok(Some(ax))) => Kind::Batched(ax),
                    _ => Kind::Other,
                };
                Info {
                    kind,
                    deg: nonlinear(&[of.deg]),
                }
            }
            NodeKind::Op(op) => op_info(graph, k, op, &infos, &mut normalizer),
        };
        infos.push(info);
    }
    let mut combine = Vec::with_capacity(graph.outputs.len());
    for o in &graph.outputs {
        let (node, info) = (graph.node(*o), &infos[o.0]);
        let c = match (&info.kind, info.deg) {
            (Kind::Poison(r), _) => return no(r.clone()),
            (Kind::Fixed, _) => Combine::Same,
            (Kind::Batched(0), Deg::Zero | Deg::D0) if node.shape[0].fixed == 0 => Combine::Concat,
            (Kind::Sum, Deg::Zero | Deg::D0) => Combine::Sum,
            (Kind::Sum, Deg::D1) if normalizer.is_some() => Combine::NormalizedSum,
            (kind, deg) => {
                return no(format!(
                    "output `{}` is {} (degree {deg:?} in the normalizer's reciprocal)",
                    node.name,
                    match kind {
                        Kind::Batched(_) => "batched but not over dim 0 alone, or scaled by 1/D",
                        Kind::Scale => "a scale computed from the batch",
                        _ => "computed from several samples, not as a sum",
                    }
                ))
            }
        };
        combine.push(c);
    }
    Ok(Separable {
        combine,
        normalizer,
    })
}

fn fixed(deg: Deg) -> Info {
    Info {
        kind: Kind::Fixed,
        deg,
    }
}

fn poison(why: String) -> Info {
    Info {
        kind: Kind::Poison(why),
        deg: Deg::Mixed,
    }
}

/// The degree in `1/D` of an op's value from its inputs' degrees (the normalizer division is
/// handled by the caller).
fn op_deg(op: &Op<ValueId>, d: &dyn Fn(&ValueId) -> Deg) -> Deg {
    match op {
        Op::FullLike(_, v) => {
            if *v == 0.0 {
                Deg::Zero
            } else {
                Deg::D0
            }
        }
        Op::Binary(a, b, BinaryOp::Add | BinaryOp::Sub) => join(d(a), d(b)),
        Op::Binary(a, b, BinaryOp::Mul) | Op::Matmul(a, b) => product(d(a), d(b)),
        Op::Conv2d { input, weight, .. } => product(d(input), d(weight)),
        Op::Conv2dBackwardInput { grad, weight, .. } => product(d(grad), d(weight)),
        Op::Conv2dBackwardWeight { input, grad, .. } => product(d(input), d(grad)),
        Op::Binary(a, b, BinaryOp::Div) => match d(b) {
            Deg::D0 => d(a),
            _ => Deg::Mixed,
        },
        Op::Where(c, t, f) => match d(c) {
            Deg::Zero | Deg::D0 => join(d(t), d(f)),
            _ => Deg::Mixed,
        },
        Op::Unary(a, UnaryOp::Neg) => d(a),
        Op::Unary(a, UnaryOp::Affine(_, add)) if *add == 0.0 => d(a),
        Op::Reduce {
            arg,
            op: ReduceOp::Sum,
            ..
        }
        | Op::Reshape(arg)
        | Op::Permute(arg, _)
        | Op::Narrow { arg, .. }
        | Op::Expand(arg)
        | Op::Copy(arg)
        | Op::ToDType(arg)
        | Op::ToDevice(arg)
        | Op::AvgPool2d { input: arg, .. }
        | Op::AdaptiveAvgPool2d { input: arg, .. }
        | Op::AvgPool2dBackward { grad: arg, .. }
        | Op::AdaptiveAvgPool2dBackward { grad: arg, .. } => d(arg),
        Op::MaxPool2dBackward { grad, indices, .. } => match d(indices) {
            Deg::Zero | Deg::D0 => d(grad),
            _ => Deg::Mixed,
        },
        Op::IndexSelect { arg, ids, .. } | Op::Gather { arg, ids, .. } => match d(ids) {
            Deg::Zero | Deg::D0 => d(arg),
            _ => Deg::Mixed,
        },
        Op::Cat(xs, _) => xs.iter().map(d).fold(Deg::Zero, join),
        _ => nonlinear(&op.inputs().into_iter().map(d).collect::<Vec<_>>()),
    }
}

/// Classifies op node `k`.
fn op_info(
    g: &Graph,
    k: usize,
    op: &Op<ValueId>,
    infos: &[Info],
    normalizer: &mut Option<ValueId>,
) -> Info {
    let node = &g.nodes[k];
    let ins: Vec<ValueId> = op.inputs().into_iter().copied().collect();
    let kind = |v: &ValueId| &infos[v.0].kind;
    if let Some(r) = ins.iter().find_map(|v| match kind(v) {
        Kind::Poison(r) => Some(r.clone()),
        _ => None,
    }) {
        return poison(r);
    }
    let deg = op_deg(op, &|v| infos[v.0].deg);
    let out_axis = match batch_axis(&node.shape) {
        Ok(a) => a,
        Err(()) => return poison(format!("`{}` has several batch-sized dims", node.name)),
    };
    // Division by a sum over the samples: the normalizer (one per graph).
    if let Op::Binary(a, b, BinaryOp::Div) = op {
        if kind(b) == &Kind::Sum && infos[b.0].deg == Deg::D0 {
            if normalizer.is_some_and(|n| n != *b) {
                return poison(format!(
                    "`{}` divides by a second sum over the batch (`{}`)",
                    node.name,
                    g.node(*b).name
                ));
            }
            *normalizer = Some(*b);
            let deg = match infos[a.0].deg {
                Deg::Zero => Deg::Zero,
                Deg::D0 => Deg::D1,
                _ => Deg::Mixed,
            };
            let kind = match (kind(a), out_axis) {
                (Kind::Fixed, None) => Kind::Scale,
                (Kind::Batched(_), Some(ax)) => Kind::Batched(ax),
                (Kind::Sum, None) => Kind::Sum,
                _ => Kind::Other,
            };
            return Info { kind, deg };
        }
    }
    if matches!(op, Op::FullLike(..)) {
        // Reads only its input's shape.
        let kind = out_axis.map_or(Kind::Fixed, Kind::Batched);
        return Info { kind, deg };
    }
    let batched: Vec<(ValueId, usize)> = ins
        .iter()
        .filter_map(|v| match kind(v) {
            Kind::Batched(ax) => Some((*v, *ax)),
            _ => None,
        })
        .collect();
    if let Some(out_ax) = out_axis {
        if let Some(v) = ins
            .iter()
            .find(|v| matches!(kind(v), Kind::Sum | Kind::Other))
        {
            return poison(format!(
                "`{}` ({}) reads `{}`, a value computed from several samples, into per-sample values",
                node.name,
                node.op_name(),
                g.node(*v).name
            ));
        }
        return match keeps_samples(g, op, &batched, &node.shape, out_ax) {
            Ok(()) => Info {
                kind: Kind::Batched(out_ax),
                deg,
            },
            Err(why) => poison(format!("`{}` ({}) {why}", node.name, node.op_name())),
        };
    }
    if !batched.is_empty() {
        let kind = if sums_over_batch(g, op, &batched) {
            Kind::Sum
        } else {
            Kind::Other
        };
        return Info { kind, deg };
    }
    Info {
        kind: linear_kind(op, &|v| kind(v).clone(), &|v| infos[v.0].deg),
        deg,
    }
}

/// An op over non-batched values some of which depend on the batch: a linear op keeps a sum a
/// sum (and a scale a scale); anything else gives `Other`.
fn linear_kind(
    op: &Op<ValueId>,
    kind: &dyn Fn(&ValueId) -> Kind,
    deg: &dyn Fn(&ValueId) -> Deg,
) -> Kind {
    let ins: Vec<ValueId> = op.inputs().into_iter().copied().collect();
    let live: Vec<Kind> = ins.iter().map(kind).filter(|k| *k != Kind::Fixed).collect();
    let Some(first) = live.first().cloned() else {
        return Kind::Fixed;
    };
    let one = live.len() == 1;
    match op {
        Op::Binary(a, b, BinaryOp::Add | BinaryOp::Sub) => {
            let zero = |v: &ValueId| kind(v) == Kind::Fixed && deg(v) == Deg::Zero;
            if (one && (zero(a) || zero(b))) || (!one && live.iter().all(|k| *k == first)) {
                first
            } else {
                Kind::Other
            }
        }
        Op::Binary(_, _, BinaryOp::Mul) | Op::Matmul(..) => {
            if one {
                first
            } else if live.contains(&Kind::Scale) && live.contains(&Kind::Sum) {
                Kind::Sum
            } else {
                Kind::Other
            }
        }
        Op::Binary(a, _, BinaryOp::Div) if one && kind(a) != Kind::Fixed => first,
        Op::Unary(_, UnaryOp::Neg)
        | Op::Reshape(_)
        | Op::Permute(..)
        | Op::Narrow { .. }
        | Op::Expand(_)
        | Op::Copy(_)
        | Op::ToDevice(_)
        | Op::Reduce {
            op: ReduceOp::Sum, ..
        } => first,
        Op::Unary(_, UnaryOp::Affine(_, add)) if *add == 0.0 => first,
        Op::ToDType(_) => first,
        Op::Cat(..) if live.iter().all(|k| *k == first) => first,
        _ => Kind::Other,
    }
}

/// Whether an op with a batched input and a non-batched output sums over the samples.
fn sums_over_batch(g: &Graph, op: &Op<ValueId>, batched: &[(ValueId, usize)]) -> bool {
    let ax = |v: &ValueId| batched.iter().find(|(b, _)| b == v).map(|(_, a)| *a);
    let float = |v: &ValueId| g.node(*v).dtype.is_float();
    match op {
        Op::Reduce {
            arg,
            op: ReduceOp::Sum,
            dims,
            ..
        } => ax(arg).is_some_and(|a| dims.contains(&a)) && float(arg),
        Op::Matmul(a, b) => ax(a) == Some(2) && ax(b) == Some(1),
        Op::Conv2dBackwardWeight { input, grad, .. } => ax(input) == Some(0) && ax(grad) == Some(0),
        _ => false,
    }
}

/// Whether an op producing a batched value (batch-sized dim at `out`) keeps samples apart.
fn keeps_samples(
    g: &Graph,
    op: &Op<ValueId>,
    batched: &[(ValueId, usize)],
    out_shape: &[SymDim],
    out: usize,
) -> std::result::Result<(), String> {
    if batched.is_empty() {
        return Ok(()); // a broadcast of values that are the same for every sample
    }
    let ax = |v: &ValueId| batched.iter().find(|(b, _)| b == v).map(|(_, a)| *a);
    let rank = |v: &ValueId| g.node(*v).shape.len();
    // Each batched input's batch dim, right-aligned (broadcast) into the output, is `out`.
    let n_out = out_shape.len();
    let aligned = || {
        batched
            .iter()
            .all(|(v, a)| n_out >= rank(v) && a + (n_out - rank(v)) == out)
    };
    let at0 = || batched.iter().all(|(_, a)| *a == 0) && out == 0;
    let ok = |b: bool, why: &str| if b { Ok(()) } else { Err(why.to_string()) };
    match op {
        Op::Unary(..)
        | Op::Binary(..)
        | Op::Where(..)
        | Op::Cmp(..)
        | Op::Copy(_)
        | Op::ToDType(_)
        | Op::ToDevice(_)
        | Op::Expand(_) => ok(aligned(), "broadcasts a batch dim onto another dim"),
        Op::Reduce { arg, dims, .. } => ok(
            ax(arg).is_some_and(|a| !dims.contains(&a)),
            "reduces over the batch dim",
        ),
        Op::Softmax { arg, dim, .. } => ok(ax(arg) != Some(*dim), "normalizes over the batch dim"),
        Op::Permute(arg, perm) => ok(ax(arg) == perm.get(out).copied(), "moves the batch dim"),
        Op::Narrow { arg, dim, .. } => ok(ax(arg) != Some(*dim), "selects samples"),
        Op::Cat(_, dim) => ok(*dim != out && aligned(), "concatenates along the batch dim"),
        Op::Reshape(arg) => ok(
            reshape_keeps_samples(&g.node(*arg).shape, out_shape),
            "reshapes across samples",
        ),
        Op::Matmul(a, b) => ok(
            match (ax(a), ax(b)) {
                (Some(x), None) => (x == 0 || x == 1) && out == x,
                (None, Some(y)) => (y == 0 || y == 2) && out == y,
                (Some(0), Some(0)) => out == 0,
                _ => false,
            },
            "contracts or pairs samples",
        ),
        Op::Conv2d { weight, .. } | Op::Conv2dBackwardInput { weight, .. } => {
            ok(ax(weight).is_none() && at0(), "convolves across samples")
        }
        Op::MaxPool2d { .. }
        | Op::AvgPool2d { .. }
        | Op::AdaptiveAvgPool2d { .. }
        | Op::MaxPool2dBackward { .. }
        | Op::AvgPool2dBackward { .. }
        | Op::AdaptiveAvgPool2dBackward { .. } => ok(at0(), "pools across samples"),
        Op::IndexSelect { arg, ids, dim } => ok(
            match (ax(arg), ax(ids)) {
                (Some(a), None) => a != *dim && out == a,
                (None, Some(0)) => rank(ids) == 1 && out == *dim,
                _ => false,
            },
            "selects along the batch dim",
        ),
        Op::Gather { dim, .. } => ok(*dim != out && aligned(), "gathers along the batch dim"),
        _ => Err("is not known to keep samples apart".to_string()),
    }
}

#[cfg(test)]
#[path = "separable_tests.rs"]
mod tests;
