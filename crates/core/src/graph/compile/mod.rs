//! Compiling a [`Graph`] into a [`Plan`]: fused elementwise passes, a memory plan, and a
//! replay with no graph bookkeeping.
//!
//! The passes are device-neutral (which nodes fuse, when each value dies, which buffer it
//! lives in); the code for a fused group is generated per backend. Here: the CPU loop
//! (`kernel.rs`), blocked to stay in L1 and spread over [`crate::parallel`]. The graph
//! module is where the IR lives, so compilation sits beside capture, run and simplify.
//!
//! - **Fusion** (`fuse.rs`): chains of f32 elementwise ops (bias add + ReLU, ReLU's
//!   backward mask, loss pieces) run as one pass; broadcast inputs are read in place.
//! - **Fused pooling** (`pool_relu.rs`): a layer's bias add + ReLU + 2×2 max pooling, and
//!   its backward with ReLU's mask, run as one pass each (`MLFW_COMPILE_REWRITE=0` at
//!   compile time turns it off).
//! - **Memory plan** (`plan.rs`): every materialized fused value, and the result of every
//!   kernel step that can write into a given buffer (`eval_into.rs`: unfused binary ops,
//!   matmul, convolution forward and input gradient, max pooling, batch norm forward and
//!   backward, reductions, softmax), gets a buffer chosen from liveness at compile time
//!   (the best-fitting free one); buffers are allocated on the first run and reused by
//!   every later one. Other kernel ops (the convolution's weight gradient, average pooling,
//!   unfused unary ops, comparisons) still allocate their results through the eager
//!   kernels. `MLFW_PLAN_KERNELS=0` (read at compile time) leaves kernel steps out of the
//!   plan (fused values keep their buffers), for A/B runs.
//! - **Replay**: [`Plan::run`] evaluates the steps with gradient recording off: no op
//!   records, no autograd graph, no per-op bookkeeping.
//!
//! Groups of fewer than two ops run with the eager kernels; `MLFW_FUSE_MIN=k` (read at
//! compile time) raises that to `k` ops, e.g. to measure a replay without fusion.
//! `MLFW_PLAN_BUFFERS=0` (read at compile time) writes fused values and kernel results to
//! fresh memory per run instead of the planned buffers (to measure what the memory plan
//! costs or saves).
//!
//! A plan is compiled for one set of input shapes and refuses others; [`CompiledGraph`]
//! keeps a bounded cache of plans and recompiles (counted, logged) for new shapes.
//!
//! ```
//! use mlfw_core::graph::{compile, Capture};
//! use mlfw_core::{Device, Tensor};
//! let x = Tensor::from_vec(vec![1f32, -2., 3.], [3], &Device::Cpu)?;
//! let b = Tensor::from_vec(vec![0.5f32], [1], &Device::Cpu)?;
//! let g = Capture::new().input("x", &x).run(|xs| Ok(vec![xs[0].add(&b)?.relu()?]))?;
//! let mut plan = compile(&g)?;
//! assert_eq!(plan.run(&[x])?[0].to_vec::<f32>()?, vec![1.5, 0., 3.5]);
//! # Ok::<(), mlfw_core::Error>(())
//! ```

mod cache;
mod device_run;
mod eval_into;
mod fuse;
mod instr;
mod kernel;
mod plan;
mod pool_relu;
pub mod separable;

pub use cache::CompiledGraph;
pub use instr::FusedInstr;
pub use separable::{sample_separable, Combine, Separable};

use super::run::eval;
use super::{Graph, NodeKind};
use crate::op::Op;
use crate::{DType, Error, Result, Shape, Tensor};
use kernel::FusedKernel;

/// What compilation produced (for logs and benchmarks).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PlanStats {
    /// Op nodes in the graph.
    pub nodes: usize,
    /// Steps of the plan (kernel ops plus fused groups).
    pub steps: usize,
    /// Fused groups of two or more ops.
    pub fused_groups: usize,
    /// Ops inside those groups.
    pub fused_nodes: usize,
    /// Planned buffers, and their total size in bytes.
    pub buffers: usize,
    pub buffer_bytes: usize,
    /// Time spent compiling, in milliseconds.
    pub compile_ms: f64,
}

/// How a fused group reads one input, as far as compilation knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadKind {
    /// Contiguous, shaped like the group.
    Contiguous,
    /// One element broadcast to every position.
    Scalar,
    /// Any other layout (a broadcast or a permuted view) over the group's `rank` dims.
    Strided { rank: usize },
}

