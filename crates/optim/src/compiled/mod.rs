//! A classifier's training step captured once and replayed compiled
//! ([`mlfw_core::graph::compile`]): forward, cross-entropy and backward run as one plan
//! with fused elementwise passes and planned buffers; the optimizer's fused in-place update
//! follows on the same parameters.
//!
//! When the step is sample-separable (no value mixes samples except the loss mean and the
//! weight gradients' sums over the batch: true for LeNet-5-like models, not for batch norm),
//! a batch can run as micro-batches (opt-in: `MLFW_COMPILE_SPLIT=auto` or a size, or
//! [`CompiledStep::with_split`]; the default is the whole batch), one per thread, each plan
//! single-threaded with its own buffers; the gradients and loss are combined as `Σ_k (n_k / n)·g_k` (`n_k` counting the
//! micro-batch's targets) and the logits concatenated ([`SplitMode`], `MLFW_COMPILE_SPLIT`).
//! Summation order then differs from eager's: one step's gradients are within ≈2e-6
//! relative of eager's and 20 SGD-momentum steps of LeNet-5 within 1e-6, but after 100 steps
//! the weights differ by up to 5.7e-2 relative, as much as eager's own differ after a one-ulp
//! change to one weight (a ReLU or max-pool choice flips; `crates/vision/tests/compiled_split.rs`,
//! BENCHMARKS.md). The whole-batch replay (the default, [`SplitMode::Off`]) is
//! bit-identical to eager, and in the quiet sitting of 2026-11-30 it was as fast as the
//! split at batch 256 and faster at batch 64, so splitting stays opt-in. Any training loop
//! can use it:
//!
//! ```
//! use mlfw_core::{DType, Device, Tensor};
//! use mlfw_nn::{Linear, Module, Relu, Sequential};
//! use mlfw_optim::{CompiledStep, Optimizer, Sgd, SgdConfig};
//! let model = Sequential::new()
//!     .append(Linear::new(4, 8, true, &Device::Cpu)?)
//!     .append(Relu)
//!     .append(Linear::new(8, 3, true, &Device::Cpu)?);
//! let mut opt = Sgd::new(model.parameters(), SgdConfig::new(0.1).momentum(0.9))?;
//! let x = Tensor::ones([2, 4], DType::F32, &Device::Cpu)?;
//! let y = Tensor::from_vec(vec![0i64, 2], [2], &Device::Cpu)?;
//! let mut step = CompiledStep::new(&model, &x, &y)?;
//! let out = step.step(&x, &y, &mut opt)?;
//! assert!(out.loss.is_finite());
//! # Ok::<(), mlfw_core::Error>(())
//! ```

use crate::Optimizer;
use mlfw_core::graph::{Capture, CompiledGraph, PlanStats};
use mlfw_core::{Error, Result, Tensor};
use mlfw_nn::{functional as F, Module};
use std::cell::RefCell;

mod split;
pub use split::SplitMode;
use split::Splitter;

/// Plans kept for different input shapes (e.g. a smaller last batch of an epoch).
const PLAN_CACHE: usize = 4;

/// What one compiled step returns.
pub struct StepOutput {
    /// The mean cross-entropy, read back to the host. When it is not finite the optimizer
    /// was not stepped (the caller's divergence check then stops the run, as in eager).
    pub loss: f64,
    /// The logits `[N, classes]` (for accuracy).
    pub logits: Tensor,
}

/// A compiled training step of a classifier (mean cross-entropy on i64 targets).
pub struct CompiledStep {
    /// Number of classes (the logits' last dim), for the target check.
    classes: usize,
    params: Vec<Tensor>,
    /// Whether each parameter gets a gradient (eager leaves the others' `grad` unset, so
    /// the optimizer skips them; so does the compiled step).
    has_grad: Vec<bool>,
    graph: CompiledGraph,
    /// The input shape, when the step was captured for one batch size only.
    fixed_input: Option<Vec<usize>>,
    /// Why the step was captured for one batch size only.
    fixed_reason: Option<String>,
    /// The micro-batch runner, or why the step is not split.
    split: std::result::Result<Splitter, String>,
    mode: SplitMode,
}

