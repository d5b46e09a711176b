//! `mlfw train`: arguments, the run's settings (fresh or resumed), and building everything the
//! training loop needs. The loop itself is in [`crate::trainer`].

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};

use crate::error::{CliError, Result};
use crate::run_dir::{self, RunConfig};
use crate::trainer::Trainer;
use crate::{data::DataSpec, models, optim};

/// Arguments of `mlfw train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Model: lenet5 (or lenet), mlp, resnet18, resnet18_cifar, resnet34, resnet34_cifar, vgg11_bn;
    /// language models char-lstm, gpt-mini (Adam 2e-3, batch 32, clip 1.0 by default).
    #[arg(long, default_value = "lenet5")]
    pub model: String,
    /// Dataset: mnist-mini (built in), mnist, fashion-mnist, kmnist, cifar10, cifar100, fake;
    /// text: tinyshakespeare (built in), text:FILE.
    #[arg(long, default_value = "mnist-mini")]
    pub dataset: String,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Number of epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Samples per training step.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Learning rate (peak rate with onecycle) [default: 0.01 for sgd, 0.001 otherwise].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Optimizer: sgd, adam, adamw, rmsprop.
    #[arg(long, default_value = "sgd")]
    pub optimizer: String,
    /// Momentum (sgd, rmsprop) or Adam's beta1 [default: 0.9; 0 for rmsprop].
    #[arg(long)]
    pub momentum: Option<f64>,
    /// Weight decay [default: 0; 0.01 for adamw].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Learning-rate schedule: none, step (x0.1 every third of the run), cosine, onecycle.
    #[arg(long, default_value = "none")]
    pub scheduler: String,
    /// Seed of initialisation, shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Data-loading worker threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Run folder [default: runs/<model>-<dataset>-<timestamp>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Folder holding the dataset's files (no download).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Train at most this many steps per epoch (quick checks); language models: steps per
    /// epoch [default: 100].
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Print nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print one JSON summary on stdout at the end, and nothing else there.
    #[arg(long)]
    pub json: bool,
}

/// Settings that may change when resuming; every other one is the run's.
const RESUMABLE: [&str; 7] = [
    "epochs",
    "device",
    "workers",
    "max_steps",
    "data_dir",
    "quiet",
    "json",
];

/// Runs `mlfw train`.
pub fn run(args: TrainArgs, matches: &ArgMatches) -> Result<()> {
    if crate::lm_train::wanted(&args) {
        let summary = crate::lm_train::run(&args, matches)?;
        if args.json {
            println!("{}", serde_json::to_string(&summary)?);
        }
        return Ok(());
    }
    let (cfg, resume) = match &args.resume {
        Some(dir) => (resumed_config(&args, matches, dir)?, true),
        None => (fresh_config(&args)?, false),
    };
    let mut trainer = Trainer::new(cfg, resume, args.quiet, args.json)?;
    let summary = trainer.run()?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    Ok(())
}

fn fresh_config(a: &TrainArgs) -> Result<RunConfig> {
    let model = models::canonical(&a.model)?;
    let optimizer = optim::optimizer_name(&a.optimizer)?;
    let scheduler = optim::scheduler_name(&a.scheduler)?;
    let spec = DataSpec::new(&a.dataset, model, a.data_dir.clone())?;
    if a.batch_size == 0 || a.epochs == 0 {
        return Err(CliError::msg(
            "--epochs and --batch-size must be at least 1",
        ));
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| run_dir::default_dir(model, spec.name));
    Ok(RunConfig {
        model: model.to_string(),
        dataset: spec.name.to_string(),
        device: a.device.clone(),
        epochs: a.epochs,
        batch_size: a.batch_size,
        lr: a.lr.unwrap_or_else(|| optim::default_lr(optimizer)),
        optimizer: optimizer.to_string(),
        momentum: a
            .momentum
            .unwrap_or_else(|| optim::default_momentum(optimizer)),
        weight_decay: a
            .weight_decay
            .unwrap_or_else(|| optim::default_weight_decay(optimizer)),
        scheduler: scheduler.to_string(),
        seed: a.seed,
        workers: a.workers,
        data_dir: a.data_dir.clone(),
        max_steps: a.max_steps,
        mean: spec.info.mean.clone(),
        std: spec.info.std.clone(),
        input_shape: spec.input,
        num_classes: spec.info.num_classes,
        augment: spec.augmentation(),
        out,
        mlfw_version: env!("CARGO_PKG_VERSION").to_string(),
        command: std::env::args().collect(),
        created: run_dir::timestamp(),
    })
}

/// The saved settings of the run in `dir`, with the changes `RESUMABLE` allows.
fn resumed_config(a: &TrainArgs, m: &ArgMatches, dir: &std::path::Path) -> Result<RunConfig> {
    let given = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
    let cmd = TrainArgs::augment_args(clap::Command::new("train"));
    let fixed: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().as_str())
        .filter(|id| *id != "resume" && !RESUMABLE.contains(id) && given(id))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    if !fixed.is_empty() {
        return Err(CliError::msg(format!(
            "{} cannot change when resuming (the run keeps its config.json); \
             allowed: --epochs, --device, --workers, --max-steps, --data-dir, --quiet, --json",
            fixed.join(", ")
        )));
    }
    let mut cfg = run_dir::read_config(dir)?;
    cfg.out = dir.to_path_buf();
    if given("epochs") {
        cfg.epochs = a.epochs;
    }
    if given("device") {
        cfg.device = a.device.clone();
    }
    if given("workers") {
        cfg.workers = a.workers;
    }
    if given("max_steps") {
        cfg.max_steps = a.max_steps;
    }
    if given("data_dir") {
        cfg.data_dir = a.data_dir.clone();
    }
    Ok(cfg)
}
