//! `mlfw train`: arguments, the run's settings (fresh or resumed), and building everything the
//! training loop needs. The loop itself is in [`crate::trainer`].

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};

use crate::data::{DataSpec, FolderArgs};
use crate::error::{CliError, Result};
use crate::learner::Summary;
use crate::run_dir::{self, RunConfig};
use crate::run_lock::RunLock;
use crate::tensorboard_log::TensorBoard;
use crate::trainer::Trainer;
use crate::{lm_train, models, optim};
use mlfw_data::text_by_name;

/// Arguments of `mlfw train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Model: lenet5 (or lenet), mlp, resnet18, resnet18_cifar, resnet34, resnet34_cifar,
    /// resnet50, vgg11_bn, mobilenet_v2, efficientnet_b0, vit_b_16; language models char-lstm, gpt-mini
    /// (Adam 2e-3, batch 32, clip 1.0 by default).
    #[arg(long, default_value = "lenet5")]
    pub model: String,
    /// Dataset: mnist-mini (built in), mnist, fashion-mnist, kmnist, qmnist, emnist-SPLIT
    /// (byclass, bymerge, balanced, letters, digits, mnist), cifar10, cifar100, svhn, stl10, fake,
    /// or folder:PATH (PATH/train/CLASS/ and PATH/val/CLASS/ images, or PATH/CLASS/
    /// with --val-split); text: tinyshakespeare (built in), text:FILE.
    #[arg(long, default_value = "mnist-mini")]
    pub dataset: String,
    /// Start from the hub's pretrained weights for --model; the classifier head is replaced
    /// (freshly initialised) when the dataset's class count differs from the weights'.
    #[arg(long)]
    pub pretrained: bool,
    /// The hub entry --pretrained loads: NAME or NAME@VERSION, or a single-model registry address
    /// such as hf://timm/resnet18.a1_in1k [default: the model's name].
    #[arg(long, value_name = "SPEC", requires = "pretrained")]
    pub hub_model: Option<String>,
    /// Number of classes; must match the dataset's (a check for folder datasets).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Freeze parameters: none, or backbone (train only the classifier head; no gradients
    /// are computed for the frozen ones).
    #[arg(long, default_value = "none")]
    pub freeze: String,
    /// Learning rate of the backbone (the head uses --lr).
    #[arg(long)]
    pub lr_backbone: Option<f64>,
    /// Folder-dataset options.
    #[command(flatten)]
    pub folder: FolderArgs,
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
    /// Run folder (default: runs/MODEL-DATASET-TIMESTAMP).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Folder holding the dataset's files (no download).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// Mixed precision: none, bf16 or f16 (autocast: matmul and convolution in 16 bits, f32
    /// master weights, loss and reductions; f16 adds a dynamic loss scaler).
    #[arg(long, default_value = "none")]
    pub amp: String,
    /// Data-parallel training over the ranks of `mpirun -np N mlfw train ... --distributed`
    /// (build with `--features mpi`): rank 0 writes the run folder; `--batch-size` is per rank.
    #[arg(long)]
    pub distributed: bool,
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
    /// Do not write a TensorBoard event file (`events.out.tfevents.*`) in the run folder.
    #[arg(long)]
    pub no_tensorboard: bool,
    /// Replay the training step compiled (fused passes, planned buffers); falls back to
    /// eager, saying why, when the step cannot be captured.
    #[arg(long)]
    pub compile: bool,
}

/// Settings that may change when resuming; every other one is the run's.
const RESUMABLE: [&str; 9] = [
    "epochs",
    "device",
    "workers",
    "max_steps",
    "data_dir",
    "quiet",
    "json",
    "no_tensorboard",
    "compile",
];

/// Settings a resumed language-model run may change.
const LM_RESUMABLE: [&str; 6] = [
    "epochs",
    "device",
    "quiet",
    "json",
    "no_tensorboard",
    "compile",
];

