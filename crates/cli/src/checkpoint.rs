//! `checkpoint.safetensors`: everything needed to resume a run bit for bit, in one file
//! written atomically — model weights (`model.<key>`), optimizer buffers (`optim.<name>`), and
//! in the metadata the optimizer and scheduler state, epoch/step, partial-epoch sums and the
//! global RNG state.

use std::collections::HashMap;
use std::path::Path;

use mlfw_core::{safetensors, Device, Tensor};
use mlfw_nn::Module;
use mlfw_optim::OptimizerState;
use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};

const META_KEY: &str = "mlfw.checkpoint";
const MODEL: &str = "model.";
const OPTIM: &str = "optim.";

/// Where training stands, besides the tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs fully finished (validated, metrics written).
    pub epoch: usize,
    /// Steps finished in epoch `epoch` (0 at an epoch boundary).
    pub step: usize,
    /// Optimizer steps since the start of the run.
    pub global_step: u64,
    /// Sum of per-step losses over the finished steps of the current epoch.
    pub loss_sum: f64,
    /// Correct predictions over the finished steps of the current epoch.
    pub correct: f64,
    /// Images seen in the finished steps of the current epoch.
    pub seen: usize,
    /// Training seconds spent in the finished steps of the current epoch.
    pub seconds: f64,
    /// Best validation accuracy so far (-1 before the first validation).
    pub best_acc: f64,
    /// The global generator's `(seed, offset)`.
    pub rng: (u64, u64),
    /// The data loader's shuffle seed (its order depends only on this seed and the epoch).
    pub loader_seed: u64,
}

impl Progress {
    /// The start of a run: nothing done, best score `best` (a value every real score beats),
    /// the global generator's current state, the loader seeded with `seed`.
    pub fn start(best: f64, seed: u64) -> Self {
        Progress {
            epoch: 0,
            step: 0,
            global_step: 0,
            loss_sum: 0.0,
            correct: 0.0,
            seen: 0,
            seconds: 0.0,
            best_acc: best,
            rng: mlfw_core::random::with_global(|g| g.state()),
            loader_seed: seed,
        }
    }

    /// The start of the epoch after this one: epoch counter advanced, the per-epoch sums
    /// cleared; best score, step count, RNG and loader seed kept.
    pub fn next_epoch(&self) -> Self {
        Progress {
            epoch: self.epoch + 1,
            step: 0,
            loss_sum: 0.0,
            correct: 0.0,
            seen: 0,
            seconds: 0.0,
            ..self.clone()
        }
    }
}

/// A checkpoint in memory.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    /// Model state dict (PyTorch keys).
    pub model: HashMap<String, Tensor>,
    /// Optimizer state.
    pub optimizer: OptimizerState,
    /// Scheduler state (JSON), if the run has a scheduler.
    pub scheduler: Option<String>,
    /// Progress counters and RNG state.
    pub progress: Progress,
    /// The f16 loss scaler's state (`--amp f16` runs).
    pub scaler: Option<mlfw_optim::GradScalerState>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    progress: Progress,
    optimizer: String,
    scheduler: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scaler: Option<mlfw_optim::GradScalerState>,
}

/// Writes a checkpoint of `model`, `optimizer`, `scheduler` and `progress` to `path`, atomically.
///
/// # Errors
/// A tensor that cannot be copied to the host; the file cannot be written.
pub fn save(
    path: &Path,
    model: &dyn Module,
    optimizer: &OptimizerState,
    scheduler: Option<String>,
    progress: &Progress,
    scaler: Option<mlfw_optim::GradScalerState>,
) -> Result<()> {
    let mut tensors: Vec<(String, Tensor)> = model
        .state_dict()
        .into_iter()
        .map(|(k, t)| (format!("{MODEL}{k}"), t))
        .collect();
    tensors.extend(
        optimizer
            .tensors
            .iter()
            .map(|(k, t)| (format!("{OPTIM}{k}"), t.clone())),
    );
    let meta = Meta {
        progress: progress.clone(),
        optimizer: optimizer.json.clone(),
        scheduler,
        scaler,
    };
    let meta = HashMap::from([(META_KEY.to_string(), serde_json::to_string(&meta)?)]);
    let bytes = safetensors::to_bytes(&tensors, Some(meta))?;
    safetensors::write_atomic(path, &bytes)?;
    Ok(())
}

/// Reads and validates a checkpoint written by [`save`]; errors name the file and the problem.
///
/// # Errors
/// The file unreadable or not a safetensors file; no `mlfw.checkpoint` metadata, or
/// metadata that is not valid JSON; a tensor whose name is neither a model nor an optimizer
/// entry; no model weights.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let bad = |msg: String| CliError::msg(format!("{}: {msg}", path.display()));
    let file = safetensors::load(path, &Device::Cpu)
        .map_err(|e| CliError::msg(format!("cannot resume: {e}")))?;
    let meta = file
        .metadata
        .get(META_KEY)
        .ok_or_else(|| bad(format!("no `{META_KEY}` metadata: not an mlfw checkpoint")))?;
    let meta: Meta = serde_json::from_str(meta).map_err(|e| bad(format!("bad metadata: {e}")))?;
    let mut model = HashMap::new();
    let mut optim = Vec::new();
    for (name, t) in file.tensors {
        if let Some(k) = name.strip_prefix(MODEL) {
            model.insert(k.to_string(), t);
        } else if let Some(k) = name.strip_prefix(OPTIM) {
            optim.push((k.to_string(), t));
        } else {
            return Err(bad(format!("unexpected tensor `{name}`")));
        }
    }
    if model.is_empty() {
        return Err(bad("no model weights".into()));
    }
    Ok(Checkpoint {
        model,
        optimizer: OptimizerState {
            tensors: optim,
            json: meta.optimizer,
        },
        scheduler: meta.scheduler,
        progress: meta.progress,
        scaler: meta.scaler,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlfw_nn::Linear;
    use mlfw_optim::{Optimizer, Sgd, SgdConfig};

    #[test]
    fn roundtrip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.safetensors");
        let m = Linear::new(3, 2, true, &Device::Cpu).unwrap();
        let opt = Sgd::new(m.parameters(), SgdConfig::new(0.1).momentum(0.9)).unwrap();
        let p = Progress {
            epoch: 1,
            step: 3,
            global_step: 10,
            loss_sum: 1.25,
            correct: 7.0,
            seen: 12,
            seconds: 0.5,
            best_acc: 0.5,
            rng: (1, 2),
            loader_seed: 0,
        };
        save(
            &path,
            &m,
            &opt.state_dict().unwrap(),
            Some("{}".into()),
            &p,
            None,
        )
        .unwrap();
        let c = load(&path).unwrap();
        assert_eq!(c.progress, p);
        assert_eq!(c.model.len(), 2);
        assert_eq!(c.scheduler.as_deref(), Some("{}"));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&path, bytes).unwrap();
        assert!(load(&path).is_err());
    }
}
