//! The training loop of `mlfw train`: epochs of steps, validation, metrics, checkpoints,
//! best weights, plots, Ctrl-C and divergence handling.
//!
//! Resuming restores the weights, optimizer and scheduler state, the global RNG and the
//! position in the epoch; the loader's order depends only on `(seed, epoch)`, so a resumed run
//! ends with the same weights, bit for bit, as one that was never interrupted.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mlfw_autograd::Backward;
use mlfw_core::random::with_global;
use mlfw_core::{Device, Generator};
use mlfw_data::{DataLoader, Split};
use mlfw_nn::{functional as F, Module};
use mlfw_optim::Optimizer;
use serde::Serialize;

use crate::checkpoint::{self, Progress};
use crate::data::{DataSpec, Normalize};
use crate::error::{CliError, Result};
use crate::evaluate::evaluate;
use crate::metrics::{self, EpochMetrics};
use crate::optim::{self, Schedule};
use crate::progress::Console;
use crate::run_dir::{self, RunConfig, BEST, CHECKPOINT, LAST};
use crate::{device, models, plot};

/// Exit status after Ctrl-C (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

/// The final summary (`--json` prints it).
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
    /// The run folder.
    pub run_dir: PathBuf,
    /// Model name.
    pub model: String,
    /// Dataset name.
    pub dataset: String,
}

/// A training run, set up and ready to go.
pub struct Trainer {
    cfg: RunConfig,
    dir: PathBuf,
    device: Device,
    model: Box<dyn Module>,
    opt: Box<dyn Optimizer>,
    sched: Option<Schedule>,
    train: DataLoader,
    val: DataLoader,
    norm: Normalize,
    steps_per_epoch: usize,
    state: Progress,
    history: Vec<EpochMetrics>,
    console: Console,
    stop: Arc<AtomicBool>,
    first_step_s: Option<f64>,
}

impl Trainer {
    /// Builds model, data, optimizer and schedule for `cfg`; with `resume`, restores them from
    /// the run folder's checkpoint. The folder is only written once everything has loaded.
    pub fn new(cfg: RunConfig, resume: bool, quiet: bool, json: bool) -> Result<Self> {
        let dir = cfg.out.clone();
        let device = device::open(&cfg.device)?;
        let ckpt = if resume {
            let path = dir.join(CHECKPOINT);
            let c = checkpoint::load(&path)?;
            Some(c)
        } else {
            None
        };
        let spec = DataSpec::new(&cfg.dataset, &cfg.model, cfg.data_dir.clone())?;
        mlfw_core::manual_seed(cfg.seed);
        let mut model = models::build(&cfg.model, cfg.input_shape, cfg.num_classes)?;
        if let Some(c) = &ckpt {
            model
                .load_state_dict(&c.model, true)
                .map_err(|e| CliError::msg(e).context(dir.join(CHECKPOINT).display()))?;
        }
        model.to_device(&device)?;
        model.train(true);
        let train = spec.loader(Split::Train, cfg.batch_size, cfg.workers, cfg.seed)?;
        let val = spec.loader(Split::Test, cfg.batch_size.max(500), cfg.workers, cfg.seed)?;
        let steps_per_epoch = train.len().min(cfg.max_steps.unwrap_or(usize::MAX));
        let mut opt = optim::build_optimizer(
            &cfg.optimizer,
            model.parameters(),
            cfg.lr,
            cfg.momentum,
            cfg.weight_decay,
        )?;
        let mut sched =
            optim::build_scheduler(&cfg.scheduler, opt.as_mut(), cfg.epochs, steps_per_epoch)?;
        let state = match &ckpt {
            Some(c) => restore(c, opt.as_mut(), sched.as_mut(), &device)
                .map_err(|e| e.context(dir.join(CHECKPOINT).display()))?,
            None => Progress {
                epoch: 0,
                step: 0,
                global_step: 0,
                loss_sum: 0.0,
                correct: 0.0,
                seen: 0,
                seconds: 0.0,
                best_acc: -1.0,
                rng: with_global(|g| g.state()),
                loader_seed: cfg.seed,
            },
        };
        // Everything loaded: only now touch the run folder.
        let history = if resume {
            let mut rows = metrics::read(&dir)?;
            rows.truncate(state.epoch);
            metrics::rewrite(&dir, &rows)?;
            rows
        } else {
            run_dir::create(&dir)?;
            vec![]
        };
        run_dir::write_config(&dir, &cfg)?;
        Ok(Trainer {
            norm: Normalize::new(&cfg.mean, &cfg.std, &device)?,
            cfg,
            dir,
            device,
            model,
            opt,
            sched,
            train,
            val,
            steps_per_epoch,
            state,
            history,
            console: Console::new(quiet, json),
            stop: ctrl_c_flag(),
            first_step_s: None,
        })
    }

