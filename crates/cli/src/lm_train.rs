//! The language-model trainer behind `mlfw train` (its flags are read in `cmd/train.rs`) for the language models (`char-lstm`, `gpt-mini`) on text corpora
//! (`tinyshakespeare`, `text:FILE`).
//!
//! The run folder has the image trainer's layout — `config.json`, `metrics.csv`/`.jsonl`,
//! `last.safetensors`, `best.safetensors` (lowest validation loss), `checkpoint.safetensors`,
//! `loss.png` — plus `vocab.json` (the characters, so `mlfw generate` needs no dataset) and
//! `perplexity.csv`. An epoch is `--max-steps` steps (default 100) of `--batch-size` random
//! windows of 128 characters; validation is the mean loss over 20 fixed windows batches (as
//! PyTorch's recipe). Gradients are clipped to norm 1.0. The window of step `s` depends only on
//! `(seed, s)`, so `--resume` continues exactly.

use std::path::{Path, PathBuf};
use std::time::Instant;

use mlfw_autograd::Backward;
use mlfw_core::random::with_global;
use mlfw_core::{Device, Tensor};
use mlfw_data::{CharVocab, Rng, TextDataset};
use mlfw_nn::functional as F;
use mlfw_nn::lm::{build_lm, LanguageModel};
use mlfw_optim::Optimizer;

use crate::checkpoint::{self, Progress};
use crate::error::{CliError, Result};
use crate::learner::Summary;
use crate::metrics::{self, EpochMetrics};
use crate::progress::Console;
use crate::run_dir::{self, RunConfig, BEST, CHECKPOINT, LAST};
use crate::run_lock::RunLock;
use crate::{device, optim, plot};

/// Characters per training window.
pub const SEQ_LEN: usize = 128;
/// Steps per epoch when `--max-steps` is not given.
pub const EPOCH_STEPS: usize = 100;
/// Validation batches (fixed windows, seed 1234).
pub const VAL_BATCHES: usize = 20;
/// Gradient-norm clip.
pub const CLIP: f64 = 1.0;
/// The vocabulary file of a text run folder.
pub const VOCAB: &str = "vocab.json";

/// Errors when the run folder's vocabulary differs from the corpus's.
pub fn check_vocab(dir: &Path, vocab: &CharVocab) -> Result<()> {
    let saved = read_vocab(dir)?;
    if saved != *vocab {
        return Err(CliError::msg(format!(
            "{}: the run's vocabulary ({} characters) differs from the dataset's ({})",
            dir.join(VOCAB).display(),
            saved.len(),
            vocab.len()
        )));
    }
    Ok(())
}

/// Reads `vocab.json` (a JSON string of the characters in id order) of a run folder.
pub fn read_vocab(dir: &Path) -> Result<CharVocab> {
    let path = dir.join(VOCAB);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CliError::msg(format!(
            "{}: {e} (is {} a language-model run folder?)",
            path.display(),
            dir.display()
        ))
    })?;
    let s: String = serde_json::from_str(&text)
        .map_err(|e| CliError::msg(format!("{}: {e}", path.display())))?;
    CharVocab::from_chars(s.chars().collect())
        .map_err(|e| CliError::msg(format!("{}: {e}", path.display())))
}

