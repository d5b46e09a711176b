//! NAdam (torch.optim.NAdam): Adam with Nesterov momentum and a momentum-decay schedule
//! (Dozat, 2016). Written as tensor expressions — no fused kernel, no core or CUDA change —
//! so it runs on every device the tensor ops do. This file is the whole optimizer.

use crate::optimizer::{non_negative, Hyper, Optim};
use mlfw_core::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};

/// NAdam settings (PyTorch's defaults: lr 2e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0,
/// momentum decay 4e-3).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NAdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Decay rates of the first and second moments.
    pub betas: (f64, f64),
    /// Added to the denominator.
    pub eps: f64,
    /// L2 penalty added to the gradient.
    pub weight_decay: f64,
    /// ψ of the momentum schedule `μ_t = β1 (1 − 0.5 · 0.96^(t ψ))`.
    pub momentum_decay: f64,
}

impl NAdamConfig {
    /// NAdam with PyTorch's defaults and learning rate `lr`.
    pub fn new(lr: f64) -> Self {
        NAdamConfig {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            momentum_decay: 4e-3,
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
    /// Sets the momentum decay ψ.
    pub fn momentum_decay(mut self, psi: f64) -> Self {
        self.momentum_decay = psi;
        self
    }

    /// μ_t of the momentum schedule.
    fn mu(&self, t: u64) -> f64 {
        self.betas.0 * (1.0 - 0.5 * 0.96f64.powf(t as f64 * self.momentum_decay))
    }
}

impl Hyper for NAdamConfig {
    const NAME: &'static str = "NAdam";
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
        non_negative("NAdam", "learning rate", self.lr)?;
        non_negative("NAdam", "eps", self.eps)?;
        non_negative("NAdam", "weight_decay", self.weight_decay)?;
        non_negative("NAdam", "momentum_decay", self.momentum_decay)?;
        let (b1, b2) = self.betas;
        if !((0.0..1.0).contains(&b1) && (0.0..1.0).contains(&b2)) {
            return Err(Error::msg(format!(
                "NAdam: invalid betas ({b1}, {b2}) (each must be in [0, 1))"
            )));
        }
        Ok(())
    }
    fn buffers(&self) -> Vec<(&'static str, f64)> {
        vec![("exp_avg", 0.0), ("exp_avg_sq", 0.0)]
    }

    /// `m ← β1 m + (1−β1) g`, `v ← β2 v + (1−β2) g²`, `d = sqrt(v / (1−β2^t)) + ε`,
    /// `p ← p − lr (1−μ_t)/(1−Πμ) · g/d − lr μ_{t+1}/(1−Πμ·μ_{t+1}) · m/d`
    /// (Πμ = μ_1⋯μ_t, recomputed from `step`, so the state is just `m` and `v`).
    fn apply(&self, step: u64, p: &Tensor, grad: &Tensor, bufs: &[Tensor]) -> Result<()> {
        let [m, v] = bufs else {
            return Err(Error::msg("NAdam: expected 2 state buffers"));
        };
        let (b1, b2) = self.betas;
        let g = match self.weight_decay {
            0.0 => grad.clone(),
            wd => grad.add(&p.mul_scalar(wd)?)?,
        };
        let mu_product: f64 = (1..=step).map(|t| self.mu(t)).product();
        let (mu, mu_next) = (self.mu(step), self.mu(step + 1));
        m.assign(&m.mul_scalar(b1)?.add(&g.mul_scalar(1.0 - b1)?)?)?;
        v.assign(&v.mul_scalar(b2)?.add(&g.square()?.mul_scalar(1.0 - b2)?)?)?;
        let denom = v
            .div_scalar(1.0 - b2.powi(step as i32))?
            .sqrt()?
            .add_scalar(self.eps)?;
        let c_grad = -self.lr * (1.0 - mu) / (1.0 - mu_product);
        let c_avg = -self.lr * mu_next / (1.0 - mu_product * mu_next);
        let delta = g
            .mul_scalar(c_grad)?
            .add(&m.mul_scalar(c_avg)?)?
            .div(&denom)?;
        p.assign(&p.add(&delta)?)
    }
}

/// NAdam over parameter groups.
pub type NAdam = Optim<NAdamConfig>;