/// A fused group as plain data, for backends that generate code for it (NVRTC kernels).
#[derive(Debug, Clone, PartialEq)]
pub struct FusedGroup {
    /// The group's shape (every member has it).
    pub shape: Vec<usize>,
    /// One per load register, in order: the input's dtype (f32 or bool) and its layout.
    pub loads: Vec<(DType, LoadKind)>,
    /// The members, in order.
    pub instrs: Vec<FusedInstr>,
    /// Per materialized member: its register and dtype (f32, or bool for a comparison).
    pub stores: Vec<(usize, DType)>,
}

/// One step of a plan.
pub(crate) enum Step {
    /// Evaluate node `k` with the eager kernel.
    Eval(usize),
    /// Run a fused group: read `loads`, write the materialized members `stores`.
    Fused {
        kernel: FusedKernel,
        loads: Vec<usize>,
        stores: Vec<usize>,
    },
    /// Bias + ReLU + 2×2 max pooling, or its backward, as one pass (`pool_relu.rs`).
    Pool(pool_relu::PoolStep),
}

/// A compiled graph for fixed input shapes: [`compile`] it once, [`Plan::run`] it per step.
pub struct Plan {
    graph: Graph,
    input_shapes: Vec<Vec<usize>>,
    shapes: Vec<Shape>,
    steps: Vec<Step>,
    /// Per step: nodes whose values are dropped after it.
    drops: Vec<Vec<usize>>,
    /// Planned buffers (dtype, elements).
    buffers: Vec<(DType, usize)>,
    node_buf: Vec<Option<usize>>,
    /// Per node with a planned buffer: a view of it with the node's shape.
    handles: Vec<Option<Tensor>>,
    slots: Vec<Option<Tensor>>,
    allocated: bool,
    /// Whether fused values go to the planned buffers (else to fresh memory per run).
    planned: bool,
    stats: PlanStats,
    /// Per-step times while [`Plan::profile`] runs.
    timings: Option<Vec<(String, f64)>>,
    /// The device-graph replay ([`Plan::run_graphed`], `device_run.rs`).
    replay: device_run::Replay,
}

/// Compiles `graph` for the batch size it was captured with (its fixed shapes when it has
/// no symbolic batch). See [`compile_for_batch`].
///
/// # Errors
/// A custom op (it cannot be replayed).
pub fn compile(graph: &Graph) -> Result<Plan> {
    plan::build(graph, graph.batch.unwrap_or(0))
}

/// Compiles `graph` for batch size `n` of its symbolic batch dimension.
///
/// # Errors
/// As [`compile`]; `n == 0` for a graph with a symbolic batch.
pub fn compile_for_batch(graph: &Graph, n: usize) -> Result<Plan> {
    if graph.batch.is_some() && n == 0 {
        return Err(Error::msg("compile: batch size must be at least 1"));
    }
    plan::build(graph, n)
}

/// Restores the thread's gradient recording when dropped.
struct GradOff(bool);
impl Drop for GradOff {
    fn drop(&mut self) {
        crate::set_grad_enabled(self.0);
    }
}

impl Plan {
    /// What compilation did.
    pub fn stats(&self) -> PlanStats {
        self.stats
    }