impl CompiledStep {
    /// Captures `model`'s training step on a sample batch (`input`, `target`) and compiles
    /// it. The model's mode (train/eval) is used as it is. The sample batch is only run
    /// through the model (twice, to find the batch dimension); parameters and buffers are
    /// not changed. Buffers the step writes in place (batch norm's running statistics) are
    /// state writes of the graph, performed by every compiled step as eager would.
    ///
    /// A step that is not the same computation at every batch size (batch norm's unbiased
    /// `n / (n - 1)`; ViT's backward under `MLFW_FUSED=0`, which makes zeros of a
    /// batch-sized shape) is captured
    /// for the sample batch's size only: [`CompiledStep::accepts`] then says which batches it
    /// takes (run the others eagerly) and [`CompiledStep::fixed_batch_reason`] why.
    ///
    /// # Errors
    /// The step cannot be captured faithfully (fall back to eager): the forward failing; a
    /// model without parameters; a step that depends on random draws (dropout), writes tensors
    /// other than its parameters and buffers in place, reads a buffer after writing it, or reads
    /// values on the host during the forward pass; a custom op; fused kernels (attention,
    /// layer norm, GELU, LSTM) that the capture records as their composite ops, which are not
    /// bit-identical to eager (ViT; `MLFW_FUSED=0` compiles it). `MLFW_COMPILE_SPLIT` set to
    /// something other than `auto`, `0` or a number.
    pub fn new(model: &dyn Module, input: &Tensor, target: &Tensor) -> Result<Self> {
        let params = model.parameters();
        if params.is_empty() {
            return Err(Error::msg("compiled step: the model has no parameters"));
        }
        let mut named = model.named_parameters();
        named.extend(model.named_buffers());
        let has_grad = RefCell::new(vec![true; params.len()]);
        let capture = |symbolic: bool| {
            Capture::new()
                .input("input", input)
                .input("target", target)
                .params(named.clone())
                .symbolic_batch(symbolic)
                .refuse(&[mlfw_core::graph::RANDOM_DRAW, mlfw_core::graph::COMPOSITE])
        };
        // Random draws and composite kernels end a capture at its first trace (`refuse`).
        let run = |symbolic: bool| {
            capture(symbolic)
                .run(|xs| step_fn(model, &params, &has_grad, xs))
                .map_err(refusal)
        };
        // A step that is not the same at every batch size (batch norm's `n / (n - 1)`, zeros
        // of a batch-sized shape made by a backward rule) is traced again at the sample batch.
        let mut fixed_reason = None;
        let graph = match run(true) {
            Err(e) if e.to_string().contains(mlfw_core::graph::BATCH_DEPENDENT) => {
                fixed_reason = Some(fixed_batch_reason(&e.to_string()));
                run(false)?
            }
            r => r?,
        };
        // Cross-entropy reads the i64 targets only to check their range; `step` checks it.
        let replay_unsafe = graph
            .warnings
            .iter()
            .find(|w| !w.contains("read the values of an int64"));
        if let Some(w) = replay_unsafe {
            return Err(Error::msg(format!(
                "the step has effects a replay would not repeat: {w}"
            )));
        }
        let classes = graph
            .node(graph.outputs[1])
            .shape
            .last()
            .map_or(0, |d| d.fixed);
        let fixed_input = graph.batch.is_none().then(|| input.dims().to_vec());
        let fixed_reason = fixed_input.as_ref().and(fixed_reason);
        let split = Splitter::new(&graph).map_err(|e| e.to_string());
        // Weight gradients as contiguous products, not transposed views the optimizer would
        // copy every step.
        let mut graph = graph;
        graph.transpose_matmul_outputs();
        let graph = CompiledGraph::new(graph, PLAN_CACHE)?;
        Ok(CompiledStep {
            classes,
            params,
            has_grad: has_grad.into_inner(),
            graph,
            fixed_input,
            fixed_reason,
            split,
            mode: SplitMode::from_env()?,
        })
    }

    /// Whether the step replays as a CUDA graph on a CUDA device (default: on, unless
    /// `MLFW_CUDA_GRAPH=0`): the second step of each batch shape captures the replay, later
    /// ones relaunch it; a replay that cannot be captured runs plainly (one line on stderr
    /// says why). No effect on the CPU. Not yet run on a GPU.
    pub fn with_device_graph(mut self, on: bool) -> Self {
        self.graph = self.graph.device_graphs(on);
        self
    }

    /// Whether the plan used last replays through a captured device graph.
    pub fn graph_captured(&self) -> bool {
        self.graph.plan().graph_captured()
    }

    /// Sets how batches are split into micro-batches (default: `MLFW_COMPILE_SPLIT`, else
    /// [`SplitMode::Off`], the whole batch). A step that is not sample-separable always runs
    /// whole batches.
    pub fn with_split(mut self, mode: SplitMode) -> Self {
        self.mode = mode;
        self
    }

    /// Compiles the micro-batch plans a batch of `n` samples needs now, rather than at the
    /// first step of that size (nothing to do for a whole-batch step).
    ///
    /// # Errors
    /// A plan failing to compile.
    pub fn prepare(&mut self, n: usize) -> Result<()> {
        let sizes = self.micro_batches(n);
        match &mut self.split {
            Ok(s) if sizes.len() > 1 && self.fixed_input.is_none() => s.prepare(&sizes),
            _ => Ok(()),
        }
    }

