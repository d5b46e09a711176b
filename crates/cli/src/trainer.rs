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
use mlfw_optim::{GradScaler, Optimizer};
use serde::Serialize;

use crate::checkpoint::{self, Progress};
use crate::checkpoint_check;
use crate::data::{DataSpec, Normalize};
use crate::error::{CliError, Result};
use crate::evaluate::evaluate;
use crate::metrics::{self, EpochMetrics};
use crate::optim::{self, Schedule};
use crate::progress::Console;
use crate::run_dir::{self, RunConfig, BEST, CHECKPOINT, LAST};
use crate::run_lock::RunLock;
use crate::tensorboard_log::RunLog;
use crate::{device, memory, models, plot};
use mlfw_vision::transfer;

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
    /// The autocast dtype (`--amp`), if any.
    amp: Option<mlfw_core::DType>,
    /// The dynamic loss scaler of `--amp f16` runs.
    scaler: Option<GradScaler>,
    /// Gradient averaging over the ranks of a `--distributed` run.
    ddp: Option<mlfw_distributed::DistributedDataParallel>,
    /// The run folder's lock, held for the trainer's life.
    _lock: RunLock,
    /// Whether to write a TensorBoard event file (`--no-tensorboard` turns it off).
    tensorboard: bool,
    /// The event file, open while [`Trainer::run`] trains.
    tb: Option<RunLog>,
    /// `--compile`: `Some(true)` until the first batch compiles the step.
    compile: Option<bool>,
    /// The compiled training step, when `--compile` could capture it.
    compiled: Option<mlfw_optim::CompiledStep>,
}

