//! Static graphs: a computation captured as plain data over the core's op vocabulary.
//!
//! A [`Graph`] is a list of [`Node`]s in topological order. Each node is a placeholder
//! (an input of the captured computation), a parameter or buffer (by its state-dict name),
//! a constant, or one [`Op`] over earlier nodes ([`ValueId`]s), with its output shape and
//! dtype. Shapes may carry a symbolic batch size `N` ([`SymDim`]). The same IR is printed
//! ([`Graph`]'s `Display`, [`Graph::to_dot`]), run ([`Graph::run`]), simplified
//! ([`Graph::simplify`]) and, by outer rings, compiled and exported.
//!
//! ```
//! use mlfw_core::graph::Capture;
//! use mlfw_core::{Device, Tensor};
//! let x = Tensor::from_vec(vec![1f32, -2., 3.], [3], &Device::Cpu)?;
//! let g = Capture::new().input("x", &x).run(|xs| Ok(vec![xs[0].relu()?.mul_scalar(2.0)?]))?;
//! let y = g.run(&[Tensor::from_vec(vec![-1f32, 4., 0.5], [3], &Device::Cpu)?])?;
//! assert_eq!(y[0].to_vec::<f32>()?, vec![0., 8., 1.]);
//! # Ok::<(), mlfw_core::Error>(())
//! ```

mod capture;
pub mod compile;
mod print;
mod run;
mod simplify;
pub(crate) mod tape;
mod transpose;

pub use capture::{Capture, BATCH_DEPENDENT, SCALARS_DEPEND};
pub use compile::{
    compile, compile_for_batch, CompiledGraph, FusedGroup, FusedInstr, LoadKind, Plan, PlanStats,
};
pub use tape::{COMPOSITE, RANDOM_DRAW};

/// True while a [`Capture`] records ops on this thread. Layers with a fused hand-written
/// kernel (custom autograd ops, which a graph cannot replay) take their composed path then,
/// so the graph holds core ops only; batch norm instead runs its kernels through core ops
/// that a capture records ([`Op::BatchNorm`], [`Op::BatchNormBackward`]).
pub fn is_capturing() -> bool {
    tape::active()
}

/// For a layer whose fused kernel (named `what`) would run on its inputs, with gradients
/// tracked, but does not because a capture is recording: leaves a note in the graph's
/// warnings (containing [`COMPOSITE`]) that the graph holds the composite ops instead, whose
/// gradients agree with the fused kernel's to rounding only. Does nothing outside a capture.
pub fn note_composite(what: &str) {
    tape::note_composite(what)
}
pub use simplify::SimplifyStats;

use crate::op::Op;
use crate::{DType, Device, Error, Result, Tensor};

/// Index of a node in [`Graph::nodes`]; a node's value is referred to by its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub usize);

/// One dimension of a node's shape: `batch * N + fixed`, where `N` is the symbolic batch
/// size (`batch == 0` for an ordinary, fixed dimension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SymDim {
    /// Multiple of the batch size.
    pub batch: usize,
    /// Constant part.
    pub fixed: usize,
}

impl SymDim {
    /// A fixed size.
    pub fn fixed(d: usize) -> Self {
        SymDim { batch: 0, fixed: d }
    }
    /// The size for batch size `n`.
    pub fn eval(&self, n: usize) -> usize {
        self.batch * n + self.fixed
    }
    /// True when the size depends on the batch size.
    pub fn is_symbolic(&self) -> bool {
        self.batch != 0
    }
}

impl std::fmt::Display for SymDim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.batch, self.fixed) {
            (0, d) => write!(f, "{d}"),
            (1, 0) => write!(f, "N"),
            (b, 0) => write!(f, "{b}N"),
            (1, d) => write!(f, "N+{d}"),
            (b, d) => write!(f, "{b}N+{d}"),
        }
    }
}

/// What a node is.
#[derive(Clone)]
pub enum NodeKind {
    /// The `index`-th input of [`Graph::run`].
    Input { index: usize },
    /// A parameter or buffer, named by its state-dict key (the node's name).
    Param(Tensor),
    /// A tensor that was neither an input nor a parameter (its value is kept).
    Constant(Tensor),
    /// An op over earlier nodes.
    Op(Op<ValueId>),
    /// The second output of node `of` (max pooling's indices).
    Secondary { of: ValueId },
}

/// One node: a name (unique in the graph), what it is, its output shape and dtype.
#[derive(Clone)]
pub struct Node {
    pub name: String,
    pub kind: NodeKind,
    pub shape: Vec<SymDim>,
    pub dtype: DType,
    pub device: Device,
}

impl NodeKind {
    /// The second output of an op node (see [`Op::secondary`]).
    pub fn secondary(&self) -> Option<ValueId> {
        match self {
            NodeKind::Op(op) => op.secondary().copied(),
            _ => None,
        }
    }
}

impl Node {
    /// The values this node reads (none for inputs, parameters and constants).
    pub fn inputs(&self) -> Vec<ValueId> {
        match &self.kind {
            NodeKind::Op(op) => op.inputs().into_iter().copied().collect(),
            NodeKind::Secondary { of } => vec![*of],
            _ => vec![],
        }
    }

