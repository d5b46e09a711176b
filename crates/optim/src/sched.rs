//! Learning-rate schedules (torch.optim.lr_scheduler) in closed form.
//!
//! A schedule ([`LrSchedule`]) maps a group's initial learning rate and the epoch counter to
//! a learning rate; a [`Scheduler`] owns one, remembers the initial rates and the counter,
//! and writes rates into an optimizer. As in PyTorch, building the scheduler applies epoch 0
//! and each [`Scheduler::step`] advances one epoch (or one batch, for OneCycleLR).
//! ```
//! use mlfw_core::{Device, Tensor};
//! use mlfw_optim::{sched::{Scheduler, StepLR}, Optimizer, Sgd, SgdConfig};
//! let p = Tensor::zeros([2], mlfw_core::DType::F32, &Device::Cpu)?.requires_grad_(true)?;
//! let mut opt = Sgd::new(vec![p], SgdConfig::new(0.1))?;
//! let mut sched = Scheduler::new(StepLR::new(2, 0.1), &mut opt)?;
//! sched.step(&mut opt)?;
//! sched.step(&mut opt)?;
//! assert!((opt.lr() - 0.01).abs() < 1e-12);
//! # Ok::<(), mlfw_core::Error>(())
//! ```

use crate::Optimizer;
use mlfw_core::{Error, Result};
use serde_json::{json, Value};
use std::f64::consts::PI;

/// A learning rate as a function of the initial rate and the epoch.
pub trait LrSchedule {
    /// Name for state dicts and errors.
    fn name(&self) -> &'static str;
    /// The rate at epoch `t` of a group whose initial rate is `base`.
    fn lr(&self, base: f64, t: u64) -> Result<f64>;
    /// The momentum (or Adam β1) at epoch `t`, for schedules that cycle it.
    fn momentum(&self, _t: u64) -> Option<f64> {
        None
    }
}

/// Multiplies by `gamma` every `step_size` epochs.
#[derive(Debug, Clone, Copy)]
pub struct StepLR {
    /// Epochs between decays.
    pub step_size: u64,
    /// Decay factor.
    pub gamma: f64,
}

impl StepLR {
    /// `StepLR(step_size, gamma)`.
    pub fn new(step_size: u64, gamma: f64) -> Self {
        StepLR { step_size, gamma }
    }
}

impl LrSchedule for StepLR {
    fn name(&self) -> &'static str {
        "StepLR"
    }
    fn lr(&self, base: f64, t: u64) -> Result<f64> {
        if self.step_size == 0 {
            return Err(Error::msg("StepLR: step_size must be positive"));
        }
        Ok(base * self.gamma.powi((t / self.step_size) as i32))
    }
}

/// Multiplies by `gamma` at each milestone epoch.
#[derive(Debug, Clone)]
pub struct MultiStepLR {
    /// Sorted epochs at which to decay.
    pub milestones: Vec<u64>,
    /// Decay factor.
    pub gamma: f64,
}

impl MultiStepLR {
    /// `MultiStepLR(milestones, gamma)`; milestones are sorted.
    pub fn new(mut milestones: Vec<u64>, gamma: f64) -> Self {
        milestones.sort_unstable();
        MultiStepLR { milestones, gamma }
    }
}

impl LrSchedule for MultiStepLR {
    fn name(&self) -> &'static str {
        "MultiStepLR"
    }
    fn lr(&self, base: f64, t: u64) -> Result<f64> {
        let passed = self.milestones.iter().filter(|&&m| m <= t).count();
        Ok(base * self.gamma.powi(passed as i32))
    }
}

/// Multiplies by `gamma` every epoch.
#[derive(Debug, Clone, Copy)]
pub struct ExponentialLR {
    /// Decay factor.
    pub gamma: f64,
}

impl LrSchedule for ExponentialLR {
    fn name(&self) -> &'static str {
        "ExponentialLR"
    }
    fn lr(&self, base: f64, t: u64) -> Result<f64> {
        Ok(base * self.gamma.powf(t as f64))
    }
}

