//! A graph with a bounded cache of plans, one per set of input shapes.

use super::{compile_for_batch, Plan};
use crate::graph::Graph;
use crate::{Error, Result, Tensor};

/// A graph compiled on demand: [`CompiledGraph::run`] picks the plan for the inputs'
/// shapes, compiling a new one (and saying so on stderr, with a count) when the shapes are
/// new. At most `capacity` plans are kept; the least recently used one is dropped. On a
/// device that captures graphs (CUDA) each plan replays as one ([`super::Plan::run_graphed`]).
pub struct CompiledGraph {
    graph: Graph,
    /// Most recently used last.
    plans: Vec<Plan>,
    capacity: usize,
    compilations: usize,
    quiet: bool,
    /// Whether plans replay as device graphs where the device captures them.
    device_graphs: bool,
}

impl CompiledGraph {
    /// Compiles `graph` for the batch it was captured with and keeps up to `capacity`
    /// plans (at least one).
    ///
    /// # Errors
    /// As [`super::compile`].
    pub fn new(graph: Graph, capacity: usize) -> Result<Self> {
        let first = super::compile(&graph)?;
        Ok(CompiledGraph {
            graph,
            plans: vec![first],
            capacity: capacity.max(1),
            compilations: 1,
            quiet: false,
            device_graphs: true,
        })
    }

    /// Turns off the stderr line printed per recompilation.
    pub fn quiet(mut self, on: bool) -> Self {
        self.quiet = on;
        self
    }

    /// Whether plans replay as device graphs (CUDA graphs) on devices that capture them
    /// (default: on; `MLFW_CUDA_GRAPH=0` turns them off everywhere). See
    /// [`super::Plan::run_graphed`].
    pub fn device_graphs(mut self, on: bool) -> Self {
        self.device_graphs = on;
        self
    }

    /// How many plans were compiled so far (the first included).
    pub fn compilations(&self) -> usize {
        self.compilations
    }

    /// The plans held now.
    pub fn cached(&self) -> usize {
        self.plans.len()
    }

    /// The most recently used plan.
    pub fn plan(&self) -> &Plan {
        self.plans.last().expect("at least one plan")
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// [`Plan::profile`] of the plan for the inputs' shapes (compiled if needed).
    ///
    /// # Errors
    /// As [`CompiledGraph::run`].
    pub fn profile(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, f64)>> {
        self.run(inputs)?;
        let last = self.plans.len() - 1;
        self.plans[last].profile(inputs)
    }

    /// Runs the plan for the inputs' shapes, compiling it first when there is none.
    ///
    /// # Errors
    /// Inputs the graph does not accept (wrong count, dtype, rank, fixed dims, or
    /// a batch size that differs between inputs); as [`Plan::run`].
    pub fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let found = self.plans.iter().position(|p| {
            p.input_shapes.len() == inputs.len()
                && p.input_shapes
                    .iter()
                    .zip(inputs)
                    .all(|(s, x)| s.as_slice() == x.dims())
        });
        let i = match found {
            Some(i) => i,
            None => {
                if inputs.len() != self.graph.inputs.len() {
                    return Err(Error::msg(format!(
                        "compiled graph: expected {} inputs, got {}",
                        self.graph.inputs.len(),
                        inputs.len()
                    )));
                }
                let n = self.graph.check_inputs(inputs)?;
                let plan = compile_for_batch(&self.graph, n)?;
                self.compilations += 1;
                if self.plans.len() >= self.capacity {
                    self.plans.remove(0);
                }
                self.plans.push(plan);
                if !self.quiet {
                    let shapes: Vec<String> =
                        inputs.iter().map(|x| x.shape().to_string()).collect();
                    eprintln!(
                        "compile: recompiled for input shapes {} ({} compilations, {} of at most {} plans cached)",
                        shapes.join(", "),
                        self.compilations,
                        self.plans.len(),
                        self.capacity
                    );
                }
                self.plans.len() - 1
            }
        };
        let p = self.plans.remove(i);
        self.plans.push(p);
        let last = self.plans.len() - 1;
        if self.device_graphs {
            self.plans[last].run_graphed(inputs)
        } else {
            self.plans[last].run(inputs)
        }
    }
}
