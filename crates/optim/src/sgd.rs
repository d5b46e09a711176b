//! Stochastic gradient descent with momentum (torch.optim.SGD).

use crate::optimizer::{non_negative, Hyper, Optim};
use mlfw_core::{Error, OptimUpdate, Result};
use serde::{Deserialize, Serialize};

/// SGD settings (PyTorch's defaults besides `lr`: no momentum, no dampening, no decay).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// Learning rate.
    pub lr: f64,
    /// Momentum factor.
    pub momentum: f64,
    /// Dampening of the momentum's new gradient.
    pub dampening: f64,
    /// Nesterov momentum (needs momentum > 0 and no dampening).
    pub nesterov: bool,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl SgdConfig {
    /// Plain SGD with learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        SgdConfig {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            maximize: false,
        }
    }
    /// Sets momentum.
    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }
    /// Sets dampening.
    pub fn dampening(mut self, d: f64) -> Self {
        self.dampening = d;
        self
    }
    /// Turns on Nesterov momentum.
    pub fn nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }
    /// Sets weight decay.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
    /// Maximises the objective.
    pub fn maximize(mut self, on: bool) -> Self {
        self.maximize = on;
        self
    }
}

impl Hyper for SgdConfig {
    const NAME: &'static str = "SGD";
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
        non_negative("SGD", "learning rate", self.lr)?;
        non_negative("SGD", "momentum", self.momentum)?;
        non_negative("SGD", "weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::msg(
                "SGD: Nesterov momentum requires a momentum and zero dampening",
            ));
        }
        Ok(())
    }
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        if self.momentum != 0.0 {
            vec![("momentum_buffer", 0.0)]
        } else {
            vec![]
        }
    }
    fn update(&self, step: u64) -> Option<OptimUpdate> {
        Some(OptimUpdate::Sgd {
            lr: self.lr,
            momentum: self.momentum,
            dampening: self.dampening,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
            maximize: self.maximize,
            first_step: step == 1,
        })
    }
}

/// SGD: `Sgd::new(model.parameters(), SgdConfig::new(0.1).momentum(0.9))`.
pub type Sgd = Optim<SgdConfig>;