    /// Micro-batch sizes a batch of `n` samples runs as (one entry: the whole batch).
    pub fn micro_batches(&self, n: usize) -> Vec<usize> {
        match &self.split {
            Ok(_) => self.mode.sizes(n, mlfw_core::parallel::num_threads()),
            Err(_) => vec![n],
        }
    }

    /// One line saying how a batch of `n` samples runs, e.g. `2 micro-batches of 32 samples
    /// in parallel (sample-separable)` or `whole batch (not sample-separable: …)`.
    pub fn split_summary(&self, n: usize) -> String {
        let sizes = self.micro_batches(n);
        match (&self.split, sizes.as_slice()) {
            (Err(why), _) => format!("whole batch ({why})"),
            (Ok(_), [_]) => format!(
                "whole batch ({})",
                match self.mode {
                    SplitMode::Off => {
                        "bit-identical to eager; MLFW_COMPILE_SPLIT=auto splits it".into()
                    }
                    _ => format!(
                        "sample-separable; {} thread(s), {n} samples: too few to split",
                        mlfw_core::parallel::num_threads()
                    ),
                }
            ),
            (Ok(_), s) => {
                let mut uniq: Vec<String> = Vec::new();
                for v in s {
                    let v = v.to_string();
                    if !uniq.contains(&v) {
                        uniq.push(v);
                    }
                }
                format!(
                    "{} micro-batches of {} samples on {} threads (sample-separable)",
                    s.len(),
                    uniq.join("/"),
                    mlfw_core::parallel::num_threads()
                )
            }
        }
    }

    /// Whether [`CompiledStep::step`] takes an input of this shape: any batch size, unless
    /// the step was captured for one batch size only (see [`CompiledStep::new`]).
    pub fn accepts(&self, input: &Tensor) -> bool {
        self.fixed_input
            .as_ref()
            .is_none_or(|d| d.as_slice() == input.dims())
    }

    /// Whether the step takes one batch size only (see [`CompiledStep::new`]).
    pub fn fixed_batch(&self) -> bool {
        self.fixed_input.is_some()
    }

    /// The one input shape the step takes, when it takes one only.
    pub fn input_shape(&self) -> Option<Vec<usize>> {
        self.fixed_input.clone()
    }

    /// Why the step takes one batch size only (e.g. `its scalars depend on the batch size`),
    /// when it does.
    pub fn fixed_batch_reason(&self) -> Option<&str> {
        self.fixed_reason.as_deref()
    }
}

/// The part of a symbolic capture's error a user needs: what differs between batch sizes
/// (`its scalars depend on the batch size`, `constant `constant_4` has a batch-sized shape`).
fn fixed_batch_reason(err: &str) -> String {
    if err.contains(mlfw_core::graph::SCALARS_DEPEND) {
        return format!(
            "{} (batch norm's unbiased variance)",
            mlfw_core::graph::SCALARS_DEPEND
        );
    }
    match (err.find('('), err.rfind(')')) {
        (Some(a), Some(b)) if a < b && err[a..b].contains("has a batch-sized shape") => format!(
            "a tensor of batch-sized shape is not computed from the input ({}; e.g. zeros a backward rule makes)",
            &err[a + 1..b]
        ),
        (Some(a), Some(b)) if a < b => {
            format!("its graph differs between batch sizes: {}", &err[a + 1..b])
        }
        _ => err.to_string(),
    }
}

/// A capture's error, or the refusal it stands for: a random draw (a replay would reuse it)
/// or fused kernels recorded as composite ops ([`composite_refusal`]).
fn refusal(e: Error) -> Error {
    let msg = e.to_string();
    if msg.contains(mlfw_core::graph::RANDOM_DRAW) {
        let note = msg
            .find("a random generator")
            .map_or(msg.as_str(), |i| &msg[i..]);
        return Error::msg(format!(
            "the step has effects a replay would not repeat: {note}"
        ));
    }
    if msg.contains(mlfw_core::graph::COMPOSITE) {
        return composite_refusal(&msg);
    }
    e
}