/// Cosine from the initial rate down to `eta_min` over `t_max` epochs.
#[derive(Debug, Clone, Copy)]
pub struct CosineAnnealingLR {
    /// Half-period in epochs.
    pub t_max: u64,
    /// Lowest rate.
    pub eta_min: f64,
}

impl LrSchedule for CosineAnnealingLR {
    fn name(&self) -> &'static str {
        "CosineAnnealingLR"
    }
    fn lr(&self, base: f64, t: u64) -> Result<f64> {
        if self.t_max == 0 {
            return Err(Error::msg("CosineAnnealingLR: t_max must be positive"));
        }
        let c = (PI * t as f64 / self.t_max as f64).cos();
        Ok(self.eta_min + (base - self.eta_min) * (1.0 + c) / 2.0)
    }
}

/// Linear ramp of the factor from `start_factor` to `end_factor` over `total_iters` epochs
/// (warm-up; PyTorch's defaults 1/3, 1.0, 5 via `default()`).
#[derive(Debug, Clone, Copy)]
pub struct LinearLR {
    /// Factor at epoch 0.
    pub start_factor: f64,
    /// Factor from `total_iters` on.
    pub end_factor: f64,
    /// Length of the ramp.
    pub total_iters: u64,
}

impl Default for LinearLR {
    fn default() -> Self {
        LinearLR {
            start_factor: 1.0 / 3.0,
            end_factor: 1.0,
            total_iters: 5,
        }
    }
}

impl LrSchedule for LinearLR {
    fn name(&self) -> &'static str {
        "LinearLR"
    }
    fn lr(&self, base: f64, t: u64) -> Result<f64> {
        if self.start_factor <= 0.0
            || self.start_factor > 1.0
            || !(0.0..=1.0).contains(&self.end_factor)
        {
            return Err(Error::msg("LinearLR: factors must be in (0, 1] and [0, 1]"));
        }
        if self.total_iters == 0 {
            return Ok(base * self.end_factor);
        }
        let f = t.min(self.total_iters) as f64 / self.total_iters as f64;
        Ok(base * (self.start_factor + (self.end_factor - self.start_factor) * f))
    }
}

/// One-cycle policy (Smith & Topin), PyTorch's `OneCycleLR`: warm up from
/// `max_lr/div_factor` to `max_lr` over `pct_start` of `total_steps`, then anneal to
/// `initial/final_div_factor`; momentum cycles inversely between `max_momentum` and
/// `base_momentum`. Step it once per batch. The optimizer's own rate is ignored.
#[derive(Debug, Clone, Copy)]
pub struct OneCycleLR {
    /// Peak rate.
    pub max_lr: f64,
    /// Total number of steps in the cycle.
    pub total_steps: u64,
    /// Fraction of the cycle spent increasing (0.3).
    pub pct_start: f64,
    /// Cosine (true, default) or linear annealing.
    pub cos_anneal: bool,
    /// Initial rate = max_lr / div_factor (25).
    pub div_factor: f64,
    /// Final rate = initial / final_div_factor (1e4).
    pub final_div_factor: f64,
    /// Three phases (back to the initial rate, then down) instead of two.
    pub three_phase: bool,
    /// Cycle momentum / β1 (true).
    pub cycle_momentum: bool,
    /// Lowest momentum (0.85).
    pub base_momentum: f64,
    /// Highest momentum (0.95).
    pub max_momentum: f64,
}

