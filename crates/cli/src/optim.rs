//! Optimizers and learning-rate schedules by command-line name, with per-optimizer defaults.

use mlfw_core::Tensor;
use mlfw_optim::sched::{CosineAnnealingLR, OneCycleLR, Scheduler, StepLR};
use mlfw_optim::{AdamConfig, Optim, Optimizer, RmsPropConfig, SgdConfig};

use crate::error::{CliError, Result};

/// Every `--optimizer` name.
pub const OPTIMIZER_NAMES: [&str; 4] = ["sgd", "adam", "adamw", "rmsprop"];
/// Every `--scheduler` name.
pub const SCHEDULER_NAMES: [&str; 4] = ["none", "step", "cosine", "onecycle"];

fn pick(kind: &str, name: &str, valid: &[&'static str]) -> Result<&'static str> {
    let n = name.trim().to_ascii_lowercase();
    valid.iter().copied().find(|&v| v == n).ok_or_else(|| {
        CliError::msg(format!(
            "unknown {kind} `{name}`; valid {kind}s: {}",
            valid.join(", ")
        ))
    })
}

/// The canonical optimizer name, or an error listing the valid ones.
///
/// # Errors
/// `name` is not an optimizer (the message lists them).
pub fn optimizer_name(name: &str) -> Result<&'static str> {
    pick("optimizer", name, &OPTIMIZER_NAMES)
}

/// The canonical scheduler name, or an error listing the valid ones.
///
/// # Errors
/// `name` is not a scheduler (the message lists them).
pub fn scheduler_name(name: &str) -> Result<&'static str> {
    pick("scheduler", name, &SCHEDULER_NAMES)
}

/// Default learning rate: 0.01 for SGD, 0.001 (PyTorch's) for the adaptive optimizers.
pub fn default_lr(optimizer: &str) -> f64 {
    if optimizer == "sgd" {
        0.01
    } else {
        1e-3
    }
}

/// Default momentum (Adam's β1): 0.9, but 0 for RMSprop as in PyTorch.
pub fn default_momentum(optimizer: &str) -> f64 {
    if optimizer == "rmsprop" {
        0.0
    } else {
        0.9
    }
}

/// Default weight decay: 0, but 0.01 for AdamW as in PyTorch.
pub fn default_weight_decay(optimizer: &str) -> f64 {
    if optimizer == "adamw" {
        0.01
    } else {
        0.0
    }
}

/// One group per `(params, lr)`, in order, sharing momentum and weight decay.
fn groups<H: mlfw_optim::Hyper>(
    groups: Vec<(Vec<Tensor>, f64)>,
    config: impl Fn(f64) -> H,
) -> Result<Optim<H>> {
    let mut it = groups.into_iter();
    let (params, lr) = it
        .next()
        .ok_or_else(|| CliError::msg("no parameter to optimize"))?;
    let mut o = Optim::new(params, config(lr))?;
    for (params, lr) in it {
        o.add_param_group(params, config(lr))?;
    }
    Ok(o)
}

/// Builds optimizer `name` with parameter groups `(params, lr)` (per-group learning rates,
/// e.g. a fine-tuned backbone slower than its new head); schedules scale every group's rate.
///
/// # Errors
/// An unknown `name`; a group rate, `momentum` or `weight_decay` the optimizer rejects.
pub fn build_optimizer_groups(
    name: &str,
    params: Vec<(Vec<Tensor>, f64)>,
    momentum: f64,
    weight_decay: f64,
) -> Result<Box<dyn Optimizer>> {
    Ok(match optimizer_name(name)? {
        "sgd" => Box::new(groups(params, |lr| {
            SgdConfig::new(lr)
                .momentum(momentum)
                .weight_decay(weight_decay)
        })?),
        "adam" => Box::new(groups(params, |lr| {
            AdamConfig::new(lr)
                .betas(momentum, 0.999)
                .weight_decay(weight_decay)
        })?),
        "adamw" => Box::new(groups(params, |lr| {
            AdamConfig::adamw(lr)
                .betas(momentum, 0.999)
                .weight_decay(weight_decay)
        })?),
        _ => Box::new(groups(params, |lr| {
            RmsPropConfig::new(lr)
                .momentum(momentum)
                .weight_decay(weight_decay)
        })?),
    })
}

/// A built schedule and whether it steps per batch (OneCycle) rather than per epoch.
pub struct Schedule {
    /// The scheduler driving the optimizer.
    pub scheduler: Scheduler,
    /// Step after every batch instead of every epoch.
    pub per_batch: bool,
}

/// Builds scheduler `name` (`None` for `none`): `step` decays by 0.1 every third of the run,
/// `cosine` anneals to 0 over `epochs`, `onecycle` peaks at the optimizer's rate.
///
/// # Errors
/// An unknown `name`; the scheduler rejecting the optimizer (e.g. a learning rate it cannot
/// use).
pub fn build_scheduler(
    name: &str,
    opt: &mut dyn Optimizer,
    epochs: usize,
    steps_per_epoch: usize,
) -> Result<Option<Schedule>> {
    let epochs = epochs.max(1) as u64;
    let (scheduler, per_batch) = match scheduler_name(name)? {
        "none" => return Ok(None),
        "step" => (
            Scheduler::new(StepLR::new((epochs / 3).max(1), 0.1), opt)?,
            false,
        ),
        "cosine" => (
            Scheduler::new(
                CosineAnnealingLR {
                    t_max: epochs,
                    eta_min: 0.0,
                },
                opt,
            )?,
            false,
        ),
        _ => {
            let total = epochs * steps_per_epoch.max(1) as u64;
            (Scheduler::new(OneCycleLR::new(opt.lr(), total), opt)?, true)
        }
    };
    Ok(Some(Schedule {
        scheduler,
        per_batch,
    }))
}
