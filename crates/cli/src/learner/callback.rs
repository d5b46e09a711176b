//! Callbacks: code that runs at the start of a fit, after every step, on every validation
//! batch and after every epoch,
//! and may end the run early ([`EarlyStopping`]), or write extra run-folder files
//! ([`PerplexityCsv`]). The TensorBoard event file is one
//! ([`crate::tensorboard_log::TensorBoard`]); progress display, metrics files and checkpoints
//! are the learner's own.

use std::path::Path;

use mlfw_core::Tensor;
use mlfw_nn::Module;

use crate::error::{CliError, Result};
use crate::metrics::EpochMetrics;

/// Whether training goes on after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Train the next epoch.
    Continue,
    /// End the run after this epoch (its checkpoint is written first).
    Stop,
}

/// Where a fit starts.
pub struct FitStart<'a> {
    /// The run folder, if the learner writes one.
    pub run_dir: Option<&'a Path>,
    /// Epochs already finished (non-zero when resuming).
    pub epoch: usize,
    /// Epochs the run trains in all.
    pub epochs: usize,
}

/// A finished training step.
pub struct StepEnd<'a> {
    /// Optimizer steps since the start of the run.
    pub global_step: u64,
    /// The batch's loss.
    pub loss: f64,
    /// The batch's accuracy (argmax of the output against the targets).
    pub accuracy: f64,
    /// The optimizer's learning rate after the step.
    pub lr: f64,
    /// The batch's images as the loader delivered them (before the input transform).
    pub images: &'a Tensor,
}

/// Hooks into [`Learner::fit`](super::Learner::fit). Every method has a default that does
/// nothing, so a callback implements only what it needs.
pub trait Callback {
    /// Before the first epoch of this fit.
    ///
    /// Errors: end the fit before it trains.
    fn on_fit_start(&mut self, _start: &FitStart<'_>) -> Result<()> {
        Ok(())
    }
    /// After every training step.
    ///
    /// Errors: end the fit (no checkpoint is written).
    fn on_step_end(&mut self, _step: &StepEnd<'_>) -> Result<()> {
        Ok(())
    }
    /// After each validation batch, with the model's output and the targets (both on the
    /// model's device, no gradients): the place to accumulate a metric of your own (top-5
    /// accuracy, F1, a confusion matrix) and report it in [`Callback::on_epoch_end`].
    ///
    /// Errors: end the fit.
    fn on_val_batch(&mut self, _output: &Tensor, _target: &Tensor) -> Result<()> {
        Ok(())
    }
    /// After an epoch's validation and metrics, before its checkpoint is written.
    ///
    /// Errors: end the fit (no checkpoint is written for this epoch).
    fn on_epoch_end(&mut self, _row: &EpochMetrics, _model: &dyn Module) -> Result<Control> {
        Ok(Control::Continue)
    }
}

/// Stops training when the validation loss has not improved by more than `min_delta` for
/// `patience` epochs in a row (Keras's `EarlyStopping(monitor="val_loss")`). Its count starts
/// afresh with each fit, resumed runs included.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    patience: usize,
    min_delta: f64,
    best: f64,
    bad_epochs: usize,
}

impl EarlyStopping {
    /// Stops after `patience` epochs without an improvement larger than `min_delta`.
    ///
    /// # Errors
    /// `patience` of 0, or a negative or non-finite `min_delta`.
    pub fn new(patience: usize, min_delta: f64) -> Result<Self> {
        if patience == 0 || !(min_delta >= 0.0 && min_delta.is_finite()) {
            return Err(CliError::msg(format!(
                "EarlyStopping: patience must be >= 1 and min_delta finite and >= 0 \
                 (got {patience}, {min_delta})"
            )));
        }
        Ok(EarlyStopping {
            patience,
            min_delta,
            best: f64::INFINITY,
            bad_epochs: 0,
        })
    }

    /// Epochs since the last improvement.
    pub fn bad_epochs(&self) -> usize {
        self.bad_epochs
    }
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, row: &EpochMetrics, _model: &dyn Module) -> Result<Control> {
        if row.val_loss < self.best - self.min_delta {
            self.best = row.val_loss;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        Ok(match self.bad_epochs >= self.patience {
            true => Control::Stop,
            false => Control::Continue,
        })
    }
}

/// Writes `perplexity.csv` in the run folder: a header `epoch,train_perplexity,val_perplexity`
/// then one row per epoch (`exp` of the mean losses, 4 decimals). Epoch 1 starts the file
/// afresh. Nothing without a run folder. [`Learner::perplexity`](super::Learner::perplexity)
/// adds it.
#[derive(Debug, Default, Clone)]
pub struct PerplexityCsv {
    path: Option<std::path::PathBuf>,
}

impl Callback for PerplexityCsv {
    fn on_fit_start(&mut self, start: &FitStart<'_>) -> Result<()> {
        self.path = start.run_dir.map(|d| d.join("perplexity.csv"));
        Ok(())
    }

    fn on_epoch_end(&mut self, r: &EpochMetrics, _model: &dyn Module) -> Result<Control> {
        use std::io::Write;
        let Some(path) = &self.path else {
            return Ok(Control::Continue);
        };
        let fresh = !path.exists() || r.epoch == 1;
        let err = |e: std::io::Error| CliError::msg(format!("{}: {e}", path.display()));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(!fresh)
            .write(true)
            .truncate(fresh)
            .open(path)
            .map_err(err)?;
        if fresh {
            writeln!(f, "epoch,train_perplexity,val_perplexity").map_err(err)?;
        }
        writeln!(
            f,
            "{},{:.4},{:.4}",
            r.epoch,
            r.train_loss.exp(),
            r.val_loss.exp()
        )
        .map_err(err)?;
        Ok(Control::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(val_loss: f64) -> EpochMetrics {
        EpochMetrics {
            epoch: 1,
            train_loss: 0.0,
            train_acc: 0.0,
            val_loss,
            val_acc: 0.0,
            lr: 0.1,
            time_s: 0.0,
            images_per_s: 0.0,
        }
    }

    #[test]
    fn early_stopping_counts_epochs_without_improvement() {
        let m = mlfw_nn::Linear::new(1, 1, false, &mlfw_core::Device::Cpu).unwrap();
        let mut es = EarlyStopping::new(2, 0.01).unwrap();
        let seq = [1.0, 0.5, 0.495, 0.6, 0.4, 0.45, 0.41];
        let got: Vec<Control> = seq
            .iter()
            .map(|&l| es.on_epoch_end(&row(l), &m).unwrap())
            .collect();
        use Control::*;
        assert_eq!(
            got,
            [Continue, Continue, Continue, Stop, Continue, Continue, Stop]
        );
    }

    #[test]
    fn early_stopping_rejects_bad_settings() {
        assert!(EarlyStopping::new(0, 0.0).is_err());
        assert!(EarlyStopping::new(1, -1.0).is_err());
        assert!(EarlyStopping::new(1, f64::NAN).is_err());
    }
}
