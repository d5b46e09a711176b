//! Adam and AdamW (torch.optim.Adam / AdamW).

use crate::optimizer::{non_negative, Hyper, Optim};
use mlfw_core::{Error, OptimUpdate, Result};
use serde::{Deserialize, Serialize};

/// Adam settings; `decoupled` makes it AdamW (weight decay applied to the parameter).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate (default 1e-3).
    pub lr: f64,
    /// Decay rates of the first and second moments (default 0.9, 0.999).
    pub betas: (f64, f64),
    /// Added to the denominator (default 1e-8).
    pub eps: f64,
    /// L2 penalty (Adam) or decoupled decay (AdamW).
    pub weight_decay: f64,
    /// Keep the maximum of the second moments.
    pub amsgrad: bool,
    /// AdamW's decoupled weight decay.
    pub decoupled: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl AdamConfig {
    /// Adam with PyTorch's defaults and learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        AdamConfig {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled: false,
            maximize: false,
        }
    }
    /// AdamW with PyTorch's defaults (weight decay 1e-2) and learning rate `lr`.
    pub fn adamw(lr: f64) -> Self {
        AdamConfig {
            weight_decay: 1e-2,
            decoupled: true,
            ..Self::new(lr)
        }
    }
    /// Sets betas.
    pub fn betas(mut self, b1: f64, b2: f64) -> Self {
        self.betas = (b1, b2);
        self
    }
    /// Sets eps.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }
    /// Sets weight decay.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Turns on AMSGrad.
    pub fn amsgrad(mut self, on: bool) -> Self {
        self.amsgrad = on;
        self
    }
    /// Maximises the objective.
    pub fn maximize(mut self, on: bool) -> Self {
        self.maximize = on;
        self
    }
}

impl Hyper for AdamConfig {
    const NAME: &'static str = "Adam";
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn momentum(&self) -> Option<f64> {
        Some(self.betas.0)
    }
    fn set_momentum(&mut self, m: f64) -> bool {
        self.betas.0 = m;
        true
    }
    fn validate(&self) -> Result<()> {
        non_negative("Adam", "learning rate", self.lr)?;
        non_negative("Adam", "eps", self.eps)?;
        non_negative("Adam", "weight_decay", self.weight_decay)?;
        for b in [self.betas.0, self.betas.1] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::msg(format!(
                    "Adam: invalid beta {b} (must be in [0, 1))"
                )));
            }
        }
        Ok(())
    }
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        let mut v = vec![("exp_avg", 0.0), ("exp_avg_sq", 0.0)];
        if self.amsgrad {
            v.push(("max_exp_avg_sq", 0.0));
        }
        v
    }
    fn update(&self, step: u64) -> Option<OptimUpdate> {
        Some(OptimUpdate::Adam {
            lr: self.lr,
            beta1: self.betas.0,
            beta2: self.betas.1,
            eps: self.eps,
            weight_decay: self.weight_decay,
            amsgrad: self.amsgrad,
            decoupled: self.decoupled,
            maximize: self.maximize,
            step,
        })
    }
}

/// Adam: `Adam::new(params, AdamConfig::new(1e-3))`.
pub type Adam = Optim<AdamConfig>;
/// AdamW: `AdamW::new(params, AdamConfig::adamw(1e-3))`.
pub type AdamW = Optim<AdamConfig>;
