//! The language-model trainer behind `mlfw train` (its flags are read in `cmd/train.rs`) for
//! the language models (`char-lstm`, `gpt-mini`) on text corpora (`tinyshakespeare`,
//! `text:FILE`): a [`Learner`] set up for them — the loop is the library's.
//!
//! The run folder has the image trainer's layout — `config.json`, `metrics.csv`/`.jsonl`,
//! `last.safetensors`, `best.safetensors` (lowest validation loss), `checkpoint.safetensors`,
//! `loss.png` — plus `vocab.json` (the characters, so `mlfw generate` needs no dataset) and
//! `perplexity.csv`. An epoch is `--max-steps` steps (default 100) of `--batch-size` random
//! windows of 128 characters ([`TextWindows`]); validation is the mean loss over 20 fixed
//! windows batches (as PyTorch's recipe). Gradients are clipped to norm 1.0. The window of
//! step `s` depends only on `(seed, s)`, so `--resume` continues exactly. `--scheduler` drives
//! the learning rate as for images (an epoch being `--max-steps` steps), and `mlfw train` adds
//! the TensorBoard callback (scalars and histograms; token ids are not drawn as images).

use std::path::Path;
use std::sync::Arc;

use mlfw_core::{Device, Tensor};
use mlfw_data::{CharVocab, Rng, TextDataset};
use mlfw_nn::functional as F;
use mlfw_nn::lm::build_lm;
use mlfw_nn::Module;

use crate::checkpoint::{self, Progress};
use crate::error::{CliError, Result};
use crate::learner::{
    restore, BatchSource, ClippedStep, Learner, Monitor, RunFolder, SourceBatch, Span,
};
use crate::metrics;
use crate::run_dir::{self, RunConfig, CHECKPOINT};
use crate::run_lock::RunLock;
use crate::{device, optim};

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

/// Checks that the run folder's vocabulary is the corpus's.
///
/// # Errors
/// `vocab.json` missing or malformed; a vocabulary that differs from `vocab`.
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
///
/// # Errors
/// The file is missing or unreadable, not a JSON string, or repeats a character.
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

/// Cross-entropy of next-token logits `[B, T, V]` against targets `[B, T]` (i64), the mean
/// over every target.
///
/// # Errors
/// Logits that are not 3-d, or targets whose count is not `B·T`; those of `cross_entropy`.
pub fn lm_loss(logits: &Tensor, y: &Tensor) -> mlfw_core::Result<Tensor> {
    let &[_, _, v] = logits.dims() else {
        return Err(mlfw_core::Error::msg(format!(
            "lm_loss: logits must be [batch, time, vocab], got {:?}",
            logits.dims()
        )));
    };
    F::cross_entropy(
        &logits.reshape([y.elem_count(), v])?,
        &y.reshape([y.elem_count()])?,
    )
}

/// Batches of random windows of [`SEQ_LEN`] characters of a corpus and their next characters
/// (inputs and targets `[batch, SEQ_LEN]` i64, on the source's device), as a
/// [`BatchSource`]. Training ([`TextWindows::train`]): the batch of global step `g` is drawn
/// from a generator seeded with `(seed, g)` alone, so a resumed run draws the same windows;
/// an epoch is `steps` batches. Validation ([`TextWindows::val`]): [`VAL_BATCHES`] batches of
/// the validation split drawn in turn from one generator seeded 1234, the same every epoch,
/// each counting once in the mean loss.
#[derive(Debug, Clone)]
pub struct TextWindows {
    data: Arc<TextDataset>,
    train: bool,
    batch: usize,
    steps: usize,
    seed: u64,
    device: Device,
}

impl TextWindows {
    /// Training windows: `steps` batches of `batch` windows per epoch, seeded with `seed`.
    pub fn train(
        data: Arc<TextDataset>,
        batch: usize,
        steps: usize,
        seed: u64,
        device: Device,
    ) -> Self {
        TextWindows {
            data,
            train: true,
            batch,
            steps,
            seed,
            device,
        }
    }

    /// The fixed validation windows: [`VAL_BATCHES`] batches of `batch` windows.
    pub fn val(data: Arc<TextDataset>, batch: usize, device: Device) -> Self {
        TextWindows {
            data,
            train: false,
            batch,
            steps: VAL_BATCHES,
            seed: 1234,
            device,
        }
    }
}

impl BatchSource for TextWindows {
    fn len(&self) -> usize {
        self.steps
    }

    /// Characters of the split.
    fn samples(&self) -> usize {
        match self.train {
            true => self.data.train.len(),
            false => self.data.val.len(),
        }
    }

    /// Errors (per batch): a split shorter than a window, or a device copy failing.
    fn batches(&self, span: Span) -> Box<dyn Iterator<Item = Result<SourceBatch>>> {
        let TextWindows {
            data,
            train,
            batch,
            seed,
            device,
            ..
        } = self.clone();
        let draw = move |rng: &mut Rng| -> Result<SourceBatch> {
            Ok(data.batch(train, batch, SEQ_LEN, rng, &device)?)
        };
        if train {
            Box::new((span.start..span.end).map(move |i| {
                let step = span.global_step + (i - span.start) as u64;
                draw(&mut Rng::new(step_seed(seed, step)))
            }))
        } else {
            let mut rng = Rng::new(seed);
            Box::new((0..span.end).map(move |_| draw(&mut rng)).skip(span.start))
        }
    }

    /// 1: the validation loss is the mean of the batch losses (PyTorch's recipe).
    fn weight(&self, _target: &Tensor) -> f64 {
        1.0
    }
}

/// The [`Learner`] of the language-model run `cfg` on corpus `data`: a fresh run when `lock`
/// is `None`, else the run of the folder whose lock that is, continued exactly from its
/// checkpoint. Adam (or `cfg.optimizer`) with gradients clipped to [`CLIP`], loss
/// [`lm_loss`], best = lowest validation loss, perplexity reported and in `perplexity.csv`,
/// throughput in tokens/s, Ctrl-C handled. The folder is written (`vocab.json`, `config.json`)
/// only once everything has loaded.
///
/// # Errors
/// Device, model, optimizer or checkpoint that cannot be set up; a folder that cannot be
/// created or is locked.
pub fn learner(
    cfg: RunConfig,
    data: TextDataset,
    lock: Option<RunLock>,
    quiet: bool,
    json: bool,
) -> Result<Learner> {
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
    let steps = cfg.max_steps.unwrap_or(EPOCH_STEPS);
    let mut sched = optim::build_scheduler(&cfg.scheduler, opt.as_mut(), cfg.epochs, steps)?;
    let state = match &ckpt {
        Some(c) => restore(c, opt.as_mut(), sched.as_mut(), &device)
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
    let data = Arc::new(data);
    let train = TextWindows::train(Arc::clone(&data), cfg.batch_size, steps, cfg.seed, device);
    let val = TextWindows::val(data, cfg.batch_size, device);
    let model: Box<dyn Module> = model;
    let mut learner = Learner::new(model, opt, train, val)
        .epochs(cfg.epochs)
        .loss(lm_loss)
        .step(ClippedStep { max_norm: CLIP })
        .monitor(Monitor::ValLoss)
        .unit("tokens", "tokens/s")
        .perplexity()
        .console(quiet, json)
        .names(cfg.model.clone(), cfg.dataset.clone())
        .handle_ctrl_c();
    learner.sched = sched;
    learner.state = state;
    learner.history = history;
    learner.lr = cfg.lr;
    learner.run = Some(RunFolder { dir, _lock: lock });
    Ok(learner)
}
