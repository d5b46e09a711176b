//! Capturing a closure over tensors as a [`Graph`] (like `torch.jit.trace`: the path taken
//! for the example inputs is recorded, op by op).
//!
//! In-place writes ([`Tensor::assign`], e.g. batch norm's running statistics) into registered
//! parameters and buffers become the graph's state writes ([`Graph::writes`]): recorded, not
//! performed during the capture, and performed by every run after the graph's ops. A write
//! into any other tensor, or a read of a written tensor later in the capture, is reported in
//! [`Graph::warnings`].

use super::tape::{self, Tape, Traced};
use super::{Graph, Node, NodeKind, SymDim, ValueId};
use crate::op::Op;
use crate::{Error, Result, Tensor, TensorId};
use std::collections::HashMap;

/// Builder for a capture: the named inputs, the named parameters and buffers, and whether
/// dim 0 of every input is a symbolic batch dimension.
///
/// ```
/// use mlfw_core::graph::Capture;
/// use mlfw_core::{Device, Tensor, DType};
/// let w = Tensor::ones([3, 2], DType::F32, &Device::Cpu)?;
/// let x = Tensor::ones([4, 3], DType::F32, &Device::Cpu)?;
/// let g = Capture::new()
///     .input("x", &x)
///     .param("fc.weight", &w)
///     .symbolic_batch(true)
///     .run(|xs| Ok(vec![xs[0].matmul(&w)?.relu()?]))?;
/// let y = g.run(&[Tensor::ones([7, 3], DType::F32, &Device::Cpu)?])?;
/// assert_eq!(y[0].dims(), &[7, 2]);
/// # Ok::<(), mlfw_core::Error>(())
/// ```
#[derive(Default)]
pub struct Capture {
    inputs: Vec<(String, Tensor)>,
    params: Vec<(String, Tensor)>,
    symbolic_batch: bool,
    /// Warnings that end a symbolic capture after its first trace (see [`Capture::refuse`]).
    refuse: Vec<&'static str>,
}

impl Capture {
    /// An empty capture.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a placeholder named `name` with `example` as its value during the capture.
    pub fn input(mut self, name: &str, example: &Tensor) -> Self {
        self.inputs.push((name.to_string(), example.clone()));
        self
    }

    /// Adds a parameter or buffer under its state-dict name.
    pub fn param(mut self, name: &str, t: &Tensor) -> Self {
        self.params.push((name.to_string(), t.clone()));
        self
    }

    /// Adds named parameters and buffers (e.g. a module's state dict).
    pub fn params(mut self, named: impl IntoIterator<Item = (String, Tensor)>) -> Self {
        self.params.extend(named);
        self
    }

    /// Makes dim 0 of every input a symbolic batch size `N`: the closure is run a second
    /// time with one more sample, and every dimension that changed is expressed in `N`
    /// (`a·N + b`). Then [`Graph::run`] accepts any batch size. The two traces use the first
    /// samples of the inputs, at batches 2 and 3 (where no reshape or reduction degenerates, and
    /// a large batch costs no memory or time to capture).
    pub fn symbolic_batch(mut self, on: bool) -> Self {
        self.symbolic_batch = on;
        self
    }

