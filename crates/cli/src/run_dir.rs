//! The run folder: its file names, `config.json` (every setting of a training run) and naming.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::clock::timestamp;
use crate::clock::utc_now;
use crate::error::{CliError, Result};
use crate::run_lock::RunLock;

/// Settings of the run, as given or defaulted.
pub const CONFIG: &str = "config.json";
/// Model weights after the last finished step (PyTorch state-dict keys).
pub const LAST: &str = "last.safetensors";
/// Model weights with the best validation accuracy so far.
pub const BEST: &str = "best.safetensors";
/// Everything needed to resume: weights, optimizer, scheduler, epoch/step, RNG state.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// Every setting of a training run, saved as `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Model name (canonical).
    pub model: String,
    /// Dataset name (canonical).
    pub dataset: String,
    /// Device spec (`cpu`, `cuda`, `cuda:N`).
    pub device: String,
    /// Number of epochs to train.
    pub epochs: usize,
    /// Samples per training step.
    pub batch_size: usize,
    /// Learning rate (peak rate for OneCycle).
    pub lr: f64,
    /// Optimizer name.
    pub optimizer: String,
    /// Momentum (SGD, RMSprop) or Adam's β1.
    pub momentum: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Learning-rate schedule name.
    pub scheduler: String,
    /// Seed of initialisation, shuffling and augmentation.
    pub seed: u64,
    /// Data-loading worker threads.
    pub workers: usize,
    /// Folder holding the dataset files, if given.
    pub data_dir: Option<PathBuf>,
    /// Training steps per epoch at most (smoke tests), if given.
    pub max_steps: Option<usize>,
    /// Per-channel mean used to normalize inputs.
    pub mean: Vec<f32>,
    /// Per-channel std used to normalize inputs.
    pub std: Vec<f32>,
    /// Input image size `[C, H, W]` fed to the model.
    pub input_shape: [usize; 3],
    /// Number of classes.
    pub num_classes: usize,
    /// Training augmentation, in order (empty: none).
    pub augment: Vec<String>,
    /// Mixed precision: `none`, `bf16` or `f16` (autocast; f16 adds dynamic loss scaling).
    #[serde(default = "amp_none")]
    pub amp: String,
    /// Data-parallel over the ranks of `mpirun` (`--distributed`).
    #[serde(default)]
    pub distributed: bool,
    /// Number of ranks the run trains on (1 unless distributed); a resume must match it.
    #[serde(default = "one")]
    pub world_size: usize,
    /// Started from the hub's pretrained weights for `model` (head replaced when the class
    /// count differs).
    #[serde(default)]
    pub pretrained: bool,
    /// The hub entry of `pretrained` when not the model's name (`NAME[@VERSION]` or a
    /// registry address).
    #[serde(default)]
    pub hub_model: Option<String>,
    /// Frozen parameters: `none`, or `backbone` (all but the classifier head).
    #[serde(default = "freeze_none")]
    pub freeze: String,
    /// Learning rate of the backbone when it differs from the head's `lr`.
    #[serde(default)]
    pub lr_backbone: Option<f64>,
    /// Fraction of each class held out for validation (flat `folder:PATH` datasets).
    #[serde(default)]
    pub val_split: Option<f64>,
    /// Unreadable images of a folder dataset are left out instead of stopping the run.
    #[serde(default)]
    pub skip_bad_images: bool,
    /// The run folder.
    pub out: PathBuf,
    /// mlfw version that created the run.
    pub mlfw_version: String,
    /// The full command line (argv) that created the run.
    pub command: Vec<String>,
    /// Creation time (UTC, `YYYY-MM-DDTHH:MM:SSZ`).
    pub created: String,
}

fn one() -> usize {
    1
}

fn amp_none() -> String {
    "none".into()
}

fn freeze_none() -> String {
    "none".into()
}

/// Every `--freeze` value.
pub const FREEZE_NAMES: [&str; 2] = ["none", "backbone"];

/// The autocast dtype of an `--amp` value.
///
/// # Errors
/// `amp` is anything but none, bf16, f16.
pub fn amp_dtype(amp: &str) -> Result<Option<mlfw_core::DType>> {
    match amp {
        "none" => Ok(None),
        "bf16" => Ok(Some(mlfw_core::DType::BF16)),
        "f16" => Ok(Some(mlfw_core::DType::F16)),
        other => Err(CliError::msg(format!(
            "`amp` (--amp) is `{other}`; valid values: none, bf16, f16"
        ))),
    }
}

