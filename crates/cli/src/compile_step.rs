//! `--compile` on `mlfw train` and `mlfw bench`: the training step captured once and replayed
//! compiled ([`mlfw_optim::CompiledStep`]), or eager with one printed line saying why. On
//! CUDA the plan's fused groups run as NVRTC kernels and the replay as a CUDA graph (not yet
//! run on a GPU).

use std::time::Instant;

use mlfw_core::Tensor;
use mlfw_nn::Module;
use mlfw_optim::CompiledStep;

use crate::error::Result;
use crate::learner::{StandardStep, Step, StepOutput, TrainStep};

/// The [`TrainStep`] of `mlfw train --compile`: at the first batch the step (forward,
/// cross-entropy loss, backward) is captured and compiled, or one line says why not and the
/// run continues eagerly ([`StandardStep`]); later batches replay the plan, then the
/// optimizer's own update.
#[derive(Default)]
pub enum CompileOnFirstBatch {
    /// Not tried yet.
    #[default]
    Pending,
    /// Replaying the compiled step.
    Compiled(Box<CompiledStep>),
    /// Fell back to eager.
    Eager,
}

impl TrainStep for CompileOnFirstBatch {
    fn step(&mut self, s: Step<'_>) -> Result<StepOutput> {
        if let CompileOnFirstBatch::Pending = self {
            let why = if s.amp.is_some() {
                Some("--amp is not compiled (autocast and loss scaling run eagerly)")
            } else if s.ddp.is_some() {
                Some("--distributed averages gradients during backward, which a compiled step does not")
            } else {
                None
            };
            *self = match compile(&*s.model, s.input, s.target, why) {
                Some(c) => CompileOnFirstBatch::Compiled(Box::new(c)),
                None => CompileOnFirstBatch::Eager,
            };
        }
        match self {
            // A step captured for one batch size runs other batches (an epoch's smaller last
            // batch) eagerly, as batch norm's running statistics need.
            CompileOnFirstBatch::Compiled(c) if !c.accepts(s.input) => {
                static SAID: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if !SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    eprintln!(
                        "--compile: the step was compiled for batch shape {:?}; a batch of shape {} runs eagerly",
                        c.input_shape().unwrap_or_default(),
                        s.input.shape()
                    );
                }
                StandardStep.step(s)
            }
            CompileOnFirstBatch::Compiled(c) => {
                s.optimizer.zero_grad();
                let o = c.step(s.input, s.target, s.optimizer)?;
                Ok(StepOutput {
                    output: o.logits,
                    loss: o.loss,
                })
            }
            _ => StandardStep.step(s),
        }
    }
}

/// Why `--compile` leaves a language model's step eager.
pub const LM_NOT_COMPILED: &str = "a language model's step (per-token cross-entropy over [batch, time, vocab] logits, gradient clipping) is not compiled; mlfw_optim::CompiledStep compiles classifiers' steps";

/// Prints the one line of a `--compile` that runs eagerly, saying why.
pub fn say_eager(why: &str) {
    eprintln!("--compile: falling back to eager: {why}");
}

/// Compiles the step unless `unsupported` says why not; prints one line either way.
pub fn compile(
    model: &dyn Module,
    x: &Tensor,
    y: &Tensor,
    unsupported: Option<&str>,
) -> Option<CompiledStep> {
    let t = Instant::now();
    let step = match unsupported {
        Some(why) => Err(why.to_string()),
        None => CompiledStep::new(model, x, y)
            .and_then(|mut s| {
                s.prepare(x.dims().first().copied().unwrap_or(0))?;
                Ok(s)
            })
            .map_err(|e| e.to_string()),
    };
    match step {
        Ok(s) => {
            let st = s.stats();
            eprintln!(
                "--compile: {} ops in {} steps ({} fused groups of {} ops, {} planned buffers of {:.1} MB{}); captured and compiled in {:.1} ms; batch {}: {}",
                st.nodes,
                st.steps,
                st.fused_groups,
                st.fused_nodes,
                st.buffers,
                st.buffer_bytes as f64 / 1e6,
                if s.fixed_batch() {
                    // A fixed-batch capture traces one whole step at the real batch (freeing
                    // intermediates as eager does; ResNet-18 CIFAR b32: 423 MB vs eager's 407 MB),
                    // so the process's peak memory may be set there.
                    format!(
                        "; for this batch size only: {}; peak RSS {} MB after its full-batch trace",
                        s.fixed_batch_reason().unwrap_or("its graph depends on the batch size"),
                        crate::memory::peak_rss_mb().map_or("?".into(), |m| format!("{m:.0}"))
                    )
                } else {
                    String::new()
                },
                t.elapsed().as_secs_f64() * 1e3,
                x.dims().first().copied().unwrap_or(0),
                s.split_summary(x.dims().first().copied().unwrap_or(0))
            );
            if x.device() != mlfw_core::Device::Cpu {
                eprintln!(
                    "--compile on {:?}: fused groups run as generated NVRTC kernels{}; the replay is captured as a CUDA graph at the second step and relaunched after (MLFW_CUDA_GRAPH=0: plain replay). This path has not yet been verified on a GPU.",
                    x.device(),
                    if st.fused_groups == 0 { " (none here: NVRTC not found or nothing fused)" } else { "" }
                );
            }
            Some(s)
        }
        Err(why) => {
            say_eager(&why);
            None
        }
    }
}