/// Flags of `mlfw train` that only image-model runs use: a language-model run refuses them
/// rather than silently train without them.
const IMAGE_ONLY: [&str; 10] = [
    "pretrained",
    "hub_model",
    "num_classes",
    "freeze",
    "lr_backbone",
    "val_split",
    "skip_bad_images",
    "image_size",
    "data_dir",
    "distributed",
];

/// Runs `mlfw train`.
///
/// # Errors
/// Invalid settings (see [`crate::run_dir::RunConfig::validate`]); a run folder that is locked
/// or already holds a run; a `--resume` folder whose settings or checkpoint do not match; being
/// launched by `mpirun` without `--distributed`; training failing.
pub fn run(args: TrainArgs, matches: &ArgMatches) -> Result<()> {
    if lm_wanted(&args) {
        if args.compile {
            crate::compile_step::say_eager(crate::compile_step::LM_NOT_COMPILED);
        }
        let summary = run_lm(&args, matches)?;
        if args.json {
            println!("{}", serde_json::to_string(&summary)?);
        }
        return Ok(());
    }
    if mlfw_distributed::env_rank().is_some_and(|r| r != 0) {
        return run_follower(&args, matches);
    }
    // Resuming: lock the folder before reading anything in it; a fresh run locks the folder
    // when it creates it.
    let (cfg, lock) = match &args.resume {
        Some(dir) => {
            let lock = RunLock::acquire(dir)?;
            (resumed_config(&args, matches, dir)?, Some(lock))
        }
        None => (fresh_config(&args)?, None),
    };
    if mlfw_distributed::launched_by_mpi() && !cfg.distributed {
        return Err(CliError::msg(
            "launched by mpirun without --distributed: every rank would train alone into the \
             same run folder; add --distributed (or run without mpirun)",
        ));
    }
    let mut trainer = Trainer::new(cfg, lock, args.quiet, args.json)?;
    trainer.set_tensorboard(!args.no_tensorboard);
    trainer.set_compile(args.compile);
    let summary = trainer.run()?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    }
    Ok(())
}

/// Ranks other than 0 of a distributed run train in a private copy of the run folder (a
/// temporary folder removed at exit), so the real folder has exactly one writer, rank 0.
fn run_follower(args: &TrainArgs, matches: &ArgMatches) -> Result<()> {
    let scratch = tempfile::tempdir()
        .map_err(|e| CliError::msg(format!("cannot create a scratch folder: {e}")))?;
    let dir = scratch.path().join("run");
    let (cfg, lock) = match &args.resume {
        Some(real) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| CliError::msg(format!("{}: {e}", dir.display())))?;
            for f in [
                run_dir::CONFIG,
                run_dir::CHECKPOINT,
                "metrics.csv",
                "metrics.jsonl",
            ] {
                if real.join(f).is_file() {
                    std::fs::copy(real.join(f), dir.join(f))
                        .map_err(|e| CliError::msg(format!("{}: {e}", real.join(f).display())))?;
                }
            }
            let lock = RunLock::acquire(&dir)?;
            (resumed_config(args, matches, &dir)?, Some(lock))
        }
        None => {
            let mut cfg = fresh_config(args)?;
            cfg.out = dir;
            (cfg, None)
        }
    };
    if !cfg.distributed {
        return Err(CliError::msg(
            "launched by mpirun without --distributed: every rank would train alone into the \
             same run folder; add --distributed (or run without mpirun)",
        ));
    }
    Trainer::new(cfg, lock, true, false)?.run()?;
    Ok(())
}

