//! A rewrite for values a caller reads as whole tensors (a training step's weight
//! gradients): `(P·Q)ᵀ`, a transposed view of a fresh product, becomes `Qᵀ·Pᵀ`, a contiguous
//! product. A linear layer's weight gradient is captured as `permute(x̂ᵀ·ĝ)` (the composite
//! backward of `x·wᵀ`): handed to an optimizer as a view, every update first gathers it into
//! a contiguous copy (a fresh weight-sized buffer per step: the MLP's compiled step was 0.6×
//! eager's). `Qᵀ·Pᵀ` is `ĝᵀ·x̂`, the product eager's fused linear backward computes, with the
//! same sums per element.

use super::{Graph, Node, NodeKind, SymDim, ValueId};
use crate::op::Op;

impl Graph {
    /// Rewrites every output `permute(reshape(matmul(P, Q)), [1, 0])` where `matmul(P, Q)`
    /// is `[1, m, n]` (fixed sizes) and read by that reshape only, which is read by that
    /// permute only, into `reshape(matmul(Qᵀ, Pᵀ))` (`Xᵀ` = `X` permuted `[0, 2, 1]`,
    /// or `X`'s own source when `X` is such a permute): the same values, contiguous. Returns
    /// how many were rewritten.
    pub fn transpose_matmul_outputs(&mut self) -> usize {
        let users = self.users();
        let mut found: Vec<(usize, ValueId, ValueId)> = (self.outputs.iter())
            .filter_map(|o| {
                self.transposed_product(o.0, &users)
                    .map(|(p, q)| (o.0, p, q))
            })
            .collect();
        found.sort_by_key(|f| f.0);
        found.dedup_by_key(|f| f.0);
        if found.is_empty() {
            return 0;
        }
        // New ids first: an op may name a later node (its secondary output).
        let is_tr = |x: ValueId| matches!(&self.nodes[x.0].kind, NodeKind::Op(Op::Permute(_, perm)) if perm == &[0, 2, 1]);
        let mut new_id: Vec<ValueId> = Vec::with_capacity(self.nodes.len());
        let mut next = 0;
        for k in 0..self.nodes.len() {
            if let Some(&(_, p, q)) = found.iter().find(|f| f.0 == k) {
                next += 1 + usize::from(!is_tr(p)) + usize::from(!is_tr(q));
            }
            new_id.push(ValueId(next));
            next += 1;
        }
        let mut nodes: Vec<Node> = Vec::with_capacity(next);
        let old = std::mem::take(&mut self.nodes);
        for (k, node) in old.iter().enumerate() {
            let at = |v: ValueId| new_id[v.0];
            if let Some(&(_, p, q)) = found.iter().find(|f| f.0 == k) {
                let tr = |nodes: &mut Vec<Node>, x: ValueId, tag: &str| -> ValueId {
                    if let NodeKind::Op(Op::Permute(src, perm)) = &old[x.0].kind {
                        if perm == &[0, 2, 1] {
                            return at(*src);
                        }
                    }
                    let s = &old[x.0].shape;
                    nodes.push(Node {
                        name: format!("{}_{tag}", node.name),
                        kind: NodeKind::Op(Op::Permute(at(x), vec![0, 2, 1])),
                        shape: vec![s[0], s[2], s[1]],
                        dtype: old[x.0].dtype,
                        device: old[x.0].device,
                    });
                    ValueId(nodes.len() - 1)
                };
                let (qt, pt) = (tr(&mut nodes, q, "lhs"), tr(&mut nodes, p, "rhs"));
                let d = &node.shape;
                nodes.push(Node {
                    name: format!("{}_matmul", node.name),
                    kind: NodeKind::Op(Op::Matmul(qt, pt)),
                    shape: vec![SymDim::fixed(1), d[0], d[1]],
                    dtype: node.dtype,
                    device: node.device,
                });
                let mm = ValueId(nodes.len() - 1);
                nodes.push(Node {
                    kind: NodeKind::Op(Op::Reshape(mm)),
                    ..node.clone()
                });
            } else {
                let mut n = node.clone();
                n.kind = match &node.kind {
                    NodeKind::Op(op) => NodeKind::Op(op.map(|v| at(*v))),
                    NodeKind::Secondary { of } => NodeKind::Secondary { of: at(*of) },
                    other => other.clone(),
                };
                nodes.push(n);
            }
            debug_assert_eq!(new_id[k].0, nodes.len() - 1);
        }
        self.nodes = nodes;
        let remap = |v: &mut ValueId| *v = new_id[v.0];
        self.inputs.iter_mut().for_each(remap);
        self.outputs.iter_mut().for_each(remap);
        for (a, b) in self.writes.iter_mut() {
            remap(a);
            remap(b);
        }
        self.eliminate_dead_code();
        found.len()
    }

    /// How many nodes read each node (outputs and state writes count as readers).
    fn users(&self) -> Vec<usize> {
        let mut users = vec![0usize; self.nodes.len()];
        for node in &self.nodes {
            for v in node.inputs() {
                users[v.0] += 1;
            }
        }
        for v in self
            .outputs
            .iter()
            .chain(self.writes.iter().map(|(_, s)| s))
        {
            users[v.0] += 1;
        }
        users
    }

    /// `(P, Q)` when node `t` is `permute(reshape(matmul(P, Q)), [1, 0])` as
    /// [`Graph::transpose_matmul_outputs`] rewrites it.
    fn transposed_product(&self, t: usize, users: &[usize]) -> Option<(ValueId, ValueId)> {
        let NodeKind::Op(Op::Permute(r, perm)) = &self.nodes[t].kind else {
            return None;
        };
        let NodeKind::Op(Op::Reshape(m)) = &self.nodes[r.0].kind else {
            return None;
        };
        let NodeKind::Op(Op::Matmul(p, q)) = &self.nodes[m.0].kind else {
            return None;
        };
        let (rs, ms) = (&self.nodes[r.0].shape, &self.nodes[m.0].shape);
        let fixed = |s: &[SymDim]| s.iter().all(|d| !d.is_symbolic());
        let ok = perm == &[1, 0]
            && users[r.0] == 1
            && users[m.0] == 1
            && fixed(rs)
            && fixed(ms)
            && ms.len() == 3
            && ms[0].fixed == 1
            && rs.len() == 2
            && rs[0] == ms[1]
            && rs[1] == ms[2]
            && [p, q].iter().all(|v| self.nodes[v.0].shape.len() == 3);
        ok.then_some((*p, *q))
    }
}
