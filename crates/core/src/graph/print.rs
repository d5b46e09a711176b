//! Reading a graph: a table with one line per node (like torch.fx's tabular print) and
//! Graphviz DOT.

use super::{Graph, Node, NodeKind};
use crate::op::Op;
use std::fmt::Write;

/// The op's parameters as `key=value` text (empty when it has none). Shapes of views are
/// not parameters here (they follow the nodes' shapes); scalars print exactly (`{}` of an
/// f64 is its shortest round-trip text), so two ops with equal text compute the same.
pub(super) fn params(op: &Op<super::ValueId>) -> String {
    use crate::params::UnaryOp as U;
    match op {
        Op::Unary(_, u) => match u {
            U::LeakyRelu(s) => format!("slope={s}"),
            U::Powf(e) => format!("exponent={e}"),
            U::Clamp(lo, hi) => format!("min={lo} max={hi}"),
            U::Affine(m, a) if *a == 0.0 => format!("{m}"),
            U::Affine(m, a) if *m == 1.0 => format!("{a}"),
            U::Affine(m, a) => format!("mul={m} add={a}"),
            _ => String::new(),
        },
        Op::Reduce { dims, keepdim, .. } => format!("dims={dims:?} keepdim={keepdim}"),
        Op::Softmax { dim, .. } => format!("dim={dim}"),
        Op::Conv2d { params: p, .. }
        | Op::Conv2dBackwardInput { params: p, .. }
        | Op::Conv2dBackwardWeight { params: p, .. } => format!(
            "stride={:?} padding={:?} dilation={:?} groups={}",
            p.stride, p.padding, p.dilation, p.groups
        ),
        Op::MaxPool2d { params: p, .. }
        | Op::AvgPool2d { params: p, .. }
        | Op::AvgPool2dBackward { params: p, .. } => {
            format!(
                "kernel={:?} stride={:?} padding={:?}",
                p.kernel, p.stride, p.padding
            )
        }
        Op::AdaptiveAvgPool2d { out_hw, .. } => format!("output_size={out_hw:?}"),
        Op::Permute(_, p) => format!("perm={p:?}"),
        Op::Narrow {
            dim, start, len, ..
        } => format!("dim={dim} start={start} len={len}"),
        Op::Cat(_, d)
        | Op::IndexSelect { dim: d, .. }
        | Op::Gather { dim: d, .. }
        | Op::ScatterAdd { dim: d, .. }
        | Op::IndexAdd { dim: d, .. } => format!("dim={d}"),
        Op::FullLike(_, v) => format!("value={v}"),
        Op::BatchNorm { eps, relu, .. } | Op::BatchNormBackward { eps, relu, .. } => {
            format!("eps={eps} relu={relu}")
        }
        _ => String::new(),
    }
}

impl Graph {
    fn shape_text(node: &Node) -> String {
        let d: Vec<String> = node.shape.iter().map(|d| d.to_string()).collect();
        format!("[{}]", d.join(", "))
    }

    fn args_text(&self, node: &Node) -> String {
        match &node.kind {
            NodeKind::Op(op) => {
                let mut s: Vec<String> = op
                    .inputs()
                    .iter()
                    .map(|v| self.nodes[v.0].name.clone())
                    .collect();
                let p = params(op);
                if !p.is_empty() {
                    s.push(p);
                }
                s.join(", ")
            }
            NodeKind::Secondary { of } => self.nodes[of.0].name.clone(),
            NodeKind::Input { index } => format!("#{index}"),
            _ => String::new(),
        }
    }

    /// Graphviz DOT: one box per node (name, op, shape, dtype), edges from inputs to users,
    /// outputs drawn with a double border.
    pub fn to_dot(&self) -> String {
        let mut s = String::from(
            "digraph G {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        for (i, n) in self.nodes.iter().enumerate() {
            let style = match n.kind {
                NodeKind::Input { .. } => ", style=filled, fillcolor=\"#d0e8ff\"",
                NodeKind::Param(_) => ", style=filled, fillcolor=\"#e8e8e8\"",
                NodeKind::Constant(_) => ", style=filled, fillcolor=\"#f4f4d0\"",
                _ => "",
            };
            let periph = if self.outputs.iter().any(|o| o.0 == i) {
                ", peripheries=2"
            } else {
                ""
            };
            let label = format!(
                "{}\\n{}\\n{} {}",
                n.name,
                n.op_name(),
                Self::shape_text(n),
                n.dtype
            )
            .replace('"', "\\\"");
            let _ = writeln!(s, "  n{i} [label=\"{label}\"{style}{periph}];");
        }
        for (i, n) in self.nodes.iter().enumerate() {
            for v in n.inputs() {
                let _ = writeln!(s, "  n{} -> n{i};", v.0);
            }
        }
        s.push_str("}\n");
        s
    }
}

impl std::fmt::Display for Graph {
    /// One line per node: name, op, arguments, shape, dtype; then the outputs and notes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: Vec<[String; 5]> = self
            .nodes
            .iter()
            .map(|n| {
                [
                    n.name.clone(),
                    n.op_name(),
                    self.args_text(n),
                    Self::shape_text(n),
                    n.dtype.to_string(),
                ]
            })
            .collect();
        let head = ["name", "op", "args", "shape", "dtype"];
        let mut w = head.map(str::len);
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.len());
            }
        }
        let line = |f: &mut std::fmt::Formatter<'_>, r: &[&str]| {
            writeln!(
                f,
                "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                w0 = w[0],
                w1 = w[1],
                w2 = w[2],
                w3 = w[3]
            )
        };
        line(f, &head)?;
        for r in &rows {
            line(f, &r.iter().map(String::as_str).collect::<Vec<_>>())?;
        }
        let outs: Vec<&str> = self
            .outputs
            .iter()
            .map(|o| self.nodes[o.0].name.as_str())
            .collect();
        writeln!(f, "outputs: {}", outs.join(", "))?;
        for (d, v) in &self.writes {
            writeln!(
                f,
                "writes: {} <- {}",
                self.nodes[d.0].name, self.nodes[v.0].name
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "note: {w}")?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for Graph {
    /// The same table as `Display`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}
