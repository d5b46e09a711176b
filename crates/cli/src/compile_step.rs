//! `--compile` on `mlfw train` and `mlfw bench`: the training step captured once and replayed
//! compiled ([`mlfw_optim::CompiledStep`]), or eager with one printed line saying why.

use std::time::Instant;

use mlfw_core::Tensor;
use mlfw_nn::Module;
use mlfw_optim::CompiledStep;

use crate::run_dir::RunConfig;

/// Compiles a training run's step for the batch (`x`, `y`), or prints
/// `--compile: falling back to eager: <why>` and returns `None`.
pub fn try_new(
    model: &dyn Module,
    x: &Tensor,
    y: &Tensor,
    cfg: &RunConfig,
) -> Option<CompiledStep> {
    let why = if cfg.amp != "none" {
        Some("--amp is not compiled (autocast and loss scaling run eagerly)")
    } else if cfg.distributed {
        Some("--distributed averages gradients during backward, which a compiled step does not")
    } else {
        None
    };
    compile(model, x, y, why)
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
        None if x.device() != mlfw_core::Device::Cpu => {
            Err("compiled steps run on the CPU only for now".to_string())
        }
        None => CompiledStep::new(model, x, y).map_err(|e| e.to_string()),
    };
    match step {
        Ok(s) => {
            let st = s.stats();
            eprintln!(
                "--compile: {} ops in {} steps ({} fused groups of {} ops, {} planned buffers of {:.1} MB); captured and compiled in {:.1} ms",
                st.nodes,
                st.steps,
                st.fused_groups,
                st.fused_nodes,
                st.buffers,
                st.buffer_bytes as f64 / 1e6,
                t.elapsed().as_secs_f64() * 1e3
            );
            Some(s)
        }
        Err(why) => {
            eprintln!("--compile: falling back to eager: {why}");
            None
        }
    }
}