    /// Makes a capture whose trace left a warning containing one of `marks` (e.g.
    /// [`crate::graph::RANDOM_DRAW`], [`crate::graph::COMPOSITE`]) end with an error holding
    /// those warnings, right after that trace: for a caller that refuses such graphs anyway,
    /// a symbolic capture's second whole-step trace is time and memory spent for nothing.
    pub fn refuse(mut self, marks: &[&'static str]) -> Self {
        self.refuse.extend_from_slice(marks);
        self
    }

    /// Runs `f` on the inputs (the tensors given to [`Capture::input`], in order) and
    /// records every op it makes into a graph whose outputs are `f`'s results.
    ///
    /// # Errors
    /// What `f` returns; a capture already running on this thread; with a
    /// symbolic batch, inputs without a dim 0 of equal size, or a computation whose ops
    /// differ between the two batch sizes.
    pub fn run(&self, f: impl Fn(&[Tensor]) -> Result<Vec<Tensor>>) -> Result<Graph> {
        let mut xs: Vec<Tensor> = self.inputs.iter().map(|(_, t)| t.clone()).collect();
        if !self.symbolic_batch {
            return self.trace_once(&xs, &f);
        }
        // The symbolic graph is traced at batches 2 and 3 whatever the inputs' batch: at batch 1
        // some reshapes and reductions are no-ops that vanish from the trace, and a trace at the
        // real batch would hold a whole step's activations (twice) just to read the shapes.
        let b = 2;
        let given = batch_of(&xs)?;
        xs = match given {
            1 => xs.iter().map(grow).collect::<Result<_>>()?,
            _ => xs
                .iter()
                .map(|x| x.narrow(0, 0, b))
                .collect::<Result<_>>()?,
        };
        let mut graph = self.trace_once(&xs, &f)?;
        let xs2 = xs.iter().map(grow).collect::<Result<Vec<_>>>()?;
        let g2 = self.trace_once(&xs2, &f)?;
        if let Err(e) = symbolize(&mut graph, &g2, b) {
            // Random draws differ between the traces: say so, as the likely cause.
            let draws = warnings_with(&graph, &[tape::RANDOM_DRAW]);
            return Err(match draws.is_empty() {
                true => e,
                false => Error::msg(format!("{e}; {}", draws.join("; "))),
            });
        }
        // `compile` plans for the batch the caller captured with, not the tracing batch.
        graph.batch = Some(given);
        Ok(graph)
    }

    fn trace_once(
        &self,
        xs: &[Tensor],
        f: &impl Fn(&[Tensor]) -> Result<Vec<Tensor>>,
    ) -> Result<Graph> {
        if !tape::begin() {
            return Err(Error::msg(
                "capture: a graph capture is already running on this thread",
            ));
        }
        let outs = f(xs);
        let tape = tape::end();
        let outs = outs.map_err(|e| e.context("capture: the captured closure failed"))?;
        let mut g = build(tape, xs, &self.inputs, &self.params, &outs)?;
        let refused = warnings_with(&g, &self.refuse);
        if !refused.is_empty() {
            return Err(Error::msg(format!("capture: {}", refused.join("; "))));
        }
        g.eliminate_dead_code();
        Ok(g)
    }
}

/// The warnings of `g` that contain one of `marks`.
fn warnings_with<'a>(g: &'a Graph, marks: &[&str]) -> Vec<&'a str> {
    (g.warnings.iter())
        .filter(|w| marks.iter().any(|m| w.contains(m)))
        .map(String::as_str)
        .collect()
}

/// `x` with its first sample repeated once more along dim 0 (batch + 1).
fn grow(x: &Tensor) -> Result<Tensor> {
    Tensor::cat(&[x.clone(), x.narrow(0, 0, 1)?], 0)
}

/// The common size of dim 0 of `xs`.
fn batch_of(xs: &[Tensor]) -> Result<usize> {
    let mut b = None;
    for x in xs {
        let d = *x.dims().first().ok_or_else(|| {
            Error::msg("capture: a symbolic batch needs every input to have a dim 0")
        })?;
        if *b.get_or_insert(d) != d {
            return Err(Error::msg(format!(
                "capture: inputs disagree on the batch size ({} vs {d})",
                b.unwrap_or(0)
            )));
        }
    }
    b.ok_or_else(|| Error::msg("capture: a symbolic batch needs at least one input"))
}

