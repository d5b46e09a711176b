//! RMSprop (torch.optim.RMSprop).

use crate::optimizer::{non_negative, Hyper, Optim};
use mlfw_core::{OptimUpdate, Result};
use serde::{Deserialize, Serialize};

/// RMSprop settings (PyTorch's defaults: alpha 0.99, eps 1e-8, no momentum, not centered).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RmsPropConfig {
    /// Learning rate (PyTorch's default 1e-2).
    pub lr: f64,
    /// Smoothing constant of the squared-gradient average.
    pub alpha: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// L2 penalty.
    pub weight_decay: f64,
    /// Momentum factor.
    pub momentum: f64,
    /// Normalise by the variance estimate instead of the raw second moment.
    pub centered: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl RmsPropConfig {
    /// RMSprop with PyTorch's defaults and learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        RmsPropConfig {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
    /// Sets alpha.
    pub fn alpha(mut self, a: f64) -> Self {
        self.alpha = a;
        self
    }
    /// Sets momentum.
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
    /// Turns on the centered variant.
    pub fn centered(mut self, on: bool) -> Self {
        self.centered = on;
        self
    }
    /// Sets weight decay.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
}

impl Hyper for RmsPropConfig {
    const NAME: &'static str = "RMSprop";
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn momentum(&self) -> Option<f64> {
        Some(self.momentum)
    }
    fn set_momentum(&mut self, m: f64) -> bool {
        self.momentum = m;
        true
    }
    fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("learning rate", self.lr),
            ("alpha", self.alpha),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
            ("momentum", self.momentum),
        ] {
            non_negative("RMSprop", what, v)?;
        }
        Ok(())
    }
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        let mut v = vec![("square_avg", 0.0)];
        if self.momentum > 0.0 {
            v.push(("momentum_buffer", 0.0));
        }
        if self.centered {
            v.push(("grad_avg", 0.0));
        }
        v
    }
    fn update(&self, _step: u64) -> Option<OptimUpdate> {
        Some(OptimUpdate::RmsProp {
            lr: self.lr,
            alpha: self.alpha,
            eps: self.eps,
            weight_decay: self.weight_decay,
            momentum: self.momentum,
            centered: self.centered,
            maximize: self.maximize,
        })
    }
}

/// RMSprop: `RmsProp::new(params, RmsPropConfig::new(1e-3))`.
pub type RmsProp = Optim<RmsPropConfig>;
