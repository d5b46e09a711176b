//! The loop of [`Learner::fit`]: epochs of steps, validation, metrics, callbacks, run-folder
//! files and checkpoints, Ctrl-C and divergence handling.

use std::sync::atomic::Ordering;
use std::time::Instant;

use mlfw_core::random::with_global;

use super::{Control, FitStart, Learner, Monitor, Span, Step, StepEnd, Summary, INTERRUPTED};
use crate::checkpoint;
use crate::error::{CliError, Result};
use crate::metrics::{self, EpochMetrics};
use crate::run_dir::{BEST, CHECKPOINT, LAST};

impl Learner {
    /// Trains the remaining epochs (validating after each), then draws the curves into the
    /// run folder; returns the summary.
    ///
    /// # Errors
    /// A step's loss is not finite (NaN stop: the weights of the failing step are
    /// not updated, the last checkpoint stays); Ctrl-C under [`Learner::handle_ctrl_c`]
    /// (a checkpoint is written, exit status [`INTERRUPTED`]); no epoch finished; and any
    /// error of the model, loader, loss, optimizer, a callback or the run folder's files.
    pub fn fit(&mut self) -> Result<Summary> {
        let dir = self.run.as_ref().map(|r| r.dir.clone());
        let (model, dataset) = &self.names;
        self.console.line(format!(
            "{model} on {dataset} ({} parameters, {} train / {} val {}) on {}, {} epochs of {} steps -> {}",
            self.model.num_parameters(),
            self.train.samples(),
            self.val.samples(),
            self.unit.noun,
            self.device,
            self.epochs,
            self.steps_per_epoch,
            dir.as_ref()
                .map_or("(no run folder)".into(), |d| d.display().to_string())
        ));
        if self.state.epoch > 0 || self.state.step > 0 {
            self.console.line(format!(
                "resuming at epoch {} step {}",
                self.state.epoch + 1,
                self.state.step
            ));
        }
        if self.state.epoch >= self.epochs {
            self.console.line(format!(
                "the run already finished {} epochs; pass --epochs N to train longer",
                self.state.epoch
            ));
        }
        let start = FitStart {
            run_dir: dir.as_deref(),
            epoch: self.state.epoch,
            epochs: self.epochs,
        };
        for cb in &mut self.callbacks {
            cb.on_fit_start(&start)?;
        }
        while self.state.epoch < self.epochs {
            let control = self.epoch()?;
            // Ctrl-C during validation: the epoch's checkpoint is already written.
            if self.stop.load(Ordering::SeqCst) && self.state.epoch < self.epochs {
                return Err(self.interrupted(self.state.epoch));
            }
            if control == Control::Stop {
                self.console.line(format!(
                    "stopped early after epoch {} (a callback asked to stop)",
                    self.state.epoch
                ));
                break;
            }
        }
        if let (Some(dir), false) = (&dir, self.history.is_empty()) {
            crate::plot::write_curves(dir, &[(run_name(dir), self.history.clone())])?;
        }
        let last = self
            .history
            .last()
            .ok_or_else(|| CliError::msg("no epoch finished"))?;
        let weights = |f: &str| {
            dir.as_ref().map_or(String::new(), |d| {
                format!(", weights in {}", d.join(f).display())
            })
        };
        let (line, best_accuracy) = match self.monitor {
            Monitor::ValAccuracy => (
                format!(
                    "done: val accuracy {:.4} (best {:.4}){}",
                    last.val_acc,
                    self.state.best_acc,
                    weights(LAST)
                ),
                self.state.best_acc,
            ),
            Monitor::ValLoss => (
                format!(
                    "done: val loss {:.4}{}, best {:.4}{}",
                    last.val_loss,
                    self.perplexity_of(last.val_loss),
                    -self.state.best_acc,
                    weights(BEST)
                ),
                self.history.iter().map(|r| r.val_acc).fold(0.0, f64::max),
            ),
        };
        self.console.line(line);
        Ok(Summary {
            accuracy: last.val_acc,
            loss: last.val_loss,
            best_accuracy,
            train_loss: last.train_loss,
            epochs: self.history.len(),
            steps: self.state.global_step,
            time_s: self.history.iter().map(|r| r.time_s).sum(),
            first_step_s: self.first_step_s,
            run_dir: dir.unwrap_or_default(),
            model: self.names.0.clone(),
            dataset: self.names.1.clone(),
        })
    }