    /// Trains the remaining epochs, then draws the curves; returns the summary.
    pub fn run(&mut self) -> Result<Summary> {
        let c = &self.cfg;
        self.console.line(format!(
            "{} on {} ({} parameters, {} train / {} val images) on {}, {} epochs -> {}",
            c.model,
            c.dataset,
            self.model.num_parameters(),
            self.train.dataset().len(),
            self.val.dataset().len(),
            self.device,
            c.epochs,
            self.dir.display()
        ));
        if self.state.epoch > 0 || self.state.step > 0 {
            self.console.line(format!(
                "resuming at epoch {} step {}",
                self.state.epoch + 1,
                self.state.step
            ));
        }
        if self.state.epoch >= self.cfg.epochs {
            self.console.line(format!(
                "the run already finished {} epochs; pass --epochs N to train longer",
                self.state.epoch
            ));
        }
        while self.state.epoch < self.cfg.epochs {
            self.epoch()?;
            // Ctrl-C during validation: the epoch's checkpoint is already written.
            if self.stop.load(Ordering::SeqCst) && self.state.epoch < self.cfg.epochs {
                return Err(self.interrupted(self.state.epoch));
            }
        }
        let runs = [(run_name(&self.dir), self.history.clone())];
        if !self.history.is_empty() {
            plot::write_curves(&self.dir, &runs)?;
        }
        let last = self
            .history
            .last()
            .ok_or_else(|| CliError::msg("no epoch finished"))?;
        self.console.line(format!(
            "done: val accuracy {:.4} (best {:.4}), weights in {}",
            last.val_acc,
            self.state.best_acc,
            self.dir.join(LAST).display()
        ));
        Ok(Summary {
            accuracy: last.val_acc,
            loss: last.val_loss,
            best_accuracy: self.state.best_acc,
            train_loss: last.train_loss,
            epochs: self.history.len(),
            steps: self.state.global_step,
            time_s: self.history.iter().map(|r| r.time_s).sum(),
            first_step_s: self.first_step_s,
            run_dir: self.dir.clone(),
            model: self.cfg.model.clone(),
            dataset: self.cfg.dataset.clone(),
        })
    }

    /// One epoch: the remaining training steps, validation, metrics, checkpoint.
    fn epoch(&mut self) -> Result<()> {
        let e = self.state.epoch;
        self.train_steps(e)?;
        let t = Instant::now();
        let val = evaluate(
            self.model.as_mut(),
            &self.val,
            &self.norm,
            &self.device,
            self.cfg.num_classes,
        )?;
        let s = &self.state;
        let row = EpochMetrics {
            epoch: e + 1,
            train_loss: s.loss_sum / s.step.max(1) as f64,
            train_acc: s.correct / s.seen.max(1) as f64,
            val_loss: val.loss,
            val_acc: val.accuracy,
            lr: self.opt.lr(),
            time_s: s.seconds + t.elapsed().as_secs_f64(),
            images_per_s: s.seen as f64 / s.seconds.max(1e-9),
        };
        if let Some(sc) = self.sched.as_mut().filter(|s| !s.per_batch) {
            sc.scheduler.step(self.opt.as_mut())?;
        }
        metrics::append(&self.dir, &row)?;
        self.history.push(row.clone());
        if row.val_acc > self.state.best_acc {
            self.state.best_acc = row.val_acc;
            self.model.save(&self.dir.join(BEST))?;
        }
        self.state = Progress {
            epoch: e + 1,
            step: 0,
            loss_sum: 0.0,
            correct: 0.0,
            seen: 0,
            seconds: 0.0,
            ..self.state.clone()
        };
        self.save()?;
        self.console.line(format!(
            "epoch {}/{}  train loss {:.4} acc {:.4}  val loss {:.4} acc {:.4}  lr {:.3e}  {:.1}s  {:.0} img/s",
            row.epoch,
            self.cfg.epochs,
            row.train_loss,
            row.train_acc,
            row.val_loss,
            row.val_acc,
            row.lr,
            row.time_s,
            row.images_per_s
        ));
        Ok(())
    }

