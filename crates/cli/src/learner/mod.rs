//! [`Learner`]: the training loop as a library — model + optimizer + schedule + loaders +
//! loss → epochs of steps, validation, metrics, callbacks, and (with a run folder) metrics
//! files, best/last weights, checkpoints, curves, exact resume, Ctrl-C and NaN stop.
//!
//! `mlfw train` builds one from its flags ([`crate::trainer`]); a program builds one directly:
//! `Learner::new(model, optimizer, train_loader, val_loader).epochs(5).fit()?`.
//!
//! Exact resume: the loader's order depends only on `(seed, epoch)`, and a checkpoint holds the
//! weights, optimizer and scheduler state, the global RNG and the position in the epoch, so a
//! resumed run ends with the same weights, bit for bit, as one that was never interrupted.
//!
//! Each batch goes through one [`TrainStep`] ([`StandardStep`] unless
//! [`Learner::step`] sets another): the single place where a step is done. Batches come from
//! any [`BatchSource`]: a [`DataLoader`](mlfw_data::DataLoader), or a source of drawn batches such as the
//! language-model trainer's random text windows ([`crate::lm_train`]), whose "best" epoch is
//! the one of lowest validation loss ([`Monitor::ValLoss`]) and whose metric is perplexity
//! ([`Learner::perplexity`]).

mod callback;
mod fit;
mod source;
mod step;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use mlfw_core::random::with_global;
use mlfw_core::{DType, Device, Generator, Tensor};
use mlfw_distributed::DistributedDataParallel;
use mlfw_nn::{functional as F, Module};
use mlfw_optim::sched::Scheduler;
use mlfw_optim::{GradScaler, Optimizer};
use serde::Serialize;

pub use callback::{Callback, Control, EarlyStopping, FitStart, PerplexityCsv, StepEnd};
pub use source::{BatchSource, SourceBatch, Span};
pub use step::{ClippedStep, LossFn, StandardStep, Step, StepOutput, TrainStep};

use crate::checkpoint::{self, Checkpoint, Progress};
use crate::error::{CliError, Result};
use crate::metrics::{self, EpochMetrics};
use crate::optim::Schedule;
use crate::progress::Console;
use crate::run_dir::{self, CHECKPOINT};
use crate::run_lock::RunLock;

/// Exit status after Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

/// What a fit ends with (`mlfw train --json` prints it).
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Validation accuracy after the last epoch.
    pub accuracy: f64,
    /// Validation loss after the last epoch.
    pub loss: f64,
    /// Best validation accuracy of the run.
    pub best_accuracy: f64,
    /// Mean training loss of the last epoch.
    pub train_loss: f64,
    /// Epochs finished.
    pub epochs: usize,
    /// Optimizer steps taken in the whole run.
    pub steps: u64,
    /// Seconds of training and validation summed over the run's epochs.
    pub time_s: f64,
    /// Seconds from process start to the end of the first training step of this invocation.
    pub first_step_s: Option<f64>,
    /// The run folder (empty without one).
    pub run_dir: PathBuf,
    /// Model name.
    pub model: String,
    /// Dataset name.
    pub dataset: String,
}

/// The run folder a learner writes, locked for the learner's life.
pub(crate) struct RunFolder {
    pub(crate) dir: PathBuf,
    pub(crate) _lock: RunLock,
}

/// A batch transform: the loader's images → the model's input on its device.
pub type InputFn = Box<dyn Fn(&Tensor) -> Result<Tensor>>;

/// Which epoch's weights are the best (`best.safetensors`), as Keras's `monitor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Monitor {
    /// The highest validation accuracy (classifiers; the default).
    #[default]
    ValAccuracy,
    /// The lowest validation loss (language models). The checkpoint's best score is then
    /// the negated loss, so "higher is better" holds for both.
    ValLoss,
}

/// What the learner counts, for its messages: `noun` in the header ("images"), `rate` in
/// the progress and epoch lines ("img/s").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// What a sample is called, plural.
    pub noun: &'static str,
    /// Its throughput's unit.
    pub rate: &'static str,
}

/// A training run, set up and ready to [`fit`](Learner::fit).
pub struct Learner {
    pub(crate) model: Box<dyn Module>,
    pub(crate) opt: Box<dyn Optimizer>,
    pub(crate) sched: Option<Schedule>,
    pub(crate) train: Box<dyn BatchSource>,
    pub(crate) val: Box<dyn BatchSource>,
    pub(crate) device: Device,
    pub(crate) input: InputFn,
    pub(crate) loss: LossFn,
    pub(crate) step: Box<dyn TrainStep>,
    pub(crate) callbacks: Vec<Box<dyn Callback>>,
    pub(crate) epochs: usize,
    pub(crate) steps_per_epoch: usize,
    pub(crate) run: Option<RunFolder>,
    pub(crate) state: Progress,
    pub(crate) history: Vec<EpochMetrics>,
    pub(crate) console: Console,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) first_step_s: Option<f64>,
    pub(crate) amp: Option<DType>,
    pub(crate) scaler: Option<GradScaler>,
    pub(crate) ddp: Option<DistributedDataParallel>,
    /// The learning rate named in the divergence message.
    pub(crate) lr: f64,
    pub(crate) names: (String, String),
    pub(crate) monitor: Monitor,
    pub(crate) unit: Unit,
    /// Whether the epoch and final lines show the perplexity `exp(loss)`.
    pub(crate) perplexity: bool,
}