    /// The op's short name, or `input` / `param` / `constant` / `output1`.
    pub fn op_name(&self) -> String {
        match &self.kind {
            NodeKind::Input { .. } => "input".into(),
            NodeKind::Param(_) => "param".into(),
            NodeKind::Constant(_) => "constant".into(),
            NodeKind::Op(op) => op.name(),
            NodeKind::Secondary { .. } => "output1".into(),
        }
    }

    /// The shape for batch size `n`.
    pub fn shape_for(&self, n: usize) -> Vec<usize> {
        self.shape.iter().map(|d| d.eval(n)).collect()
    }
}

/// A captured computation: nodes in topological order, which of them are the inputs and
/// the outputs, and what the capture noticed (value reads, in-place writes).
#[derive(Clone)]
pub struct Graph {
    pub nodes: Vec<Node>,
    /// Placeholder nodes, in [`Graph::run`]'s argument order.
    pub inputs: Vec<ValueId>,
    /// Result nodes, in [`Graph::run`]'s result order.
    pub outputs: Vec<ValueId>,
    /// The batch size the graph was captured with, when its batch dimension is symbolic.
    pub batch: Option<usize>,
    /// Messages from the capture (e.g. "`to_vec` read the values of …").
    pub warnings: Vec<String>,
    /// State writes `(parameter, value)`: after the graph's ops, each parameter (a
    /// [`NodeKind::Param`], e.g. a batch-norm running statistic) is overwritten in place
    /// with the value, in order, by [`Graph::run`] and by compiled plans. Recorded from
    /// [`Tensor::assign`] calls made during the capture.
    pub writes: Vec<(ValueId, ValueId)>,
}

impl Graph {
    /// The node of `id`.
    pub fn node(&self, id: ValueId) -> &Node {
        &self.nodes[id.0]
    }

    /// Number of op nodes (not counting inputs, parameters and constants).
    pub fn op_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Op(_)))
            .count()
    }

    /// Parameters and buffers by name, as a state dict.
    pub fn params(&self) -> Vec<(String, Tensor)> {
        self.nodes
            .iter()
            .filter_map(|n| match &n.kind {
                NodeKind::Param(t) => Some((n.name.clone(), t.clone())),
                _ => None,
            })
            .collect()
    }

    /// Keeps the nodes marked in `keep` (inputs always stay), renumbering references.
    /// Every kept node's inputs must be kept too.
    pub(crate) fn retain(&mut self, keep: &[bool]) {
        let mut new_id = vec![usize::MAX; self.nodes.len()];
        let mut next = 0;
        for (i, k) in keep.iter().enumerate() {
            if *k || matches!(self.nodes[i].kind, NodeKind::Input { .. }) {
                new_id[i] = next;
                next += 1;
            }
        }
        let old = std::mem::take(&mut self.nodes);
        for (i, mut node) in old.into_iter().enumerate() {
            if new_id[i] == usize::MAX {
                continue;
            }
            node.kind = remap(node.kind, |v| ValueId(new_id[v.0]));
            self.nodes.push(node);
        }
        let m = |v: &ValueId| ValueId(new_id[v.0]);
        self.inputs = self.inputs.iter().map(m).collect();
        self.outputs = self.outputs.iter().map(m).collect();
        self.writes = self.writes.iter().map(|(d, s)| (m(d), m(s))).collect();
    }

    /// Performs the state writes with the computed `values` (indexed by node; `None` for
    /// freed ones), gradient recording off.
    pub(crate) fn perform_writes(&self, value: impl Fn(ValueId) -> Option<Tensor>) -> Result<()> {
        for (d, s) in &self.writes {
            let NodeKind::Param(dst) = &self.nodes[d.0].kind else {
                return Err(Error::msg(format!(
                    "graph: state write into `{}`, which is not a parameter",
                    self.nodes[d.0].name
                )));
            };
            let v = value(*s).ok_or_else(|| {
                Error::msg(format!(
                    "graph: the value `{}` written into `{}` was not computed",
                    self.nodes[s.0].name, self.nodes[d.0].name
                ))
            })?;
            let prev = crate::set_grad_enabled(false);
            let r = dst.assign(&v);
            crate::set_grad_enabled(prev);
            r.map_err(|e| {
                e.context(format!(
                    "graph: state write into `{}`",
                    self.nodes[d.0].name
                ))
            })?;
        }
        Ok(())
    }

    /// Removes nodes no output depends on (dead-code elimination); returns how many.
    pub fn eliminate_dead_code(&mut self) -> usize {
        let mut keep = vec![false; self.nodes.len()];
        for o in &self.outputs {
            keep[o.0] = true;
        }
        for (d, s) in &self.writes {
            keep[d.0] = true;
            keep[s.0] = true;
        }
        for i in (0..self.nodes.len()).rev() {
            if !keep[i] {
                continue;
            }
            for v in self.nodes[i].inputs() {
                keep[v.0] = true;
            }
            // An op and its second output (max pooling's indices) live and die together.
            if let Some(second) = self.nodes[i].kind.secondary() {
                keep[second.0] = true;
            }
        }
        let before = self.nodes.len();
        self.retain(&keep);
        before - self.nodes.len()
    }
}

/// `kind` with every value reference passed through `f`.
pub(crate) fn remap(kind: NodeKind, f: impl Fn(&ValueId) -> ValueId) -> NodeKind {
    match kind {
        NodeKind::Op(op) => NodeKind::Op(op.map(f)),
        NodeKind::Secondary { of } => NodeKind::Secondary { of: f(&of) },
        k => k,
    }
}
