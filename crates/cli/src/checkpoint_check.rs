//! A checkpoint is believed only if all of it agrees with itself, the run's config and the
//! model: the optimizer's state covers every parameter once training has started, the
//! position lies inside an epoch, and the counters are in range. Each refusal names the field.

use serde_json::Value;

use crate::checkpoint::Checkpoint;
use crate::error::{CliError, Result};
use crate::run_dir::RunConfig;

/// Errors, naming the field, unless `c` is consistent with `cfg`, with a model whose
/// parameters are `params` (in optimizer order), and with epochs of `steps_per_epoch` steps.
///
/// # Errors
/// A field out of line with `cfg`, `params` or `steps_per_epoch` (the message names it): e.g.
/// `progress.step` past an epoch, `progress.seen` more than the steps could see, a negative or
/// non-finite loss sum or time.
pub fn check(
    c: &Checkpoint,
    cfg: &RunConfig,
    params: &[String],
    steps_per_epoch: usize,
) -> Result<()> {
    let p = &c.progress;
    let bad = |field: &str, msg: String| Err(CliError::msg(format!("`{field}` {msg}")));
    if p.step > steps_per_epoch {
        return bad(
            "progress.step",
            format!(
                "is {}, past the {steps_per_epoch} steps of an epoch (batch_size {}, \
                 max_steps {:?}); resume with the --max-steps the run was started with",
                p.step, cfg.batch_size, cfg.max_steps
            ),
        );
    }
    if p.global_step < p.step as u64 {
        return bad(
            "progress.global_step",
            format!("is {}, less than progress.step {}", p.global_step, p.step),
        );
    }
    if p.seen > p.step.saturating_mul(cfg.batch_size) {
        return bad(
            "progress.seen",
            format!(
                "is {}, more than {} steps of batch_size {} can see",
                p.seen, p.step, cfg.batch_size
            ),
        );
    }
    if !(p.correct >= 0.0 && p.correct <= p.seen as f64) {
        return bad(
            "progress.correct",
            format!("is {}, outside 0..={} (progress.seen)", p.correct, p.seen),
        );
    }
    for (field, v) in [
        ("progress.loss_sum", p.loss_sum),
        ("progress.seconds", p.seconds),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return bad(field, format!("is {v}; expected a finite value >= 0"));
        }
    }
    if !(-1.0..=1.0).contains(&p.best_acc) {
        return bad(
            "progress.best_acc",
            format!(
                "is {}; expected -1 (none yet) or an accuracy in [0, 1]",
                p.best_acc
            ),
        );
    }
    if p.loader_seed != cfg.seed {
        return bad(
            "progress.loader_seed",
            format!(
                "is {}, but config.json's seed is {}",
                p.loader_seed, cfg.seed
            ),
        );
    }
    check_scheduler_state(c, cfg)?;
    check_optimizer_state(c, params)
}

/// The schedule must stand where the progress does: a per-batch schedule (`onecycle`) has
/// stepped once per optimizer step, a per-epoch one once per finished epoch.
fn check_scheduler_state(c: &Checkpoint, cfg: &RunConfig) -> Result<()> {
    let Some(json) = &c.scheduler else {
        return Ok(());
    };
    let doc: Value = serde_json::from_str(json)
        .map_err(|e| CliError::msg(format!("`scheduler` state is not JSON: {e}")))?;
    let last = doc["last_epoch"].as_u64();
    let (expected, counter) = if cfg.scheduler == "onecycle" {
        (c.progress.global_step, "progress.global_step")
    } else {
        (c.progress.epoch as u64, "progress.epoch")
    };
    if last != Some(expected) {
        return Err(CliError::msg(format!(
            "`scheduler.last_epoch` is {}, but {counter} is {expected}",
            last.map_or_else(|| "missing".to_string(), |n| n.to_string())
        )));
    }
    Ok(())
}

/// Once training has started, every parameter must have optimizer state (a step count, and
/// the buffers its optimizer keeps: momentum, Adam's moments, ...) for the checkpoint's steps.
fn check_optimizer_state(c: &Checkpoint, params: &[String]) -> Result<()> {
    let doc: Value = serde_json::from_str(&c.optimizer.json)
        .map_err(|e| CliError::msg(format!("`optimizer` state is not JSON: {e}")))?;
    let global = c.progress.global_step;
    if global == 0 {
        return Ok(());
    }
    for (i, name) in params.iter().enumerate() {
        let step = doc["state"][i.to_string()]["step"].as_u64();
        match step {
            None => {
                return Err(CliError::msg(format!(
                    "`optimizer.state.{i}` (parameter `{name}`) is missing, but the checkpoint \
                     is at progress.global_step {global}: its optimizer state was lost"
                )))
            }
            Some(s) if s > global => {
                return Err(CliError::msg(format!(
                    "`optimizer.state.{i}.step` (parameter `{name}`) is {s}, more than \
                     progress.global_step {global}"
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}
