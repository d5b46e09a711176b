//! `mlfw train` for image classifiers: builds a [`Learner`] from a run's settings
//! ([`RunConfig`]) — model (optionally pretrained or with a frozen backbone), data, optimizer,
//! schedule, mixed precision, data parallelism, the run folder, and on `--resume` the state
//! restored from its checkpoint after checking it against the config. The loop itself is the
//! library's [`Learner::fit`].

use mlfw_core::DType;
use mlfw_data::{DataLoader, Split};
use mlfw_nn::Module;
use mlfw_optim::GradScaler;

use crate::checkpoint::{self, Progress};
use crate::checkpoint_check;
use crate::data::{DataSpec, Normalize};
use crate::error::{CliError, Result};
use crate::learner::{restore, Learner, RunFolder};
use crate::metrics;
use crate::optim;
use crate::run_dir::{self, RunConfig, BEST, CHECKPOINT, LAST};
use crate::run_lock::RunLock;
use crate::tensorboard_log::TensorBoard;
use crate::{device, memory, models};
use mlfw_vision::transfer;

pub use crate::learner::Summary;

/// An `mlfw train` run, set up and ready to go: a [`Learner`] built from a [`RunConfig`].
pub struct Trainer {
    learner: Learner,
    /// Whether to write a TensorBoard event file (`--no-tensorboard` turns it off).
    tensorboard: bool,
    /// `--compile`: replay the training step compiled.
    compile: bool,
}

impl Trainer {
    /// Builds model, data, optimizer and schedule for `cfg`. With `resume` (the run folder's
    /// lock, held since before its config was read) restores them from the folder's checkpoint;
    /// a run that stopped before its first checkpoint starts over from step 0. A fresh run
    /// creates and locks its folder. The folder is only written once everything has loaded,
    /// and stays locked until the trainer is dropped.
    ///
    /// # Errors
    /// An unavailable device or dataset; a model, pretrained weights or batch that
    /// does not fit; a checkpoint that does not match `config.json` (the field is named); a run
    /// folder that cannot be created or is locked; a distributed world of another size.
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
            (Some(DType::F16), Some(s)) => Some(
                GradScaler::with_state(s)
                    .map_err(|e| CliError::msg(e).context(ckpt_path.display()))?,
            ),
            (Some(DType::F16), None) if ckpt.is_some() => {
                return Err(CliError::msg(format!(
                    "{}: an --amp f16 run's checkpoint has no loss-scaler state",
                    ckpt_path.display()
                )))
            }
            (Some(DType::F16), None) => Some(GradScaler::new()),
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
        let mut learner = Learner::new(model, opt, train, val)
            .epochs(cfg.epochs)
            .console(quiet, json)
            .names(cfg.model.clone(), cfg.dataset.clone())
            .handle_ctrl_c();
        learner.steps_per_epoch = steps_per_epoch;
        learner.sched = sched;
        learner.state = state;
        learner.history = history;
        learner.amp = amp;
        learner.scaler = scaler;
        learner.ddp = ddp;
        learner.lr = cfg.lr;
        learner.run = Some(RunFolder { dir, _lock: lock });
        let norm = Normalize::new(&cfg.mean, &cfg.std, &device)?;
        learner.input = Box::new(move |x| norm.apply(x));
        let console = learner.console;
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
            learner,
            tensorboard: true,
            compile: false,
        })
    }

    /// Turns the run folder's TensorBoard event file on or off (on by default).
    pub fn set_tensorboard(&mut self, on: bool) {
        self.tensorboard = on;
    }

    /// Replays the training step compiled (`--compile`; eager when it cannot be captured).
    pub fn set_compile(&mut self, on: bool) {
        self.compile = on;
    }

    /// Trains the remaining epochs, then draws the curves; returns the summary.
    ///
    /// # Errors
    /// As [`Learner::fit`] (divergence, Ctrl-C with exit status 130, file errors).
    pub fn run(mut self) -> Result<Summary> {
        if self.tensorboard {
            self.learner.callbacks.push(Box::new(TensorBoard::new()));
        }
        if self.compile {
            self.learner = self
                .learner
                .step(crate::compile_step::CompileOnFirstBatch::default());
        }
        self.learner.fit()
    }
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