    /// One epoch: the remaining training steps, validation, metrics, callbacks, checkpoint.
    fn epoch(&mut self) -> Result<Control> {
        let e = self.state.epoch;
        self.train_steps(e)?;
        let t = Instant::now();
        let (val_loss, val_acc) = self.validate()?;
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
            val_loss,
            val_acc,
            lr: self.opt.lr(),
            time_s: s.seconds + t.elapsed().as_secs_f64(),
            images_per_s: seen as f64 / s.seconds.max(1e-9),
        };
        if let Some(sc) = self.sched.as_mut().filter(|s| !s.per_batch) {
            sc.scheduler.step(self.opt.as_mut())?;
        }
        if let Some(r) = &self.run {
            metrics::append(&r.dir, &row)?;
        }
        let mut control = Control::Continue;
        for cb in &mut self.callbacks {
            if cb.on_epoch_end(&row, self.model.as_ref())? == Control::Stop {
                control = Control::Stop;
            }
        }
        self.history.push(row.clone());
        let score = match self.monitor {
            Monitor::ValAccuracy => row.val_acc,
            Monitor::ValLoss => -row.val_loss,
        };
        if score > self.state.best_acc {
            self.state.best_acc = score;
            if let Some(r) = &self.run {
                self.model.save(&r.dir.join(BEST))?;
            }
        }
        self.state = self.state.next_epoch();
        self.save()?;
        self.console.line(format!(
            "epoch {}/{}  train loss {:.4} acc {:.4}  val loss {:.4}{} acc {:.4}  lr {:.3e}  {:.1}s  {:.0} {}",
            row.epoch,
            self.epochs,
            row.train_loss,
            row.train_acc,
            row.val_loss,
            self.perplexity_of(row.val_loss),
            row.val_acc,
            row.lr,
            row.time_s,
            row.images_per_s,
            self.unit.rate
        ));
        Ok(control)
    }

    /// ` (perplexity P)` when the learner reports perplexity, else nothing.
    fn perplexity_of(&self, loss: f64) -> String {
        match self.perplexity {
            true => format!(" (perplexity {:.2})", loss.exp()),
            false => String::new(),
        }
    }

    /// Mean loss (each batch weighted by [`BatchSource::weight`](super::BatchSource::weight))
    /// and accuracy (argmax of the output's last dimension against every target) over epoch 0
    /// of the validation source, in evaluation mode and without gradients; the model goes back
    /// to training mode after.
    fn validate(&mut self) -> Result<(f64, f64)> {
        self.model.train(false);
        let _guard = mlfw_autograd::no_grad();
        let (mut loss_sum, mut weights, mut correct, mut targets) = (0.0f64, 0.0f64, 0.0f64, 0);
        let span = Span {
            epoch: 0,
            start: 0,
            end: self.val.len(),
            global_step: 0,
        };
        for batch in self.val.batches(span) {
            let (x, y) = batch?;
            let out = self.model.forward(&(self.input)(&x)?)?;
            let y = y.to(&self.device)?;
            let w = self.val.weight(&y);
            loss_sum += (self.loss)(&out, &y)?.item_f64()? * w;
            weights += w;
            correct += out.argmax(-1, false)?.count_eq(&y)?;
            for cb in &mut self.callbacks {
                cb.on_val_batch(&out, &y)?;
            }
            targets += y.elem_count();
        }
        self.model.train(true);
        Ok((
            loss_sum / if weights > 0.0 { weights } else { 1.0 },
            correct / targets.max(1) as f64,
        ))
    }

    /// Runs the training steps of epoch `e` from `state.step` on.
    fn train_steps(&mut self, e: usize) -> Result<()> {
        let (start, total) = (self.state.step, self.steps_per_epoch);
        let label = format!("epoch {}/{}", e + 1, self.epochs);
        let mut bar = self
            .console
            .epoch(label, total, start)
            .with_unit(self.unit.rate);
        let (t, seconds0) = (Instant::now(), self.state.seconds);
        let span = Span {
            epoch: e as u64,
            start,
            end: total,
            global_step: self.state.global_step,
        };
        for batch in self.train.batches(span) {
            let (images, y) = batch?;
            // Samples for throughput and accuracy: every target (labels, or next tokens).
            let n = y.elem_count();
            let x = (self.input)(&images)?;
            let y = y.to(&self.device)?;
            let out = self.step.step(Step {
                model: self.model.as_mut(),
                optimizer: self.opt.as_mut(),
                loss: &self.loss,
                input: &x,
                target: &y,
                amp: self.amp,
                scaler: self.scaler.as_mut(),
                ddp: self.ddp.as_ref(),
            })?;
            let lv = out.loss;
            if !lv.is_finite() {
                bar.finish();
                let place = self
                    .run
                    .as_ref()
                    .map_or("no run folder".into(), |r| r.dir.display().to_string());
                return Err(CliError::msg(format!(
                    "loss is {lv} at epoch {} step {}: training diverged; try a lower --lr \
                     (now {}). The last good checkpoint is in {place}",
                    e + 1,
                    self.state.step + 1,
                    self.lr,
                )));
            }
            if let Some(sc) = self.sched.as_mut().filter(|s| s.per_batch) {
                sc.scheduler.step(self.opt.as_mut())?;
            }
            let correct = {
                let _g = mlfw_autograd::no_grad();
                out.output.argmax(-1, false)?.count_eq(&y)?
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
            let end = StepEnd {
                global_step: s.global_step,
                loss: lv,
                accuracy: correct / n.max(1) as f64,
                lr: self.opt.lr(),
                images: &images,
            };
            for cb in &mut self.callbacks {
                cb.on_step_end(&end)?;
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

    /// Saves a checkpoint after Ctrl-C and builds the error that ends the fit.
    fn interrupted(&mut self, e: usize) -> CliError {
        let what = format!(
            "interrupted at epoch {} step {}/{}",
            e + 1,
            self.state.step,
            self.steps_per_epoch
        );
        match (self.save(), &self.run) {
            (Ok(()), Some(r)) => CliError::msg(format!(
                "{what}; checkpoint saved, continue with: mlfw train --resume {}",
                r.dir.display()
            )),
            (Ok(()), None) => CliError::msg(format!("{what}; no run folder, nothing saved")),
            (Err(err), _) => CliError::msg(format!(
                "{what}; saving the checkpoint failed: {}",
                err.message()
            )),
        }
        .with_code(INTERRUPTED)
    }

    /// Writes `last.safetensors` and the checkpoint (weights, optimizer, schedule, progress);
    /// nothing without a run folder.
    fn save(&mut self) -> Result<()> {
        let Some(r) = &self.run else { return Ok(()) };
        self.state.rng = with_global(|g| g.state());
        self.model.save(&r.dir.join(LAST))?;
        let sched = self.sched.as_ref().map(|s| s.scheduler.state_dict());
        checkpoint::save(
            &r.dir.join(CHECKPOINT),
            self.model.as_ref(),
            &self.opt.state_dict()?,
            sched,
            &self.state,
            self.scaler.as_ref().map(|s| s.state_dict()),
        )
    }
}

/// The run folder's last path component.
fn run_name(dir: &std::path::Path) -> String {
    dir.file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into())
}