impl RunConfig {
    /// Errors, naming the field (and the flag that sets it), unless every setting is in range:
    /// counts at least 1, a positive finite learning rate, momentum in [0, 1), weight decay
    /// >= 0, one mean and one positive std per input channel.
    ///
    /// # Errors
    /// A setting out of range (the message names the field and its flag): a count of 0, a learning
    /// rate that is not finite and positive, momentum outside [0, 1), negative weight decay, a bad
    /// `amp`, or mean/std not one per input channel (std not positive).
    pub fn validate(&self) -> Result<()> {
        amp_dtype(&self.amp)?;
        const FLAGS: [&str; 9] = [
            "epochs",
            "batch_size",
            "max_steps",
            "lr",
            "momentum",
            "weight_decay",
            "freeze",
            "lr_backbone",
            "val_split",
        ];
        let bad = |field: &str, msg: String| {
            let flag = if FLAGS.contains(&field) {
                format!(" (--{})", field.replace('_', "-"))
            } else {
                String::new()
            };
            Err(CliError::msg(format!("`{field}`{flag} {msg}")))
        };
        for (field, v) in [
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("num_classes", self.num_classes),
            ("max_steps", self.max_steps.unwrap_or(1)),
        ] {
            if v == 0 {
                return bad(field, "is 0; must be at least 1".into());
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", format!("is {}; must be a finite value > 0", self.lr));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return bad(
                "momentum",
                format!("is {}; must be in [0, 1)", self.momentum),
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(
                "weight_decay",
                format!("is {}; must be a finite value >= 0", self.weight_decay),
            );
        }
        if !FREEZE_NAMES.contains(&self.freeze.as_str()) {
            return bad(
                "freeze",
                format!(
                    "is `{}`; valid values: {}",
                    self.freeze,
                    FREEZE_NAMES.join(", ")
                ),
            );
        }
        if let Some(lr) = self.lr_backbone {
            if !(lr.is_finite() && lr > 0.0) {
                return bad(
                    "lr_backbone",
                    format!("is {lr}; must be a finite value > 0"),
                );
            }
            if self.freeze == "backbone" {
                return bad(
                    "lr_backbone",
                    "is set, but --freeze backbone trains no backbone parameter".into(),
                );
            }
        }
        if let Some(f) = self.val_split {
            if !(f > 0.0 && f < 1.0) {
                return bad(
                    "val_split",
                    format!("is {f}; must lie strictly between 0 and 1"),
                );
            }
        }
        let [c, h, w] = self.input_shape;
        if c == 0 || h == 0 || w == 0 {
            return bad(
                "input_shape",
                format!("is {:?}; sizes must be >= 1", self.input_shape),
            );
        }
        if self.mean.len() != c || self.std.len() != c {
            return bad(
                "mean",
                format!(
                    "and std have {} and {} values; the input has {c} channels",
                    self.mean.len(),
                    self.std.len()
                ),
            );
        }
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || self.mean.iter().any(|m| !m.is_finite())
        {
            return bad("std", "and mean must be finite, std > 0".into());
        }
        Ok(())
    }
}

/// Reads `config.json` of the run folder `dir` (not yet validated: a resume may still change
/// some settings; see [`RunConfig::validate`]).
///
/// # Errors
/// No readable `config.json` in `dir`; malformed JSON (the file is named).
pub fn read_config(dir: &Path) -> Result<RunConfig> {
    let path = dir.join(CONFIG);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CliError::msg(format!(
            "{}: {e} (is {} a run folder made by `mlfw train`?)",
            path.display(),
            dir.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| CliError::msg(format!("{}: {e}", path.display())))
}

/// Writes `config.json` into `dir` atomically.
///
/// # Errors
/// The file cannot be written.
pub fn write_config(dir: &Path, cfg: &RunConfig) -> Result<()> {
    let text = serde_json::to_string_pretty(cfg)? + "\n";
    mlfw_core::safetensors::write_atomic(dir.join(CONFIG), text.as_bytes())?;
    Ok(())
}

/// Creates a fresh run folder and locks it (see [`RunLock`]); errors if `dir` already holds a
/// run (checked under the lock, so two runs started at once cannot both pass), or is locked.
///
/// # Errors
/// `dir` cannot be created; it is locked by another run; it already holds a run (a checkpoint,
/// or settings of a run stopped before its first checkpoint).
pub fn create(dir: &Path) -> Result<RunLock> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::msg(format!("cannot create {}: {e}", dir.display())))?;
    let lock = RunLock::acquire(dir)?;
    if dir.join(CHECKPOINT).exists() {
        return Err(CliError::msg(format!(
            "{} already holds a run; continue it with --resume {0} or choose another --out",
            dir.display()
        )));
    }
    if dir.join(CONFIG).exists() {
        return Err(CliError::msg(format!(
            "{} holds a run that stopped before its first checkpoint; start it over from step 0 \
             with --resume {0}, or choose another --out",
            dir.display()
        )));
    }
    Ok(lock)
}

/// `runs/<model>-<dataset>-<YYYYMMDD-HHMMSS>`.
pub fn default_dir(model: &str, dataset: &str) -> PathBuf {
    let (y, mo, d, h, mi, s) = utc_now();
    PathBuf::from("runs").join(format!(
        "{model}-{dataset}-{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_refuses_an_existing_run() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("r");
        drop(create(&run).unwrap());
        std::fs::write(run.join(CONFIG), "{}").unwrap();
        assert!(create(&run).unwrap_err().message().contains("step 0"));
        std::fs::write(run.join(CHECKPOINT), "").unwrap();
        assert!(create(&run).unwrap_err().message().contains("--resume"));
    }
}
