//! The TensorBoard event file of an `mlfw train` run folder: scalars per step and per
//! epoch, histograms of every parameter and its gradient per epoch, one image grid of a
//! training batch, and the run's config as text. Flushed every epoch.

use std::path::Path;

use mlfw_core::Tensor;
use mlfw_nn::Module;
use mlfw_tensorboard::{make_grid, SummaryWriter};

use crate::error::Result;
use crate::learner::{Callback, Control, FitStart, StepEnd};
use crate::metrics::EpochMetrics;
use crate::run_dir::CONFIG;

/// A run's event-file writer.
pub struct RunLog {
    w: SummaryWriter,
    batch_logged: bool,
}

impl RunLog {
    /// Opens a new event file in the run folder `dir` and logs its `config.json` as text.
    ///
    /// # Errors
    /// Creating the file.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut w = SummaryWriter::new(dir)?;
        if let Ok(cfg) = std::fs::read_to_string(dir.join(CONFIG)) {
            // Indented: Markdown shows it as a code block.
            let text: String = cfg.lines().map(|l| format!("    {l}\n")).collect();
            w.add_text("config", &text, 0)?;
        }
        w.flush()?;
        Ok(RunLog {
            w,
            batch_logged: false,
        })
    }

    /// Logs one training step: its loss, batch accuracy and learning rate; the first time,
    /// also a grid of the batch's (unnormalized) images when it is a float image batch
    /// `[N, C, H, W]` (a language model's token ids are not drawn).
    ///
    /// # Errors
    /// Writing the file.
    pub fn step(&mut self, step: u64, loss: f64, acc: f64, lr: f64, images: &Tensor) -> Result<()> {
        self.w.add_scalars(
            &[("step/loss", loss), ("step/accuracy", acc), ("step/lr", lr)],
            step,
        )?;
        if !self.batch_logged {
            self.batch_logged = true;
            let n = images.dims().first().copied().unwrap_or(0).min(64);
            if n > 0 && images.rank() == 4 && images.dtype().is_float() {
                let grid = make_grid(&images.narrow(0, 0, n)?, 8)?;
                self.w.add_image("train/batch", &grid, step)?;
            }
        }
        Ok(())
    }

    /// Logs an epoch's metrics and the histograms of `model`'s parameters and gradients
    /// (step = the epoch number), then flushes.
    ///
    /// # Errors
    /// Reading a tensor; writing the file.
    pub fn epoch(&mut self, row: &EpochMetrics, model: &dyn Module) -> Result<()> {
        let e = row.epoch as u64;
        self.w.add_scalars(
            &[
                ("epoch/train_loss", row.train_loss),
                ("epoch/train_accuracy", row.train_acc),
                ("epoch/val_loss", row.val_loss),
                ("epoch/val_accuracy", row.val_acc),
                ("epoch/lr", row.lr),
                ("epoch/images_per_s", row.images_per_s),
            ],
            e,
        )?;
        for (name, p) in model.named_parameters() {
            self.w.add_histogram(&format!("params/{name}"), &p, e)?;
            if let Some(g) = p.grad() {
                self.w.add_histogram(&format!("grads/{name}"), &g, e)?;
            }
        }
        Ok(self.w.flush()?)
    }
}

/// The TensorBoard callback of a [`crate::learner::Learner`]: opens a new event file in the run
/// folder when a fit that has epochs left starts (nothing without a run folder), logs every
/// step and epoch.
#[derive(Default)]
pub struct TensorBoard {
    log: Option<RunLog>,
}

impl TensorBoard {
    /// A callback that opens its event file when the fit starts.
    pub fn new() -> Self {
        TensorBoard::default()
    }
}

impl Callback for TensorBoard {
    fn on_fit_start(&mut self, start: &FitStart<'_>) -> Result<()> {
        if let (None, Some(dir), true) = (&self.log, start.run_dir, start.epoch < start.epochs) {
            self.log = Some(RunLog::open(dir)?);
        }
        Ok(())
    }

    fn on_step_end(&mut self, s: &StepEnd<'_>) -> Result<()> {
        match self.log.as_mut() {
            Some(log) => log.step(s.global_step, s.loss, s.accuracy, s.lr, s.images),
            None => Ok(()),
        }
    }

    fn on_epoch_end(&mut self, row: &EpochMetrics, model: &dyn Module) -> Result<Control> {
        if let Some(log) = self.log.as_mut() {
            log.epoch(row, model)?;
        }
        Ok(Control::Continue)
    }
}
