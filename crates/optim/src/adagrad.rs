//! Adagrad (torch.optim.Adagrad).

use crate::optimizer::{non_negative, Hyper, Optim};
use mlfw_core::{OptimUpdate, Result};
use serde::{Deserialize, Serialize};

/// Adagrad settings (PyTorch's defaults: no lr decay, accumulator starts at 0, eps 1e-10).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdagradConfig {
    /// Learning rate (PyTorch's default 1e-2).
    pub lr: f64,
    /// Learning-rate decay per step.
    pub lr_decay: f64,
    /// L2 penalty.
    pub weight_decay: f64,
    /// Initial value of the squared-gradient sum.
    pub initial_accumulator_value: f64,
    /// Added to the denominator.
    pub eps: f64,
    /// Ascend instead of descend.
    pub maximize: bool,
}

impl AdagradConfig {
    /// Adagrad with PyTorch's defaults and learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        AdagradConfig {
            lr,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
    /// Sets lr decay.
    pub fn lr_decay(mut self, d: f64) -> Self {
        self.lr_decay = d;
        self
    }
    /// Sets the initial accumulator value.
    pub fn initial_accumulator_value(mut self, v: f64) -> Self {
        self.initial_accumulator_value = v;
        self
    }
    /// Sets weight decay.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = wd;
        self
    }
}

impl Hyper for AdagradConfig {
    const NAME: &'static str = "Adagrad";
    fn lr(&self) -> f64 {
        self.lr
    }
    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }
    fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("learning rate", self.lr),
            ("lr_decay", self.lr_decay),
            ("weight_decay", self.weight_decay),
            ("initial_accumulator_value", self.initial_accumulator_value),
            ("eps", self.eps),
        ] {
            non_negative("Adagrad", what, v)?;
        }
        Ok(())
    }
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        vec![("sum", self.initial_accumulator_value)]
    }
    fn update(&self, step: u64) -> Option<OptimUpdate> {
        Some(OptimUpdate::Adagrad {
            lr: self.lr,
            lr_decay: self.lr_decay,
            weight_decay: self.weight_decay,
            eps: self.eps,
            maximize: self.maximize,
            step,
        })
    }
}

/// Adagrad: `Adagrad::new(params, AdagradConfig::new(1e-2))`.
pub type Adagrad = Optim<AdagradConfig>;