impl Learner {
    /// A learner for `model` (on the device of its first parameter) trained by `optimizer` on
    /// the batches of `train` (a [`DataLoader`](mlfw_data::DataLoader) or any other
    /// [`BatchSource`]), validated on one epoch of `val` after every epoch. Defaults: 1 epoch
    /// of every batch, cross-entropy loss, best = highest validation accuracy, no schedule, no
    /// run folder, progress lines on stdout.
    pub fn new(
        model: Box<dyn Module>,
        optimizer: Box<dyn Optimizer>,
        train: impl BatchSource + 'static,
        val: impl BatchSource + 'static,
    ) -> Self {
        let device = model
            .parameters()
            .first()
            .map_or(Device::Cpu, |p| p.device());
        let dev = device;
        Learner {
            lr: optimizer.lr(),
            model,
            opt: optimizer,
            sched: None,
            steps_per_epoch: train.len(),
            train: Box::new(train),
            val: Box::new(val),
            device,
            input: Box::new(move |x| Ok(x.to(&dev)?)),
            loss: Box::new(F::cross_entropy),
            step: Box::new(StandardStep),
            callbacks: vec![],
            epochs: 1,
            run: None,
            state: Progress::start(-1.0, 0),
            history: vec![],
            console: Console::new(false, false),
            stop: Arc::new(AtomicBool::new(false)),
            first_step_s: None,
            amp: None,
            scaler: None,
            ddp: None,
            names: ("model".into(), "dataset".into()),
            monitor: Monitor::ValAccuracy,
            unit: Unit {
                noun: "images",
                rate: "img/s",
            },
            perplexity: false,
        }
    }

    /// Which epoch's weights `best.safetensors` keeps (default [`Monitor::ValAccuracy`]).
    /// Set it before [`Learner::resume`], which restores the best score so far.
    pub fn monitor(mut self, monitor: Monitor) -> Self {
        if monitor != self.monitor && self.state.epoch == 0 && self.state.step == 0 {
            self.state.best_acc = match monitor {
                Monitor::ValAccuracy => -1.0,
                Monitor::ValLoss => -1e30,
            };
        }
        self.monitor = monitor;
        self
    }

    /// What the messages count: e.g. `unit("tokens", "tokens/s")` (default images, img/s).
    pub fn unit(mut self, noun: &'static str, rate: &'static str) -> Self {
        self.unit = Unit { noun, rate };
        self
    }

    /// Reports the perplexity `exp(loss)` of a cross-entropy (language) model: in the epoch
    /// and final lines, and, with a run folder, in `perplexity.csv` ([`PerplexityCsv`]).
    pub fn perplexity(mut self) -> Self {
        self.perplexity = true;
        self.callbacks.push(Box::new(PerplexityCsv::default()));
        self
    }

    /// Trains until `epochs` epochs are finished (counting those of a resumed run).
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Trains at most `steps` steps per epoch.
    pub fn max_steps(mut self, steps: usize) -> Self {
        self.steps_per_epoch = self.train.len().min(steps);
        self
    }

    /// Drives the optimizer's learning rate: after every batch with `per_batch`, else after
    /// every epoch.
    pub fn scheduler(mut self, scheduler: Scheduler, per_batch: bool) -> Self {
        self.sched = Some(Schedule {
            scheduler,
            per_batch,
        });
        self
    }

    /// The loss `(output, target) -> scalar` (default: cross-entropy).
    pub fn loss(
        mut self,
        loss: impl Fn(&Tensor, &Tensor) -> mlfw_core::Result<Tensor> + 'static,
    ) -> Self {
        self.loss = Box::new(loss);
        self
    }

    /// The batch transform from loader images to model input (default: a copy to the model's
    /// device); e.g. normalization with the dataset's mean and std.
    pub fn input(mut self, f: impl Fn(&Tensor) -> Result<Tensor> + 'static) -> Self {
        self.input = Box::new(f);
        self
    }

    /// Replaces the training step (default [`StandardStep`]): a compiled step, a step with
    /// gradient clipping, or any closure `FnMut(Step) -> Result<StepOutput>`.
    pub fn step(mut self, step: impl TrainStep + 'static) -> Self {
        self.step = Box::new(step);
        self
    }