fn fresh_config(a: &TrainArgs) -> Result<RunConfig> {
    let model = models::canonical(&a.model)?;
    let optimizer = optim::optimizer_name(&a.optimizer)?;
    let scheduler = optim::scheduler_name(&a.scheduler)?;
    let folder = a.folder.options(a.seed);
    let spec = DataSpec::open(
        &a.dataset,
        model,
        a.data_dir.clone(),
        &folder,
        a.folder.image_size,
    )?;
    if let Some(n) = a.num_classes {
        if n != spec.info.num_classes {
            return Err(CliError::msg(format!(
                "--num-classes {n}, but {} has {} classes{}",
                spec.info.name,
                spec.info.num_classes,
                if spec.folder.is_some() {
                    format!(" ({})", spec.info.classes.join(", "))
                } else {
                    String::new()
                }
            )));
        }
    }
    if a.batch_size == 0 || a.epochs == 0 {
        return Err(CliError::msg(
            "--epochs and --batch-size must be at least 1",
        ));
    }
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| run_dir::default_dir(model, spec.name));
    let cfg = RunConfig {
        model: model.to_string(),
        dataset: spec.config_name(),
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
        amp: a.amp.clone(),
        distributed: a.distributed,
        world_size: 1,
        pretrained: a.pretrained,
        hub_model: a.hub_model.clone(),
        freeze: a.freeze.trim().to_ascii_lowercase(),
        lr_backbone: a.lr_backbone,
        val_split: a.folder.val_split,
        skip_bad_images: a.folder.skip_bad_images,
        out,
        mlfw_version: env!("CARGO_PKG_VERSION").to_string(),
        command: std::env::args().collect(),
        created: run_dir::timestamp(),
    };
    cfg.validate()?;
    Ok(cfg)
}

/// The saved settings of the run in `dir`, with the changes `RESUMABLE` allows.
fn resumed_config(a: &TrainArgs, m: &ArgMatches, dir: &std::path::Path) -> Result<RunConfig> {
    let given = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
    refuse_changed(m, &RESUMABLE)?;
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
    cfg.validate()
        .map_err(|e| e.context(dir.join(run_dir::CONFIG).display()))?;
    Ok(cfg)
}

/// Refuses, naming them, flags given with `--resume` other than `allowed` (clap ids): the run
/// keeps its `config.json`, so any other setting would be silently ignored.
fn refuse_changed(m: &ArgMatches, allowed: &[&str]) -> Result<()> {
    let given = |id: &str| m.value_source(id) == Some(ValueSource::CommandLine);
    let flag = |id: &str| format!("--{}", id.replace('_', "-"));
    let cmd = TrainArgs::augment_args(clap::Command::new("train"));
    let fixed: Vec<String> = cmd
        .get_arguments()
        .map(|a| a.get_id().as_str())
        .filter(|id| *id != "resume" && !allowed.contains(id) && given(id))
        .map(flag)
        .collect();
    if fixed.is_empty() {
        return Ok(());
    }
    let allowed: Vec<String> = allowed.iter().map(|id| flag(id)).collect();
    Err(CliError::msg(format!(
        "{} cannot change when resuming (the run keeps its config.json); allowed: {}",
        fixed.join(", "),
        allowed.join(", ")
    )))
}

/// Whether `train` should run the language-model trainer: a language model or a text corpus
/// (or, resuming, a run folder of a language model).
fn lm_wanted(args: &TrainArgs) -> bool {
    match &args.resume {
        Some(dir) => {
            run_dir::read_config(dir).is_ok_and(|c| mlfw_nn::lm::lm_canonical(&c.model).is_some())
        }
        None => {
            mlfw_nn::lm::lm_canonical(&args.model).is_some()
                || mlfw_data::is_text_dataset(&args.dataset)
        }
    }
}