/// Turns a tape into a graph: inputs, then parameters, then one node per recorded op;
/// tensors read but neither recorded nor registered become constants.
fn build(
    tape: Tape,
    xs: &[Tensor],
    inputs: &[(String, Tensor)],
    params: &[(String, Tensor)],
    outs: &[Tensor],
) -> Result<Graph> {
    let mut b = Builder::default();
    let mut notes = tape.notes;
    // A state write is performed after the graph's ops: a later read of the written
    // tensor would see the old value, so it is reported (the graph is not faithful).
    for (dst, _, at) in &tape.writes {
        if tape.entries[*at..]
            .iter()
            .any(|(_, op)| op.inputs().into_iter().any(|t| t.shares(dst)))
            || outs.iter().any(|t| t.same_storage(dst))
        {
            notes.push(
                "`assign` wrote into a tensor that was read later during capture; a graph performs its state writes after all its ops".to_string(),
            );
        }
    }
    for (i, ((name, _), x)) in inputs.iter().zip(xs).enumerate() {
        let id = b.push(
            name.clone(),
            NodeKind::Input { index: i },
            &Traced::of(x, false),
        );
        b.ids.entry(x.id()).or_insert(id);
    }
    let input_ids: Vec<ValueId> = (0..inputs.len()).map(ValueId).collect();
    for (name, t) in params {
        if !b.ids.contains_key(&t.id()) {
            let id = b.push(
                name.clone(),
                NodeKind::Param(t.clone()),
                &Traced::of(t, false),
            );
            b.ids.insert(t.id(), id);
        }
    }
    for (out, op) in tape.entries {
        for t in op.inputs() {
            b.value(t)?;
        }
        let k = b.nodes.len();
        if let Some(second) = op.secondary() {
            b.ids.insert(second.id, ValueId(k + 1));
        }
        let gop = op.map(|t| b.ids[&t.id]);
        let name = b.unique(&op.name());
        let id = b.push(name, NodeKind::Op(gop), &out);
        b.ids.insert(out.id, id);
        if let Some(second) = op.secondary() {
            let what = match &op {
                Op::MaxPool2d { .. } => "indices",
                Op::BatchNorm { .. } => "stats",
                _ => "param_grads",
            };
            let name = format!("{}.{what}", b.nodes[k].name);
            b.push(name, NodeKind::Secondary { of: id }, second);
        }
    }
    let outputs = outs
        .iter()
        .map(|t| b.value(&Traced::of(t, true)))
        .collect::<Result<_>>()?;
    let mut writes = Vec::new();
    for (dst, src, _) in &tape.writes {
        match b.ids.get(&dst.id()) {
            Some(&d) if matches!(b.nodes[d.0].kind, NodeKind::Param(_)) => {
                let s = b.value(&Traced::of(src, true))?;
                writes.push((d, s));
            }
            _ => notes.push(
                "`assign` wrote into a tensor in place during capture that is not a registered parameter or buffer; only writes into those are part of the graph".to_string(),
            ),
        }
    }
    Ok(Graph {
        nodes: b.nodes,
        inputs: input_ids,
        outputs,
        batch: None,
        warnings: notes,
        writes,
    })
}

#[derive(Default)]
struct Builder {
    nodes: Vec<Node>,
    ids: HashMap<TensorId, ValueId>,
    names: HashMap<String, usize>,
    /// Every value's record, to recognise an alias of it (`detach`) by storage and layout.
    tensors: Vec<(Traced, ValueId)>,
}

impl Builder {
    fn push(&mut self, name: String, kind: NodeKind, like: &Traced) -> ValueId {
        self.names.entry(name.clone()).or_insert(1);
        self.nodes.push(Node {
            name,
            kind,
            shape: like.dims().iter().map(|&d| SymDim::fixed(d)).collect(),
            dtype: like.dtype,
            device: like.device,
        });
        let id = ValueId(self.nodes.len() - 1);
        self.tensors.push((like.clone(), id));
        id
    }

    /// `base`, or `base_1`, `base_2`, … when taken.
    fn unique(&mut self, base: &str) -> String {
        let Some(&start) = self.names.get(base) else {
            return base.to_string();
        };
        let mut n = start;
        let name = loop {
            let cand = format!("{base}_{n}");
            n += 1;
            if !self.names.contains_key(&cand) {
                break cand;
            }
        };
        self.names.insert(base.to_string(), n);
        name
    }

    /// The node holding `t` (or a tensor `t` aliases: same storage, layout and dtype, as
    /// `detach` makes), adding it as a constant when it is new.
    ///
    /// # Errors
    /// A new value whose tensor the tape did not keep (an internal error: the tape keeps
    /// every tensor no recorded op made).
    fn value(&mut self, t: &Traced) -> Result<ValueId> {
        if let Some(&id) = self.ids.get(&t.id) {
            return Ok(id);
        }
        let alias = self.tensors.iter().rev().find(|(u, _)| u.aliases(t));
        if let Some(&(_, id)) = alias {
            self.ids.insert(t.id, id);
            return Ok(id);
        }
        let kept = t.kept.as_ref().ok_or_else(|| {
            Error::msg("capture: an op read a value the tape did not keep (internal error)")
        })?;
        let name = self.unique("constant");
        let id = self.push(name, NodeKind::Constant(kept.detach()), t);
        self.ids.insert(t.id, id);
        Ok(id)
    }
}