impl OneCycleLR {
    /// PyTorch's defaults for `max_lr` and `total_steps`.
    pub fn new(max_lr: f64, total_steps: u64) -> Self {
        OneCycleLR {
            max_lr,
            total_steps,
            pct_start: 0.3,
            cos_anneal: true,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
    }

    /// `(end_step, start_lr, end_lr, start_momentum, end_momentum)` per phase.
    fn phases(&self) -> Vec<(f64, f64, f64, f64, f64)> {
        let init = self.max_lr / self.div_factor;
        let min = init / self.final_div_factor;
        let (n, p) = (self.total_steps as f64, self.pct_start);
        let (bm, mm) = (self.base_momentum, self.max_momentum);
        if self.three_phase {
            vec![
                (p * n - 1.0, init, self.max_lr, mm, bm),
                (2.0 * p * n - 2.0, self.max_lr, init, bm, mm),
                (n - 1.0, init, min, mm, mm),
            ]
        } else {
            vec![
                (p * n - 1.0, init, self.max_lr, mm, bm),
                (n - 1.0, self.max_lr, min, bm, mm),
            ]
        }
    }

    fn anneal(&self, start: f64, end: f64, pct: f64) -> f64 {
        if self.cos_anneal {
            end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0)
        } else {
            (end - start) * pct + start
        }
    }

    fn at(&self, t: u64) -> Result<(f64, f64)> {
        if self.total_steps == 0 || !(0.0..=1.0).contains(&self.pct_start) {
            return Err(Error::msg(
                "OneCycleLR: total_steps must be positive and pct_start in [0, 1]",
            ));
        }
        if t > self.total_steps {
            return Err(Error::msg(format!(
                "OneCycleLR: stepped {t} times, more than total_steps {}",
                self.total_steps
            )));
        }
        let phases = self.phases();
        let mut start = 0.0;
        for (i, &(end, l0, l1, m0, m1)) in phases.iter().enumerate() {
            if t as f64 <= end || i == phases.len() - 1 {
                let pct = (t as f64 - start) / (end - start);
                return Ok((self.anneal(l0, l1, pct), self.anneal(m0, m1, pct)));
            }
            start = end;
        }
        unreachable!("the last phase always matches")
    }
}

impl LrSchedule for OneCycleLR {
    fn name(&self) -> &'static str {
        "OneCycleLR"
    }
    fn lr(&self, _base: f64, t: u64) -> Result<f64> {
        Ok(self.at(t)?.0)
    }
    fn momentum(&self, t: u64) -> Option<f64> {
        if self.cycle_momentum {
            self.at(t).ok().map(|x| x.1)
        } else {
            None
        }
    }
}

/// Runs `schedules[i]` from `milestones[i-1]` on, each restarting its own epoch count.
pub struct SequentialLR {
    schedules: Vec<Box<dyn LrSchedule>>,
    milestones: Vec<u64>,
}

impl SequentialLR {
    /// Needs exactly one milestone fewer than schedules, increasing.
    ///
    /// # Errors
    /// No schedule, the wrong number of milestones, or decreasing milestones.
    pub fn new(schedules: Vec<Box<dyn LrSchedule>>, milestones: Vec<u64>) -> Result<Self> {
        if schedules.is_empty()
            || milestones.len() + 1 != schedules.len()
            || milestones.windows(2).any(|w| w[0] > w[1])
        {
            return Err(Error::msg(format!(
                "SequentialLR: expected {} increasing milestones for {} schedules, got {milestones:?}",
                schedules.len().saturating_sub(1),
                schedules.len()
            )));
        }
        Ok(SequentialLR {
            schedules,
            milestones,
        })
    }

    fn pick(&self, t: u64) -> (usize, u64) {
        let i = self.milestones.iter().filter(|&&m| m <= t).count();
        let start = if i == 0 { 0 } else { self.milestones[i - 1] };
        (i, t - start)
    }
}

impl LrSchedule for SequentialLR {
    fn name(&self) -> &'static str {
        "SequentialLR"
    }
    fn lr(&self, base: f64, t: u64) -> Result<f64> {
        let (i, local) = self.pick(t);
        self.schedules[i].lr(base, local)
    }
    fn momentum(&self, t: u64) -> Option<f64> {
        let (i, local) = self.pick(t);
        self.schedules[i].momentum(local)
    }
}

/// Applies every schedule in turn to the previous one's output (PyTorch's
/// `ChainedScheduler`; exact for the multiplicative schedules).
pub struct ChainedScheduler {
    schedules: Vec<Box<dyn LrSchedule>>,
}