/// The refusal of a step whose capture recorded fused kernels (attention, layer norm, GELU,
/// LSTM) as their composite ops, from the capture's note `msg`: such a plan would differ from
/// eager training by more than rounding after some steps (ViT: 7e-6 relative after 100), and
/// be no faster.
fn composite_refusal(msg: &str) -> Error {
    // The kernels' names, from every "the fused NAME kernel …" note in `msg`.
    let mut names: Vec<&str> = Vec::new();
    for part in msg.split("the fused ").skip(1) {
        if let Some((name, _)) = part.split_once(" kernel ") {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Error::msg(format!(
        "the step runs fused kernels ({}) that a graph holds as their composite ops, whose gradients agree with eager's only to rounding, not bit for bit; MLFW_FUSED=0 makes eager run the composite ops too",
        names.join(", ")
    ))
}

/// The captured step: forward, mean cross-entropy, gradients (zeros for parameters that
/// get none, which `has_grad` records); outputs `[loss, logits, grads...]`.
fn step_fn(
    model: &dyn Module,
    params: &[Tensor],
    has_grad: &RefCell<Vec<bool>>,
    xs: &[Tensor],
) -> Result<Vec<Tensor>> {
    let logits = model.forward(&xs[0])?;
    let loss = F::cross_entropy(&logits, &xs[1])?;
    let grads = mlfw_autograd::grad(&loss, params, None)?;
    let mut out = vec![loss, logits];
    let mut hg = has_grad.borrow_mut();
    for (i, (g, p)) in grads.into_iter().zip(params).enumerate() {
        hg[i] = g.is_some();
        out.push(match g {
            Some(g) => g,
            None => p.zeros_like()?,
        });
    }
    Ok(out)
}

impl CompiledStep {
    /// One training step on (`input`, `target`): the compiled forward + loss + backward,
    /// then `opt.step()` with the computed gradients (the same fused update eager training
    /// runs; schedules and optimizer state dicts keep working). `opt` must hold the model's
    /// parameters. A new input shape compiles a new plan (logged, bounded cache). A
    /// sample-separable step runs as micro-batches ([`CompiledStep::micro_batches`]); one
    /// whose micro-batch has no counted target (all `-100`) runs that batch whole.
    ///
    /// # Errors
    /// A target outside `0..classes` (as eager cross-entropy); inputs the captured
    /// step does not accept; any kernel's or the optimizer's error.
    pub fn step(
        &mut self,
        input: &Tensor,
        target: &Tensor,
        opt: &mut dyn Optimizer,
    ) -> Result<StepOutput> {
        if target.dtype() == mlfw_core::DType::I64 {
            let bad = target
                .to_vec::<i64>()?
                .into_iter()
                .find(|&v| v != -100 && (v < 0 || v as usize >= self.classes));
            if let Some(v) = bad {
                return Err(Error::msg(format!(
                    "cross_entropy: target {v} is out of bounds for {} classes",
                    self.classes
                )));
            }
        }
        let inputs = [input.clone(), target.clone()];
        let sizes = self.micro_batches(input.dims().first().copied().unwrap_or(0));
        let split = match &mut self.split {
            Ok(s) if sizes.len() > 1 && self.fixed_input.is_none() => s.run(&inputs, &sizes)?,
            _ => None,
        };
        let outs = match split {
            Some(outs) => outs,
            None => self.graph.run(&inputs)?,
        };
        let loss = outs[0].item_f64()?;
        if loss.is_finite() {
            for ((p, g), &has) in self.params.iter().zip(&outs[2..]).zip(&self.has_grad) {
                p.set_grad(has.then(|| g.clone()));
            }
            let r = opt.step();
            self.params.iter().for_each(|p| p.set_grad(None));
            r?;
        }
        Ok(StepOutput {
            loss,
            logits: outs[1].clone(),
        })
    }

    /// The parameters are the model's own tensors, updated in place: the model always holds
    /// the trained weights (for checkpoints and evaluation). This checks that `model` is
    /// the one this step was compiled for.
    ///
    /// # Errors
    /// A model whose parameters are not the compiled step's.
    pub fn check_model(&self, model: &dyn Module) -> Result<()> {
        let ps = model.parameters();
        if ps.len() != self.params.len()
            || ps.iter().zip(&self.params).any(|(a, b)| !a.same_storage(b))
        {
            return Err(Error::msg(
                "compiled step: the model's parameters are not the ones this step was compiled for",
            ));
        }
        Ok(())
    }

    /// Statistics of the whole-batch plan used last (compiled even when batches run as
    /// micro-batches; each micro-batch plan has the same ops and steps).
    pub fn stats(&self) -> PlanStats {
        self.graph.plan().stats()
    }

    /// Runs the compiled forward + loss + backward (no optimizer step) and returns each
    /// plan step's name and seconds.
    ///
    /// # Errors
    /// As [`CompiledStep::step`].
    pub fn profile(&mut self, input: &Tensor, target: &Tensor) -> Result<Vec<(String, f64)>> {
        self.graph.profile(&[input.clone(), target.clone()])
    }

    /// The captured graph (for printing and inspection).
    pub fn graph(&self) -> &mlfw_core::graph::Graph {
        self.graph.graph()
    }

    /// The fused groups of the plan used last (for inspection and code generation).
    pub fn fused_groups(&self) -> Vec<mlfw_core::graph::FusedGroup> {
        self.graph.plan().fused_groups()
    }

    /// Plans compiled so far (one per new input shape).
    pub fn compilations(&self) -> usize {
        self.graph.compilations()
    }
}