impl Trainer {
    /// Builds model, data, optimizer and schedule for `cfg`. With `resume` (the run folder's
    /// lock, held since before its config was read) restores them from the folder's checkpoint;
    /// a run that stopped before its first checkpoint starts over from step 0. A fresh run
    /// creates and locks its folder. The folder is only written once everything has loaded,
    /// and stays locked until the trainer is dropped.
    pub fn new(
        mut cfg: RunConfig,
        resume: Option<RunLock>,
        quiet: bool,
        json: bool,
    ) -> Result<Self> {
        let dir = cfg.out.clone();
        let device = device::open(&cfg.device)?;
        let pg = match cfg.distributed {
            true => Some(mlfw_distributed::init_for(&device)?),
            false => None,
        };
        if let Some(pg) = &pg {
            let world = pg.world_size();
            if resume.is_some() && cfg.world_size != world {
                return Err(CliError::msg(format!(
                    "{} was trained on {} ranks; resume it with `mpirun -np {} ... --resume`, \
                     not on {world}",
                    cfg.out.display(),
                    cfg.world_size,
                    cfg.world_size
                )));
            }
            cfg.world_size = world;
        }
        let ckpt_path = dir.join(CHECKPOINT);
        let never_checkpointed = resume.is_some()
            && matches!(std::fs::symlink_metadata(&ckpt_path),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound);
        let ckpt = match resume {
            Some(_) if !never_checkpointed => Some(checkpoint::load(&ckpt_path)?),
            _ => None,
        };
        let spec = DataSpec::for_run(&cfg)?;
        mlfw_core::manual_seed(cfg.seed);
        let mut model = models::build(&cfg.model, cfg.input_shape, cfg.num_classes)?;
        let pretrained = match (&ckpt, cfg.pretrained) {
            (None, true) => Some(models::load_pretrained(
                model.as_ref(),
                &cfg.model,
                cfg.hub_model.as_deref(),
                cfg.num_classes,
                true,
            )?),
            _ => None,
        };
        if let Some(c) = &ckpt {
            model
                .load_state_dict(&c.model, true)
                .map_err(|e| CliError::msg(e).context(dir.join(CHECKPOINT).display()))?;
        }
        model.to_device(&device)?;
        model.train(true);
        let head = transfer::head_prefix(model.as_ref())?;
        if cfg.freeze == "backbone" {
            transfer::freeze_backbone(model.as_ref(), &head)?;
        }
        let mut train = spec.loader(Split::Train, cfg.batch_size, cfg.workers, cfg.seed)?;
        if let Some(pg) = &pg {
            train = train.shard(pg.rank(), pg.world_size())?;
        }
        let val = spec.loader(Split::Test, cfg.batch_size.max(500), cfg.workers, cfg.seed)?;
        let batch = |l: &DataLoader, b: usize| b.min(l.dataset().len());
        memory::check_model_batch(
            model.as_mut(),
            cfg.input_shape,
            batch(&train, cfg.batch_size),
            true,
            &device,
        )?;
        memory::check_model_batch(
            model.as_mut(),
            cfg.input_shape,
            batch(&val, cfg.batch_size.max(500)),
            false,
            &device,
        )?;
        let steps_per_epoch = train.len().min(cfg.max_steps.unwrap_or(usize::MAX));
        let (groups, names) = param_groups(model.as_ref(), &head, &cfg);
        let mut opt =
            optim::build_optimizer_groups(&cfg.optimizer, groups, cfg.momentum, cfg.weight_decay)?;
        let mut sched =
            optim::build_scheduler(&cfg.scheduler, opt.as_mut(), cfg.epochs, steps_per_epoch)?;
        let state = match &ckpt {
            Some(c) => checkpoint_check::check(c, &cfg, &names, steps_per_epoch)
                .and_then(|()| restore(c, opt.as_mut(), sched.as_mut(), &device))
                .map_err(|e| e.context(ckpt_path.display()))?,
            None => Progress::start(-1.0, cfg.seed),
        };
        let amp = run_dir::amp_dtype(&cfg.amp)?;
        let scaler = match (amp, ckpt.as_ref().and_then(|c| c.scaler)) {
            (Some(mlfw_core::DType::F16), Some(s)) => Some(
                GradScaler::with_state(s)
                    .map_err(|e| CliError::msg(e).context(ckpt_path.display()))?,
            ),
            (Some(mlfw_core::DType::F16), None) if ckpt.is_some() => {
                return Err(CliError::msg(format!(
                    "{}: an --amp f16 run's checkpoint has no loss-scaler state",
                    ckpt_path.display()
                )))
            }
            (Some(mlfw_core::DType::F16), None) => Some(GradScaler::new()),
            (_, Some(_)) => {
                return Err(CliError::msg(format!(
                    "{}: loss-scaler state in a run without --amp f16",
                    ckpt_path.display()
                )))
            }
            _ => None,
        };
        // After any restore: rank 0's weights are broadcast to every rank.
        let ddp = match &pg {
            Some(pg) => Some(mlfw_distributed::DistributedDataParallel::new(
                model.parameters(),
                pg.clone(),
                25.0,
            )?),
            None => None,
        };
        // Everything loaded: only now touch the run folder.
        let (lock, history) = match resume {
            Some(lock) => {
                if never_checkpointed {
                    // Weights of the interrupted attempt belong to no checkpoint: drop them.
                    for f in [LAST, BEST] {
                        remove_if_exists(&dir.join(f))?;
                    }
                }
                let mut rows = metrics::read(&dir)?;
                rows.truncate(state.epoch);
                metrics::rewrite(&dir, &rows)?;
                (lock, rows)
            }
            None => (run_dir::create(&dir)?, vec![]),
        };
        run_dir::write_config(&dir, &cfg)?;
        let console = Console::new(quiet, json);
        if let Some(p) = pretrained {
            console.line(format!("starting from {p}"));
        }
        if cfg.freeze == "backbone" {
            console.line(format!("backbone frozen: training only `{head}`"));
        }
        if never_checkpointed {
            console.line(format!(
                "{} has no checkpoint yet (the run stopped before its first one): \
                 starting over from step 0",
                ckpt_path.display()
            ));
        }
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
            console,
            _lock: lock,
            stop: ctrl_c_flag(),
            first_step_s: None,
            amp,
            scaler,
            ddp,
            tensorboard: true,
            tb: None,
            compile: None,
            compiled: None,
        })
    }

    /// Turns the run folder's TensorBoard event file on or off (on by default).
    pub fn set_tensorboard(&mut self, on: bool) {
        self.tensorboard = on;
    }

    /// Replays the training step compiled (`--compile`; eager when it cannot be captured).
    pub fn set_compile(&mut self, on: bool) {
        self.compile = Some(on);
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
        if self.tensorboard && self.tb.is_none() && self.state.epoch < self.cfg.epochs {
            self.tb = Some(RunLog::open(&self.dir)?);
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
        // Training metrics over all ranks (each saw its own shard).
        let (loss_sum, correct, seen, steps) = match &self.ddp {
            Some(d) => {
                let pg = d.process_group();
                let v = pg.all_reduce_sum_f64(vec![s.loss_sum, s.correct, s.seen as f64])?;
                (v[0], v[1], v[2] as usize, s.step * pg.world_size())
            }
            None => (s.loss_sum, s.correct, s.seen, s.step),
        };
        let row = EpochMetrics {
            epoch: e + 1,
            train_loss: loss_sum / steps.max(1) as f64,
            train_acc: correct / seen.max(1) as f64,
            val_loss: val.loss,
            val_acc: val.accuracy,
            lr: self.opt.lr(),
            time_s: s.seconds + t.elapsed().as_secs_f64(),
            images_per_s: seen as f64 / s.seconds.max(1e-9),
        };
        if let Some(sc) = self.sched.as_mut().filter(|s| !s.per_batch) {
            sc.scheduler.step(self.opt.as_mut())?;
        }
        metrics::append(&self.dir, &row)?;
        if let Some(tb) = self.tb.as_mut() {
            tb.epoch(&row, self.model.as_ref())?;
        }
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
            if self.compile.take() == Some(true) {
                self.compiled = crate::compile_step::try_new(&*self.model, &x, &y, &self.cfg);
            }
            let compiled = match self.compiled.as_mut() {
                Some(c) => Some(c.step(&x, &y, self.opt.as_mut())?),
                None => None,
            };
            let (logits, loss) = match compiled {
                Some(o) => (o.logits, Err(o.loss)),
                None => {
                    // Forward and loss under autocast; backward outside it, as in PyTorch.
                    let _amp = self.amp.map(mlfw_core::autocast::autocast).transpose()?;
                    let logits = self.model.forward(&x)?;
                    (logits.clone(), Ok(F::cross_entropy(&logits, &y)?))
                }
            };
            // A compiled step has already stepped the optimizer (not on a non-finite loss).
            let lv = match &loss {
                Ok(l) => l.item_f64()?,
                Err(lv) => *lv,
            };
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
            if let Ok(loss) = loss {
                match self.scaler.as_ref() {
                    Some(s) => s.scale(&loss)?.backward()?,
                    None => loss.backward()?,
                }
                if let Some(ddp) = &self.ddp {
                    ddp.finish()?;
                }
                match self.scaler.as_mut() {
                    Some(s) => {
                        s.step(self.opt.as_mut(), &self.model.parameters())?;
                        s.update();
                    }
                    None => self.opt.step()?,
                }
            }
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
            if let Some(tb) = self.tb.as_mut() {
                let acc = correct / n.max(1) as f64;
                tb.step(s.global_step, lv, acc, self.opt.lr(), &batch.images)?;
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
            self.scaler.as_ref().map(|s| s.state_dict()),
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

/// The optimizer's parameter groups `(params, lr)` and the parameters' names in optimizer
/// order: the head alone with `--freeze backbone`; head (`lr`) then backbone (`lr_backbone`)
/// with `--lr-backbone`; otherwise every parameter in one group.
fn param_groups(
    model: &dyn Module,
    head: &str,
    cfg: &RunConfig,
) -> (Vec<(Vec<mlfw_core::Tensor>, f64)>, Vec<String>) {
    let (h, b) = transfer::split_parameters(model, head);
    let sets = match (cfg.freeze.as_str(), cfg.lr_backbone) {
        ("backbone", _) => vec![(h, cfg.lr)],
        (_, Some(lb)) => vec![(h, cfg.lr), (b, lb)],
        _ => vec![(model.named_parameters(), cfg.lr)],
    };
    let names = sets
        .iter()
        .flat_map(|(ps, _)| ps.iter().map(|(n, _)| n.clone()))
        .collect();
    let groups = sets
        .into_iter()
        .map(|(ps, lr)| (ps.into_iter().map(|(_, t)| t).collect(), lr))
        .collect();
    (groups, names)
}

/// Removes `path`; a missing file is fine.
fn remove_if_exists(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CliError::msg(format!(
            "cannot remove {}: {e}",
            path.display()
        ))),
        _ => Ok(()),
    }
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
