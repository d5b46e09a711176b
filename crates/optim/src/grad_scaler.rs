//! Dynamic loss scaling for f16 mixed-precision training, with PyTorch's `GradScaler`
//! semantics (torch/amp/grad_scaler.py): the loss is multiplied by a scale before backward;
//! gradients are divided by it before the optimizer step; a step whose gradients hold an inf
//! or NaN is skipped and the scale multiplied by `backoff_factor`; after `growth_interval`
//! finite steps in a row the scale is multiplied by `growth_factor`.

use crate::Optimizer;
use mlfw_core::{Error, Result, Tensor};
use serde::{Deserialize, Serialize};

/// The scaler's settings and progress: everything a checkpoint needs to resume exactly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradScalerState {
    /// Current scale.
    pub scale: f64,
    /// Factor applied after `growth_interval` finite steps (PyTorch: 2.0).
    pub growth_factor: f64,
    /// Factor applied after a step with non-finite gradients (PyTorch: 0.5).
    pub backoff_factor: f64,
    /// Finite steps in a row before growing (PyTorch: 2000).
    pub growth_interval: u64,
    /// Finite steps since the last growth or backoff.
    pub growth_tracker: u64,
}

impl Default for GradScalerState {
    /// PyTorch's defaults: scale 2¹⁶, growth 2.0, backoff 0.5, interval 2000.
    fn default() -> Self {
        GradScalerState {
            scale: 65536.0,
            growth_factor: 2.0,
            backoff_factor: 0.5,
            growth_interval: 2000,
            growth_tracker: 0,
        }
    }
}

/// A dynamic loss scaler. Per step: `scaler.scale(&loss)?.backward()`, then
/// `scaler.step(&mut opt, &params)?` (unscales, skips on inf/NaN), then `scaler.update()`.
///
/// ```
/// use mlfw_autograd::Backward;
/// use mlfw_core::{DType, Device, Tensor};
/// use mlfw_optim::{GradScaler, Optimizer, Sgd, SgdConfig};
/// let w = Tensor::ones([3], DType::F32, &Device::Cpu)?.requires_grad_(true)?;
/// let mut opt = Sgd::new(vec![w.clone()], SgdConfig::new(0.1))?;
/// let mut scaler = GradScaler::new();
/// scaler.scale(&w.square()?.sum_all()?)?.backward()?;
/// assert!(scaler.step(&mut opt, &[w.clone()])?); // gradients were finite: stepped
/// scaler.update();
/// assert_eq!(w.to_vec::<f32>()?, vec![0.8, 0.8, 0.8]);
/// # Ok::<(), mlfw_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GradScaler {
    state: GradScalerState,
    /// Whether the current step's gradients were unscaled, and if so whether any was not finite.
    found_inf: Option<bool>,
}

impl Default for GradScaler {
    fn default() -> Self {
        Self::new()
    }
}

impl GradScaler {
    /// A scaler with PyTorch's defaults.
    pub fn new() -> Self {
        Self::with_state(GradScalerState::default()).expect("defaults are valid")
    }

    /// A scaler with the given settings.
    ///
    /// # Errors
    /// A scale that is not finite and positive; growth factor ≤ 1 or backoff outside (0, 1); a
    /// zero growth interval or a growth tracker not below it.
    pub fn with_state(state: GradScalerState) -> Result<Self> {
        let s = &state;
        if !(s.scale.is_finite() && s.scale > 0.0) {
            return Err(Error::msg(format!(
                "GradScaler: scale must be finite and positive, got {}",
                s.scale
            )));
        }
        if !(s.growth_factor > 1.0 && s.backoff_factor > 0.0 && s.backoff_factor < 1.0) {
            return Err(Error::msg(format!(
                "GradScaler: need growth_factor > 1 and 0 < backoff_factor < 1, got {} and {}",
                s.growth_factor, s.backoff_factor
            )));
        }
        if s.growth_interval == 0 || s.growth_tracker >= s.growth_interval {
            return Err(Error::msg(format!(
                "GradScaler: growth_tracker {} must be below a positive growth_interval {}",
                s.growth_tracker, s.growth_interval
            )));
        }
        Ok(GradScaler {
            state,
            found_inf: None,
        })
    }

    /// The current scale.
    pub fn get_scale(&self) -> f64 {
        self.state.scale
    }

    /// `loss · scale` (recorded, so its backward yields scaled gradients).
    ///
    /// # Errors
    /// Those of `Tensor::mul_scalar` on `loss`.
    pub fn scale(&self, loss: &Tensor) -> Result<Tensor> {
        loss.mul_scalar(self.state.scale)
    }

    /// Divides every parameter's gradient by the scale (once per step) and notes whether any
    /// is inf or NaN. Call it before gradient clipping.
    ///
    /// # Errors
    /// Called twice without [`GradScaler::update`] in between; a gradient op failing.
    pub fn unscale_(&mut self, params: &[Tensor]) -> Result<()> {
        if self.found_inf.is_some() {
            return Err(Error::msg(
                "GradScaler: unscale_ was already called since the last update()",
            ));
        }
        // PyTorch multiplies by the reciprocal, computed in double and rounded to f32.
        let inv = (1.0 / self.state.scale) as f32 as f64;
        let mut found = false;
        for p in params {
            if let Some(g) = p.grad() {
                let g = g.mul_scalar(inv)?;
                // inf·0 and NaN·0 are NaN: one pass tells whether anything is not finite.
                found |= !g.mul_scalar(0.0)?.sum_all()?.item_f64()?.is_finite();
                p.set_grad(Some(g));
            }
        }
        self.found_inf = Some(found);
        Ok(())
    }

    /// Unscales (unless [`GradScaler::unscale_`] already did) and steps the optimizer when
    /// every gradient is finite; returns whether it stepped.
    ///
    /// # Errors
    /// As [`GradScaler::unscale_`], and the optimizer's step.
    pub fn step(&mut self, opt: &mut dyn Optimizer, params: &[Tensor]) -> Result<bool> {
        if self.found_inf.is_none() {
            self.unscale_(params)?;
        }
        if self.found_inf == Some(true) {
            return Ok(false);
        }
        opt.step()?;
        Ok(true)
    }

    /// Adjusts the scale after a step: back off after non-finite gradients, grow after
    /// `growth_interval` finite steps in a row. Without a preceding `unscale_`/`step` this
    /// step counts as finite.
    pub fn update(&mut self) {
        let s = &mut self.state;
        if self.found_inf.take() == Some(true) {
            s.scale *= s.backoff_factor;
            s.growth_tracker = 0;
        } else {
            s.growth_tracker += 1;
            if s.growth_tracker == s.growth_interval {
                s.scale *= s.growth_factor;
                s.growth_tracker = 0;
            }
        }
    }

    /// The state to save in a checkpoint.
    pub fn state_dict(&self) -> GradScalerState {
        self.state
    }

    /// Restores [`GradScaler::state_dict`] output.
    ///
    /// # Errors
    /// As [`GradScaler::with_state`]; `self` is left unchanged then.
    pub fn load_state_dict(&mut self, state: GradScalerState) -> Result<()> {
        *self = Self::with_state(state)?;
        Ok(())
    }
}