    /// Runs the training steps of epoch `e` from `state.step` on.
    fn train_steps(&mut self, e: usize) -> Result<()> {
        let (start, total) = (self.state.step, self.steps_per_epoch);
        let label = format!("epoch {}/{}", e + 1, self.cfg.epochs);
        let mut bar = self.console.epoch(label, total, start);
        let (t, seconds0) = (Instant::now(), self.state.seconds);
        let batches = self.train.iter_epoch(e as u64).take(total).skip(start);
        for batch in batches {
            let batch = batch?;
            let n = batch.len();
            let x = self.norm.apply(&batch.images)?;
            let y = batch.labels.to(&self.device)?;
            self.opt.zero_grad();
            let logits = self.model.forward(&x)?;
            let loss = F::cross_entropy(&logits, &y)?;
            let lv = loss.item_f64()?;
            if !lv.is_finite() {
                bar.finish();
                return Err(CliError::msg(format!(
                    "loss is {lv} at epoch {} step {}: training diverged; try a lower --lr \
                     (now {}). The last good checkpoint is in {}",
                    e + 1,
                    self.state.step + 1,
                    self.cfg.lr,
                    self.dir.display()
                )));
            }
            loss.backward()?;
            self.opt.step()?;
            if let Some(sc) = self.sched.as_mut().filter(|s| s.per_batch) {
                sc.scheduler.step(self.opt.as_mut())?;
            }
            let correct = {
                let _g = mlfw_autograd::no_grad();
                logits.argmax(1, false)?.count_eq(&y)?
            };
            let s = &mut self.state;
            s.step += 1;
            s.global_step += 1;
            s.loss_sum += lv;
            s.correct += correct;
            s.seen += n;
            s.seconds = seconds0 + t.elapsed().as_secs_f64();
            if self.first_step_s.is_none() {
                self.first_step_s = Some(crate::START.elapsed().as_secs_f64());
            }
            bar.step(s.step, lv, n);
            if self.stop.load(Ordering::SeqCst) {
                bar.finish();
                return Err(self.interrupted(e));
            }
        }
        bar.finish();
        Ok(())
    }

    /// Saves a checkpoint after Ctrl-C and builds the error that ends the command.
    fn interrupted(&mut self, e: usize) -> CliError {
        let what = format!(
            "interrupted at epoch {} step {}/{}",
            e + 1,
            self.state.step,
            self.steps_per_epoch
        );
        match self.save() {
            Ok(()) => CliError::msg(format!(
                "{what}; checkpoint saved, continue with: mlfw train --resume {}",
                self.dir.display()
            )),
            Err(err) => CliError::msg(format!(
                "{what}; saving the checkpoint failed: {}",
                err.message()
            )),
        }
        .with_code(INTERRUPTED)
    }

    /// Writes `last.safetensors` and the checkpoint (weights, optimizer, schedule, progress).
    fn save(&mut self) -> Result<()> {
        self.state.rng = with_global(|g| g.state());
        self.model.save(&self.dir.join(LAST))?;
        let sched = self.sched.as_ref().map(|s| s.scheduler.state_dict());
        checkpoint::save(
            &self.dir.join(CHECKPOINT),
            self.model.as_ref(),
            &self.opt.state_dict()?,
            sched,
            &self.state,
        )
    }
}

/// Restores optimizer, scheduler and global RNG from a checkpoint; returns its progress.
pub(crate) fn restore(
    c: &checkpoint::Checkpoint,
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

/// The run folder's last path component.
fn run_name(dir: &std::path::Path) -> String {
    dir.file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into())
}

/// A flag Ctrl-C sets; a second Ctrl-C exits at once.
fn ctrl_c_flag() -> Arc<AtomicBool> {
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