/// Runs `mlfw train` for a language model (fresh, or resumed from `args.resume`).
fn run_lm(args: &TrainArgs, matches: &ArgMatches) -> Result<Summary> {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let mut ignored: Vec<String> = IMAGE_ONLY
        .iter()
        .filter(|id| given(id))
        .map(|id| format!("--{}", id.replace('_', "-")))
        .collect();
    if args.amp != "none" {
        ignored.push(format!("--amp {}", args.amp));
    }
    if !ignored.is_empty() {
        let (verb, pronoun) = if ignored.len() == 1 {
            ("is", "it")
        } else {
            ("are", "them")
        };
        return Err(CliError::msg(format!(
            "{} {verb} only for image models; a language-model run (char-lstm, gpt-mini) would \
             ignore {pronoun}: drop {pronoun}",
            ignored.join(", ")
        )));
    }
    // Resuming: lock the folder (for the whole run) before reading anything in it; a fresh
    // run locks it when it creates it.
    let (cfg, data, lock) = match &args.resume {
        Some(dir) => {
            refuse_changed(matches, &LM_RESUMABLE)?;
            let lock = RunLock::acquire(dir)?;
            let mut cfg = run_dir::read_config(dir)?;
            cfg.out = dir.clone();
            if given("epochs") {
                cfg.epochs = args.epochs;
            }
            if given("device") {
                cfg.device = args.device.clone();
            }
            let data = text_by_name(&cfg.dataset)?;
            lm_train::check_vocab(dir, &data.vocab)?;
            (cfg, data, Some(lock))
        }
        None => {
            let model = mlfw_nn::lm::lm_canonical(&args.model).ok_or_else(|| {
                CliError::msg(format!(
                    "{} is a text dataset: train a language model on it (--model char-lstm or gpt-mini), got `{}`",
                    args.dataset, args.model
                ))
            })?;
            if !mlfw_data::is_text_dataset(&args.dataset) {
                return Err(CliError::msg(format!(
                    "{model} is a language model: train it on a text dataset (--dataset tinyshakespeare or text:FILE), got `{}`",
                    args.dataset
                )));
            }
            let data = text_by_name(&args.dataset)?;
            let optimizer = if given("optimizer") {
                optim::optimizer_name(&args.optimizer)?
            } else {
                "adam"
            };
            let batch_size = if given("batch_size") {
                args.batch_size
            } else {
                32
            };
            if batch_size == 0 || args.epochs == 0 || args.max_steps == Some(0) {
                return Err(CliError::msg(
                    "--epochs, --batch-size and --max-steps must be at least 1",
                ));
            }
            let dataset = if args.dataset.starts_with("text:") {
                args.dataset.clone()
            } else {
                "tinyshakespeare".into()
            };
            let cfg = RunConfig {
                model: model.to_string(),
                dataset: dataset.clone(),
                device: args.device.clone(),
                epochs: args.epochs,
                batch_size,
                lr: args.lr.unwrap_or(if optimizer == "adam" {
                    2e-3
                } else {
                    optim::default_lr(optimizer)
                }),
                optimizer: optimizer.to_string(),
                momentum: args
                    .momentum
                    .unwrap_or_else(|| optim::default_momentum(optimizer)),
                weight_decay: args
                    .weight_decay
                    .unwrap_or_else(|| optim::default_weight_decay(optimizer)),
                scheduler: optim::scheduler_name(&args.scheduler)?.to_string(),
                seed: args.seed,
                workers: args.workers,
                data_dir: None,
                max_steps: Some(args.max_steps.unwrap_or(lm_train::EPOCH_STEPS)),
                mean: vec![],
                std: vec![],
                input_shape: [1, lm_train::SEQ_LEN, 1],
                num_classes: data.vocab.len(),
                augment: vec![],
                amp: "none".into(),
                distributed: false,
                world_size: 1,
                pretrained: false,
                hub_model: None,
                freeze: "none".into(),
                lr_backbone: None,
                val_split: None,
                skip_bad_images: false,
                out: args.out.clone().unwrap_or_else(|| {
                    run_dir::default_dir(
                        model,
                        dataset.strip_prefix("text:").map_or(&dataset, |_| "text"),
                    )
                }),
                mlfw_version: env!("CARGO_PKG_VERSION").to_string(),
                command: std::env::args().collect(),
                created: run_dir::timestamp(),
            };
            (cfg, data, None)
        }
    };
    let mut learner = lm_train::learner(cfg, data, lock, args.quiet, args.json)?;
    if !args.no_tensorboard {
        learner.callbacks.push(Box::new(TensorBoard::new()));
    }
    learner.fit()
}