    /// The fused groups of the plan, in execution order.
    pub fn fused_groups(&self) -> Vec<FusedGroup> {
        let view = |k: usize| {
            matches!(
                &self.graph.nodes[k].kind,
                NodeKind::Op(Op::Expand(_) | Op::Permute(..) | Op::Narrow { .. } | Op::Reshape(_))
            )
        };
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Fused { kernel, loads, .. } => Some(
                    kernel.group(
                        loads
                            .iter()
                            .map(|&v| {
                                let d = self.shapes[v].dims();
                                let kind = if d.iter().product::<usize>() == 1 {
                                    LoadKind::Scalar
                                } else if d == kernel.shape.as_slice() && !view(v) {
                                    LoadKind::Contiguous
                                } else {
                                    LoadKind::Strided {
                                        rank: kernel.shape.len(),
                                    }
                                };
                                (self.graph.nodes[v].dtype, kind)
                            })
                            .collect(),
                    ),
                ),
                Step::Eval(_) | Step::Pool(_) => None,
            })
            .collect()
    }

    /// The input shapes this plan computes for.
    pub fn input_shapes(&self) -> &[Vec<usize>] {
        &self.input_shapes
    }

    /// Runs the plan on `inputs` (one per placeholder) and returns the graph's outputs,
    /// each in memory of its own, after performing the graph's state writes
    /// ([`Graph::writes`], e.g. batch norm's running statistics) in place. Results are bit-identical to [`Graph::run`] (the fused
    /// loop computes every element with the eager kernel's formula). No gradients are
    /// recorded. Parameters are read from the tensors the graph holds, so in-place
    /// updates to them (an optimizer step) are seen by the next run.
    ///
    /// # Errors
    /// Wrong number of inputs; an input whose dtype or shape differs from the
    /// plan's (a plan never computes on other shapes: use [`CompiledGraph`] to recompile);
    /// any op's own error.
    pub fn run(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        self.check(inputs)?;
        let _restore = GradOff(crate::set_grad_enabled(false));
        if !self.allocated {
            self.allocate()?;
        }
        for (k, node) in self.graph.nodes.iter().enumerate() {
            self.slots[k] = match &node.kind {
                NodeKind::Param(t) | NodeKind::Constant(t) => Some(t.clone()),
                _ => None,
            };
        }
        for (i, x) in self.graph.inputs.iter().zip(inputs) {
            self.slots[i.0] = Some(x.clone());
        }
        let result = self
            .steps_run()
            .and_then(|_| self.graph.perform_writes(|v| self.slots[v.0].clone()));
        let outs = result.and_then(|_| {
            self.graph
                .outputs
                .iter()
                .map(|o| {
                    self.slots[o.0].clone().ok_or_else(|| {
                        Error::msg(format!(
                            "plan run: output `{}` was not computed",
                            self.graph.nodes[o.0].name
                        ))
                    })
                })
                .collect()
        });
        self.slots.iter_mut().for_each(|s| *s = None);
        outs
    }

    /// Runs the plan like [`Plan::run`] and returns, per step, its name and seconds
    /// (for finding where a step's time goes).
    ///
    /// # Errors
    /// As [`Plan::run`].
    pub fn profile(&mut self, inputs: &[Tensor]) -> Result<Vec<(String, f64)>> {
        self.timings = Some(Vec::with_capacity(self.steps.len()));
        let r = self.run(inputs);
        let t = self.timings.take().unwrap_or_default();
        r.map(|_| t)
    }

    fn steps_run(&mut self) -> Result<()> {
        for (s, step) in self.steps.iter().enumerate() {
            let t0 = self.timings.is_some().then(std::time::Instant::now);
            match step {
                Step::Eval(k) => {
                    let node = &self.graph.nodes[*k];
                    let NodeKind::Op(op) = &node.kind else {
                        continue;
                    };
                    let slots = &self.slots;
                    let get = |v: &super::ValueId| -> Result<&Tensor> {
                        slots[v.0].as_ref().ok_or_else(|| {
                            Error::msg(format!(
                                "plan run: value `{}` used after it was freed",
                                self.graph.nodes[v.0].name
                            ))
                        })
                    };
                    let planned = self.handles[*k].as_ref().filter(|_| self.planned);
                    let sec = op.secondary().and_then(|s| self.handles[s.0].as_ref());
                    let into = match planned {
                        Some(h) => eval_into::eval_into(op, &get, h, sec),
                        None => Ok(None),
                    };
                    let (out, second) = into
                        .and_then(|r| match r {
                            Some(r) => Ok(r),
                            None => eval(op, &get, &self.shapes[*k], node),
                        })
                        .map_err(|e| e.context(format!("plan run: node `{}`", node.name)))?;
                    if let (Some(sec), Some(at)) = (second, op.secondary()) {
                        self.slots[at.0] = Some(sec);
                    }
                    self.slots[*k] = Some(out);
                }
                Step::Fused {
                    kernel,
                    loads,
                    stores,
                } => {
                    let ins: Vec<&Tensor> = loads
                        .iter()
                        .map(|&v| {
                            self.slots[v].as_ref().ok_or_else(|| {
                                Error::msg(format!(
                                    "plan run: value `{}` used after it was freed",
                                    self.graph.nodes[v].name
                                ))
                            })
                        })
                        .collect::<Result<_>>()?;
                    let planned = self.planned && stores.iter().all(|&m| self.handles[m].is_some());
                    let on_device = ins
                        .first()
                        .is_some_and(|t| t.device() != crate::Device::Cpu);
                    let outs = if on_device {
                        let handles: Vec<Tensor> = stores
                            .iter()
                            .filter_map(|&m| self.handles[m].clone())
                            .collect();
                        device_run::run_fused(kernel, &ins, planned.then_some(&handles[..]))?
                    } else if planned {
                        let outs: Vec<Tensor> = stores
                            .iter()
                            .filter_map(|&m| self.handles[m].clone())
                            .collect();
                        kernel.run(&ins, &outs.iter().collect::<Vec<_>>())?;
                        outs
                    } else {
                        kernel.run_new(&ins)?
                    };
                    drop(ins);
                    for (&m, t) in stores.iter().zip(outs) {
                        self.slots[m] = Some(t);
                    }
                }
                Step::Pool(ps) => {
                    let ins: Vec<&Tensor> = (ps.loads.iter())
                        .map(|&v| {
                            self.slots[v]
                                .as_ref()
                                .ok_or_else(|| Error::msg("plan run: value freed"))
                        })
                        .collect::<Result<_>>()?;
                    // Planned buffers where there are (a store the caller receives gets
                    // fresh memory).
                    let outs = (ps.stores.iter())
                        .map(|&m| self.handles[m].clone().filter(|_| self.planned))
                        .collect();
                    let outs = ps.run(&ins, outs)?;
                    for (&m, t) in ps.stores.iter().zip(outs) {
                        self.slots[m] = Some(t);
                    }
                }
            }
            for &d in &self.drops[s] {
                self.slots[d] = None;
            }
            if let (Some(t0), Some(ts)) = (t0, self.timings.as_mut()) {
                let name = match step {
                    Step::Eval(k) => self.graph.nodes[*k].name.clone(),
                    Step::Fused { stores, .. } => format!(
                        "fused[{}]",
                        stores
                            .iter()
                            .map(|&m| self.graph.nodes[m].name.as_str())
                            .collect::<Vec<_>>()
                            .join(",")
                    ),
                    Step::Pool(ps) => ps.name(&self.graph),
                };
                ts.push((name, t0.elapsed().as_secs_f64()));
            }
        }
        Ok(())
    }

    /// Allocates the planned buffers and each planned node's view of its buffer.
    fn allocate(&mut self) -> Result<()> {
        let device = self
            .graph
            .nodes
            .first()
            .map(|n| n.device)
            .unwrap_or(crate::Device::Cpu);
        let bufs: Vec<Tensor> = self
            .buffers
            .iter()
            .map(|&(d, e)| Tensor::zeros([e], d, &device))
            .collect::<Result<_>>()?;
        for (k, b) in self.node_buf.iter().enumerate() {
            if let Some(b) = b {
                // The value's first elements of its buffer (a buffer serves values of
                // several sizes: it is as large as the largest).
                let n = self.shapes[k].elem_count();
                let view = match bufs[*b].elem_count() == n {
                    true => bufs[*b].clone(),
                    false => bufs[*b].narrow(0, 0, n)?,
                };
                self.handles[k] = Some(view.reshape(self.shapes[k].clone())?);
            }
        }
        self.allocated = true;
        Ok(())
    }

    fn check(&self, inputs: &[Tensor]) -> Result<()> {
        if inputs.len() != self.input_shapes.len() {
            return Err(Error::msg(format!(
                "plan run: expected {} inputs ({}), got {}",
                self.input_shapes.len(),
                self.graph.input_names().join(", "),
                inputs.len()
            )));
        }
        for ((id, want), x) in self.graph.inputs.iter().zip(&self.input_shapes).zip(inputs) {
            let node = &self.graph.nodes[id.0];
            if x.dtype() != node.dtype || x.dims() != want.as_slice() {
                return Err(Error::msg(format!(
                    "plan run: input `{}` must be {} of shape {:?} (the shapes this plan was compiled for), got {} of shape {}",
                    node.name,
                    node.dtype,
                    want,
                    x.dtype(),
                    x.shape()
                )));
            }
            if x.device() != node.device {
                return Err(Error::msg(format!(
                    "plan run: input `{}` must be on {:?}, got {:?}",
                    node.name,
                    node.device,
                    x.device()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod eval_into_tests;
#[cfg(test)]
mod tests;