/// Constants larger than this are not compared between the two traces (their shape is).
const COMPARE_MAX: usize = 1 << 20;

/// Part of the error of every symbolic capture whose two traces differ (in ops, shapes,
/// constants or scalars): the computation depends on the batch size, and a capture without
/// a symbolic batch may still be faithful for the batch it traces.
pub const BATCH_DEPENDENT: &str = "the computation is not the same at batch sizes";

/// Part of the error of a symbolic capture whose two traces differ only in op scalars
/// (batch norm's `n / (n - 1)`): a capture without a symbolic batch is then faithful for the
/// batch size it traces.
pub const SCALARS_DEPEND: &str = "its scalars depend on the batch size";

/// Whether two constants hold the same values (bitwise, as f64); large ones, or ones that
/// cannot be read, count as equal when their shapes and dtypes are.
fn same_values(a: &Tensor, b: &Tensor) -> bool {
    if a.dims() != b.dims() || a.dtype() != b.dtype() {
        return false;
    }
    if a.elem_count() > COMPARE_MAX {
        return true;
    }
    let read = |t: &Tensor| {
        t.to_dtype(crate::DType::F64)
            .and_then(|t| t.to_vec::<f64>())
    };
    match (read(a), read(b)) {
        (Ok(x), Ok(y)) => x.iter().zip(&y).all(|(p, q)| p.to_bits() == q.to_bits()),
        _ => true,
    }
}

/// Compares the capture at batch `b` with one at `b + 1` and writes every changed
/// dimension as `a·N + c`.
fn symbolize(g: &mut Graph, g2: &Graph, b: usize) -> Result<()> {
    let differ = |what: String| {
        Err(Error::msg(format!(
            "capture: {BATCH_DEPENDENT} {b} and {} ({what}); capture without a symbolic batch",
            b + 1
        )))
    };
    if g.nodes.len() != g2.nodes.len() {
        return differ(format!("{} vs {} nodes", g.nodes.len(), g2.nodes.len()));
    }
    if g.writes != g2.writes {
        return differ("other state writes".to_string());
    }
    let mut scalar_diff = None;
    for (n1, n2) in g.nodes.iter_mut().zip(&g2.nodes) {
        if n1.op_name() != n2.op_name() || n1.shape.len() != n2.shape.len() {
            return differ(format!("node `{}` vs `{}`", n1.name, n2.name));
        }
        for (d1, d2) in n1.shape.iter_mut().zip(&n2.shape) {
            let (x1, x2) = (d1.fixed, d2.fixed);
            if x2 < x1 || x1 < (x2 - x1) * b {
                return differ(format!("dim {x1} of `{}` became {x2}", n1.name));
            }
            let a = x2 - x1;
            *d1 = SymDim {
                batch: a,
                fixed: x1 - a * b,
            };
        }
        if matches!(n1.kind, NodeKind::Constant(_)) && n1.shape.iter().any(|d| d.is_symbolic()) {
            return differ(format!("constant `{}` has a batch-sized shape", n1.name));
        }
        // A scalar or constant computed from the batch size (`x.sum() / N`, batch norm's
        // `n / (n - 1)`) would be baked in at the tracing batch: refuse it (after checking
        // every other node, so the error says whether a fixed-batch capture is faithful).
        if let (NodeKind::Op(o1), NodeKind::Op(o2)) = (&n1.kind, &n2.kind) {
            if o1.inputs() != o2.inputs() {
                return differ(format!("node `{}` reads other values", n1.name));
            }
            let (p1, p2) = (super::print::params(o1), super::print::params(o2));
            if p1 != p2 && scalar_diff.is_none() {
                scalar_diff = Some(format!(
                    "node `{}` has other arguments ({p1} vs {p2})",
                    n1.name
                ));
            }
        }
        if let (NodeKind::Constant(c1), NodeKind::Constant(c2)) = (&n1.kind, &n2.kind) {
            if !same_values(c1, c2) {
                return differ(format!("constant `{}` has other values", n1.name));
            }
        }
    }
    if let Some(what) = scalar_diff {
        return differ(format!("{what}: {SCALARS_DEPEND}, the rest is the same"));
    }
    g.batch = Some(b);
    Ok(())
}