impl ChainedScheduler {
    /// Chains `schedules`.
    pub fn new(schedules: Vec<Box<dyn LrSchedule>>) -> Self {
        ChainedScheduler { schedules }
    }
}

impl LrSchedule for ChainedScheduler {
    fn name(&self) -> &'static str {
        "ChainedScheduler"
    }
    fn lr(&self, base: f64, t: u64) -> Result<f64> {
        self.schedules.iter().try_fold(base, |lr, s| s.lr(lr, t))
    }
}

/// Drives an optimizer's learning rates with a schedule.
pub struct Scheduler {
    schedule: Box<dyn LrSchedule>,
    base_lrs: Vec<f64>,
    last_epoch: u64,
    last_lrs: Vec<f64>,
}

impl Scheduler {
    /// Takes the optimizer's current rates as the initial ones and applies epoch 0.
    ///
    /// # Errors
    /// The schedule rejecting a rate; momentum cycling on an optimizer without one.
    pub fn new(schedule: impl LrSchedule + 'static, opt: &mut dyn Optimizer) -> Result<Self> {
        let mut s = Scheduler {
            schedule: Box::new(schedule),
            base_lrs: opt.group_lrs(),
            last_epoch: 0,
            last_lrs: vec![],
        };
        s.apply(opt)?;
        Ok(s)
    }

    fn apply(&mut self, opt: &mut dyn Optimizer) -> Result<()> {
        let lrs = self
            .base_lrs
            .iter()
            .map(|&b| self.schedule.lr(b, self.last_epoch))
            .collect::<Result<Vec<_>>>()?;
        for (i, &lr) in lrs.iter().enumerate() {
            opt.set_group_lr(i, lr)?;
        }
        if let Some(m) = self.schedule.momentum(self.last_epoch) {
            opt.set_momentum(m)
                .map_err(|e| e.context(format!("{}: cycling momentum", self.schedule.name())))?;
        }
        self.last_lrs = lrs;
        Ok(())
    }

    /// Advances one epoch and sets the optimizer's rates.
    ///
    /// # Errors
    /// As [`Scheduler::new`].
    pub fn step(&mut self, opt: &mut dyn Optimizer) -> Result<()> {
        self.last_epoch += 1;
        self.apply(opt)
    }

    /// The rates last applied, per group.
    pub fn last_lr(&self) -> &[f64] {
        &self.last_lrs
    }

    /// The epoch counter.
    pub fn last_epoch(&self) -> u64 {
        self.last_epoch
    }

    /// `{"scheduler", "last_epoch", "base_lrs"}` as JSON (the schedule itself is code).
    pub fn state_dict(&self) -> String {
        json!({ "scheduler": self.schedule.name(), "last_epoch": self.last_epoch, "base_lrs": self.base_lrs }).to_string()
    }

    /// Restores [`Scheduler::state_dict`] output and re-applies the rates to `opt`.
    ///
    /// # Errors
    /// Malformed JSON; state of another schedule; a group count that differs.
    pub fn load_state_dict(&mut self, s: &str, opt: &mut dyn Optimizer) -> Result<()> {
        let v: Value =
            serde_json::from_str(s).map_err(|e| Error::msg(format!("scheduler state: {e}")))?;
        if v["scheduler"].as_str() != Some(self.schedule.name()) {
            return Err(Error::msg(format!(
                "scheduler state is for {}, not {}",
                v["scheduler"],
                self.schedule.name()
            )));
        }
        let base: Vec<f64> = v["base_lrs"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default();
        if base.len() != self.base_lrs.len() {
            return Err(Error::msg("scheduler state: number of groups differs"));
        }
        self.base_lrs = base;
        self.last_epoch = v["last_epoch"]
            .as_u64()
            .ok_or_else(|| Error::msg("scheduler state: no last_epoch"))?;
        self.apply(opt)
    }
}