/// The seed of the windows of global step `step`.
fn step_seed(seed: u64, step: u64) -> u64 {
    mlfw_core::random::splitmix64(seed ^ step.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Cross-entropy of next-token logits `[B, T, V]` against targets `[B, T]`.
pub fn lm_loss(logits: &Tensor, y: &Tensor) -> mlfw_core::Result<Tensor> {
    let v = logits.dims()[2];
    F::cross_entropy(
        &logits.reshape([y.elem_count(), v])?,
        &y.reshape([y.elem_count()])?,
    )
}

/// Mean validation loss and next-character accuracy over [`VAL_BATCHES`] fixed batches.
pub fn validate(
    model: &mut dyn LanguageModel,
    data: &TextDataset,
    batch: usize,
    device: &Device,
) -> Result<(f64, f64)> {
    model.train(false);
    let _g = mlfw_autograd::no_grad();
    let mut rng = Rng::new(1234);
    let (mut loss, mut correct, mut n) = (0.0, 0.0, 0usize);
    for _ in 0..VAL_BATCHES {
        let (x, y) = data.batch(false, batch, SEQ_LEN, &mut rng, device)?;
        let logits = model.forward(&x)?;
        loss += lm_loss(&logits, &y)?.item_f64()?;
        correct += logits.argmax(2, false)?.count_eq(&y)?;
        n += y.elem_count();
    }
    model.train(true);
    Ok((loss / VAL_BATCHES as f64, correct / n as f64))
}

pub struct LmTrainer {
    cfg: RunConfig,
    dir: PathBuf,
    device: Device,
    data: TextDataset,
    model: Box<dyn LanguageModel>,
    opt: Box<dyn Optimizer>,
    state: Progress,
    history: Vec<EpochMetrics>,
    console: Console,
    first_step_s: Option<f64>,
    /// The run folder's lock, held for the trainer's life.
    _lock: RunLock,
}

impl LmTrainer {
    /// Sets up the run of `cfg` on corpus `data` (resuming when `resume` holds the folder's
    /// lock); the folder is written only once everything has loaded.
    ///
    /// Errors: device, model, optimizer or checkpoint that cannot be set up.
    pub fn new(
        cfg: RunConfig,
        data: TextDataset,
        lock: Option<RunLock>,
        quiet: bool,
        json: bool,
    ) -> Result<Self> {
        let resume = lock.is_some();
        let dir = cfg.out.clone();
        let device = device::open(&cfg.device)?;
        let ckpt = if resume {
            Some(checkpoint::load(&dir.join(CHECKPOINT))?)
        } else {
            None
        };
        mlfw_core::manual_seed(cfg.seed);
        let mut model = build_lm(&cfg.model, data.vocab.len(), &Device::Cpu)?;
        if let Some(c) = &ckpt {
            model
                .load_state_dict(&c.model, true)
                .map_err(|e| CliError::msg(e).context(dir.join(CHECKPOINT).display()))?;
        }
        model.to_device(&device)?;
        model.train(true);
        let mut opt = optim::build_optimizer_groups(
            &cfg.optimizer,
            vec![(model.parameters(), cfg.lr)],
            cfg.momentum,
            cfg.weight_decay,
        )?;
        let state = match &ckpt {
            Some(c) => crate::learner::restore(c, opt.as_mut(), None, &device)
                .map_err(|e| e.context(dir.join(CHECKPOINT).display()))?,
            None => Progress::start(-1e30, cfg.seed),
        };
        let (lock, history) = if let Some(lock) = lock {
            let mut rows = metrics::read(&dir)?;
            rows.truncate(state.epoch);
            metrics::rewrite(&dir, &rows)?;
            (lock, rows)
        } else {
            let lock = run_dir::create(&dir)?;
            let chars: String = data.vocab.chars().iter().collect();
            let text = serde_json::to_string(&chars)? + "\n";
            mlfw_core::safetensors::write_atomic(dir.join(VOCAB), text.as_bytes())?;
            (lock, vec![])
        };
        run_dir::write_config(&dir, &cfg)?;
        Ok(LmTrainer {
            cfg,
            dir,
            device,
            data,
            model,
            opt,
            state,
            history,
            console: Console::new(quiet, json),
            first_step_s: None,
            _lock: lock,
        })
    }

    fn steps_per_epoch(&self) -> usize {
        self.cfg.max_steps.unwrap_or(EPOCH_STEPS)
    }

    /// Trains the remaining epochs; returns the summary.
    ///
    /// Errors: divergence, Ctrl-C (exit status 130 after a checkpoint), file errors.
    pub fn run(&mut self) -> Result<Summary> {
        let c = &self.cfg;
        self.console.line(format!(
            "{} on {} ({} parameters, {} characters, {} train / {} val) on {}, {} epochs of {} steps x {} windows of {SEQ_LEN} -> {}",
            c.model,
            c.dataset,
            self.model.num_parameters(),
            self.data.vocab.len(),
            self.data.train.len(),
            self.data.val.len(),
            self.device,
            c.epochs,
            self.steps_per_epoch(),
            c.batch_size,
            self.dir.display()
        ));
        while self.state.epoch < self.cfg.epochs {
            self.epoch()?;
        }
        if !self.history.is_empty() {
            plot::write_curves(&self.dir, &[(run_name(&self.dir), self.history.clone())])?;
        }
        let last = self
            .history
            .last()
            .ok_or_else(|| CliError::msg("no epoch finished"))?;
        self.console.line(format!(
            "done: val loss {:.4} (perplexity {:.2}), best {:.4}, weights in {}",
            last.val_loss,
            last.val_loss.exp(),
            -self.state.best_acc,
            self.dir.join(BEST).display()
        ));
        Ok(Summary {
            accuracy: last.val_acc,
            loss: last.val_loss,
            best_accuracy: self.history.iter().map(|r| r.val_acc).fold(0.0, f64::max),
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

    fn epoch(&mut self) -> Result<()> {
        let e = self.state.epoch;
        let total = self.steps_per_epoch();
        let mut bar = self
            .console
            .epoch(
                format!("epoch {}/{}", e + 1, self.cfg.epochs),
                total,
                self.state.step,
            )
            .with_unit("tokens/s");
        let (t, seconds0) = (Instant::now(), self.state.seconds);
        let params = self.model.parameters();
        let (b, seed) = (self.cfg.batch_size, self.cfg.seed);
        while self.state.step < total {
            let mut rng = Rng::new(step_seed(seed, self.state.global_step));
            let (x, y) = self.data.batch(true, b, SEQ_LEN, &mut rng, &self.device)?;
            self.opt.zero_grad();
            let logits = self.model.forward(&x)?;
            let loss = lm_loss(&logits, &y)?;
            let lv = loss.item_f64()?;
            if !lv.is_finite() {
                bar.finish();
                return Err(CliError::msg(format!(
                    "loss is {lv} at step {}: training diverged; try a lower --lr (now {})",
                    self.state.global_step + 1,
                    self.cfg.lr
                )));
            }
            loss.backward()?;
            mlfw_optim::clip_grad_norm(&params, CLIP, 2.0)?;
            self.opt.step()?;
            let correct = {
                let _g = mlfw_autograd::no_grad();
                logits.argmax(2, false)?.count_eq(&y)?
            };
            let s = &mut self.state;
            s.correct += correct;
            s.step += 1;
            s.global_step += 1;
            s.loss_sum += lv;
            s.seen += b * SEQ_LEN;
            s.seconds = seconds0 + t.elapsed().as_secs_f64();
            if self.first_step_s.is_none() {
                self.first_step_s = Some(crate::START.elapsed().as_secs_f64());
            }
            bar.step(s.step, lv, b * SEQ_LEN);
        }
        bar.finish();
        let tv = Instant::now();
        let (val_loss, val_acc) = validate(self.model.as_mut(), &self.data, b, &self.device)?;
        let s = &self.state;
        let row = EpochMetrics {
            epoch: e + 1,
            train_loss: s.loss_sum / s.step.max(1) as f64,
            train_acc: s.correct / s.seen.max(1) as f64,
            val_loss,
            val_acc,
            lr: self.opt.lr(),
            time_s: s.seconds + tv.elapsed().as_secs_f64(),
            images_per_s: s.seen as f64 / s.seconds.max(1e-9),
        };
        metrics::append(&self.dir, &row)?;
        append_perplexity(&self.dir, &row)?;
        self.history.push(row.clone());
        if -val_loss > self.state.best_acc {
            self.state.best_acc = -val_loss;
            self.model.save(&self.dir.join(BEST))?;
        }
        self.state = self.state.next_epoch();
        self.state.rng = with_global(|g| g.state());
        self.model.save(&self.dir.join(LAST))?;
        checkpoint::save(
            &self.dir.join(CHECKPOINT),
            self.model.as_ref(),
            &self.opt.state_dict()?,
            None,
            &self.state,
            None,
        )?;
        self.console.line(format!(
            "epoch {}/{}  train loss {:.4}  val loss {:.4} (perplexity {:.2}) acc {:.4}  {:.1}s  {:.0} tokens/s",
            row.epoch,
            self.cfg.epochs,
            row.train_loss,
            row.val_loss,
            row.val_loss.exp(),
            row.val_acc,
            row.time_s,
            row.images_per_s
        ));
        Ok(())
    }
}

/// Appends `epoch,train_perplexity,val_perplexity` to `perplexity.csv`.
fn append_perplexity(dir: &Path, r: &EpochMetrics) -> Result<()> {
    use std::io::Write;
    let path = dir.join("perplexity.csv");
    let fresh = !path.exists() || r.epoch == 1;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(!fresh)
        .write(true)
        .truncate(fresh)
        .open(&path)
        .map_err(|e| CliError::msg(format!("{}: {e}", path.display())))?;
    if fresh {
        writeln!(f, "epoch,train_perplexity,val_perplexity")?;
    }
    writeln!(
        f,
        "{},{:.4},{:.4}",
        r.epoch,
        r.train_loss.exp(),
        r.val_loss.exp()
    )?;
    Ok(())
}

fn run_name(dir: &Path) -> String {
    dir.file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into())
}