    /// Adds a callback (run in the order added).
    pub fn callback(mut self, cb: impl Callback + 'static) -> Self {
        self.callbacks.push(Box::new(cb));
        self
    }

    /// Mixed precision: autocast to `dtype` (bf16 or f16); f16 adds a dynamic loss scaler.
    pub fn amp(mut self, dtype: DType) -> Self {
        self.amp = Some(dtype);
        if dtype == DType::F16 && self.scaler.is_none() {
            self.scaler = Some(GradScaler::new());
        }
        self
    }

    /// Output: `quiet` prints nothing but errors; `json` sends every line to stderr.
    pub fn console(mut self, quiet: bool, json: bool) -> Self {
        self.console = Console::new(quiet, json);
        self
    }

    /// The model and dataset names shown in the header and the [`Summary`].
    pub fn names(mut self, model: impl Into<String>, dataset: impl Into<String>) -> Self {
        self.names = (model.into(), dataset.into());
        self
    }

    /// Ctrl-C finishes the current step, writes a checkpoint and ends the fit with an error of
    /// exit status [`INTERRUPTED`]; a second Ctrl-C exits at once. (One handler per process.)
    pub fn handle_ctrl_c(mut self) -> Self {
        self.stop = ctrl_c_flag();
        self
    }

    /// Writes a fresh run folder at `dir` (created and locked now; an existing run there is
    /// refused): `metrics.csv`/`.jsonl`, `last`/`best.safetensors`, `checkpoint.safetensors`
    /// after every epoch, curves at the end.
    ///
    /// # Errors
    /// `dir` holds a run already, is locked by another process, or cannot be created.
    pub fn run_dir(mut self, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let lock = run_dir::create(&dir)?;
        self.run = Some(RunFolder { dir, _lock: lock });
        Ok(self)
    }

    /// Continues the run in folder `dir` from its checkpoint, exactly: the folder is locked,
    /// and the weights, optimizer and scheduler state, global RNG, epoch position and metrics
    /// history restored. The learner must be set up as the run was (same model, optimizer,
    /// schedule, loaders and seed); a folder without a checkpoint starts from step 0.
    ///
    /// # Errors
    /// The folder is locked or unreadable; the checkpoint is malformed or does not fit
    /// this model, optimizer or schedule.
    pub fn resume(mut self, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let lock = RunLock::acquire(&dir)?;
        let path = dir.join(CHECKPOINT);
        if path.exists() {
            let c = checkpoint::load(&path)?;
            let ctx = |e: CliError| e.context(path.display());
            self.model
                .load_state_dict(&c.model, true)
                .map_err(|e| ctx(CliError::msg(e)))?;
            self.state =
                restore(&c, self.opt.as_mut(), self.sched.as_mut(), &self.device).map_err(ctx)?;
            if let Some(s) = c.scaler {
                self.scaler = Some(GradScaler::with_state(s).map_err(|e| ctx(CliError::msg(e)))?);
            }
        }
        let mut rows = metrics::read(&dir)?;
        rows.truncate(self.state.epoch);
        metrics::rewrite(&dir, &rows)?;
        self.history = rows;
        self.run = Some(RunFolder { dir, _lock: lock });
        Ok(self)
    }

    /// The model.
    pub fn model(&self) -> &dyn Module {
        self.model.as_ref()
    }

    /// The metrics of every finished epoch.
    pub fn history(&self) -> &[EpochMetrics] {
        &self.history
    }

    /// Where training stands.
    pub fn progress(&self) -> &Progress {
        &self.state
    }
}

/// Restores optimizer, scheduler and global RNG from a checkpoint; returns its progress.
///
/// # Errors
/// Optimizer or scheduler state that does not fit; a scheduler on one side only.
pub fn restore(
    c: &Checkpoint,
    opt: &mut dyn Optimizer,
    sched: Option<&mut Schedule>,
    device: &Device,
) -> Result<Progress> {
    let mut state = c.optimizer.clone();
    for (_, t) in state.tensors.iter_mut() {
        *t = t.to(device)?;
    }
    opt.load_state_dict(&state)?;
    match (sched, &c.scheduler) {
        (Some(s), Some(j)) => s.scheduler.load_state_dict(j, opt)?,
        (None, None) => {}
        _ => return Err(CliError::msg("scheduler state does not match config.json")),
    }
    with_global(|g| *g = Generator::from_state(c.progress.rng));
    Ok(c.progress.clone())
}

/// A flag Ctrl-C sets; a second Ctrl-C exits at once.
fn ctrl_c_flag() -> Arc<AtomicBool> {
    use std::sync::atomic::Ordering;
    let flag = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&flag);
    let _ = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            eprintln!("\ninterrupted again: exiting without a checkpoint");
            std::process::exit(INTERRUPTED as i32);
        }
        eprintln!("\nCtrl-C: finishing the current step and saving a checkpoint...");
    });
    flag
}
