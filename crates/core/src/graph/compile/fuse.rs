//! Fusion: which nodes of a graph run together as one pass over memory.
//!
//! A node is *fusable* when it is a float32 elementwise op the fused CPU loop computes with
//! exactly the arithmetic of the eager kernel (see [`fusable`]): unary maths, binaries,
//! comparisons and `where`. Nodes are visited in order; a fusable node joins the group of
//! one of its fusable producers of the same element count when that keeps the schedule
//! valid (a group runs at the position of its last member, so no member may have a
//! consumer outside the group that runs earlier). Members read by nodes outside the group,
//! or that are graph outputs, are *materialized* (written to memory); the others live only
//! in registers. Inputs to a group from outside it are *loads* through any strided layout,
//! which is how broadcasts (`Expand` views such as a bias `[1, C, 1, 1]`) are fused.

use super::super::{Graph, NodeKind};
use crate::op::Op;
use crate::params::UnaryOp;
use crate::DType;

/// Most ops in one group: with at most 3 inputs per op, loads + members stay within the
/// fused loop's register table ([`super::instr::MAX_REGS`]).
const MAX_MEMBERS: usize = 16;

/// One fused group: member nodes in order and which of them are written to memory.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// Node indices, ascending; the group runs when its last member would.
    pub members: Vec<usize>,
    /// Members that are read outside the group or are graph outputs.
    pub materialized: Vec<usize>,
    /// Values read from outside the group, in first-use order.
    pub loads: Vec<usize>,
}

impl Group {
    /// The node at whose position the group runs.
    pub fn last(&self) -> usize {
        *self.members.last().expect("a group has members")
    }
}

/// True for the unary ops whose fused arithmetic is bit-identical to the eager kernel's
/// (`exp` is excluded: eager f32 `exp` runs a vectorized approximation over whole chunks;
/// the GELU forms are computed in f64 and stay eager too).
fn unary_ok(op: UnaryOp) -> bool {
    use UnaryOp as U;
    !matches!(op, U::Exp | U::GeluErf | U::GeluTanh | U::Sign)
}

/// Whether node `k` may be part of a fused group (float32 elementwise, all inputs f32, or
/// a bool condition for `where`; comparisons of f32 giving bool).
pub(crate) fn fusable(g: &Graph, k: usize) -> bool {
    let node = &g.nodes[k];
    let NodeKind::Op(op) = &node.kind else {
        return false;
    };
    let f32_in = |v: &crate::graph::ValueId| g.nodes[v.0].dtype == DType::F32;
    match op {
        Op::Unary(a, u) => node.dtype == DType::F32 && f32_in(a) && unary_ok(*u),
        Op::Binary(a, b, _) => node.dtype == DType::F32 && f32_in(a) && f32_in(b),
        Op::Cmp(a, b, _) => node.dtype == DType::Bool && f32_in(a) && f32_in(b),
        Op::Where(c, t, f) => {
            node.dtype == DType::F32 && g.nodes[c.0].dtype == DType::Bool && f32_in(t) && f32_in(f)
        }
        _ => false,
    }
}

/// Groups the fusable nodes of `g`. `shapes[k]` is node k's concrete shape; `consumers[k]`
/// the nodes reading k; `is_output[k]` whether k is a graph output. Groups of a single
/// member are kept too (they still run in the planned buffers). Nodes with `taken[k]` (run
/// by another fused step) are left out.
pub(crate) fn group(
    g: &Graph,
    shapes: &[Vec<usize>],
    consumers: &[Vec<usize>],
    is_output: &[bool],
    taken: &[bool],
) -> Vec<Group> {
    let n = g.nodes.len();
    let mut group_of: Vec<Option<usize>> = vec![None; n];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for k in 0..n {
        if taken[k] || !fusable(g, k) {
            continue;
        }
        let count = |i: usize| shapes[i].iter().product::<usize>();
        let mut joined = false;
        for v in g.nodes[k].inputs() {
            let Some(gi) = group_of[v.0] else { continue };
            if groups[gi].len() >= MAX_MEMBERS {
                continue;
            }
            if count(v.0) != count(k) || shapes[v.0] != shapes[k] {
                continue;
            }
            // Every member's outside consumers must run after k (where the group will run).
            let ok = groups[gi].iter().all(|&m| {
                consumers[m]
                    .iter()
                    .all(|&c| c >= k || group_of[c] == Some(gi))
            });
            if ok {
                groups[gi].push(k);
                group_of[k] = Some(gi);
                joined = true;
                break;
            }
        }
        if !joined {
            group_of[k] = Some(groups.len());
            groups.push(vec![k]);
        }
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(gi, members)| {
            let inside = |v: usize| group_of[v] == Some(gi);
            let materialized = members
                .iter()
                .copied()
                .filter(|&m| is_output[m] || consumers[m].iter().any(|&c| !inside(c)))
                .collect();
            let mut loads = Vec::new();
            for &m in &members {
                for v in g.nodes[m].inputs() {
                    if !inside(v.0) && !loads.contains(&v.0) {
                        loads.push(v.0);
                    }
                }
            }
            Group {
                members,
                materialized,
                loads,
            }
        })
        .collect()
}
