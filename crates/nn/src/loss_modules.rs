//! Losses as structs holding their options (PyTorch's `nn.CrossEntropyLoss`, ...). Each has
//! `forward(input, target)`; the formulas live in [`crate::functional`].

use crate::loss::{self, CrossEntropyOptions, Reduction};
use mlfw_core::{Result, Tensor};

/// Cross entropy of logits and class indices (or probabilities).
#[derive(Debug, Clone, Default)]
pub struct CrossEntropyLoss {
    /// Weights, ignore_index, reduction, label smoothing.
    pub options: CrossEntropyOptions,
}

impl CrossEntropyLoss {
    /// PyTorch's defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets label smoothing.
    pub fn label_smoothing(mut self, eps: f64) -> Self {
        self.options.label_smoothing = eps;
        self
    }
    /// Sets per-class weights `[C]`.
    pub fn weight(mut self, w: Tensor) -> Self {
        self.options.weight = Some(w);
        self
    }
    /// Sets the ignored target value.
    pub fn ignore_index(mut self, i: i64) -> Self {
        self.options.ignore_index = i;
        self
    }
    /// Sets the reduction.
    pub fn reduction(mut self, r: Reduction) -> Self {
        self.options.reduction = r;
        self
    }
    /// The loss of `logits` `[N, C, ..]` against `target`.
    ///
    /// # Errors
    /// As [`crate::functional::cross_entropy_with`].
    pub fn forward(&self, logits: &Tensor, target: &Tensor) -> Result<Tensor> {
        loss::cross_entropy_with(logits, target, &self.options)
    }
}

/// Negative log likelihood of log-probabilities and class indices.
#[derive(Debug, Clone, Default)]
pub struct NllLoss {
    /// Weights, ignore_index, reduction (label smoothing must stay 0).
    pub options: CrossEntropyOptions,
}

impl NllLoss {
    /// The loss of `logp` `[N, C, ..]` against `target`.
    ///
    /// # Errors
    /// As [`crate::functional::nll_loss_with`].
    pub fn forward(&self, logp: &Tensor, target: &Tensor) -> Result<Tensor> {
        loss::nll_loss_with(logp, target, &self.options)
    }
}

/// Mean squared error.
#[derive(Debug, Clone, Copy, Default)]
pub struct MseLoss {
    /// Reduction.
    pub reduction: Reduction,
}

impl MseLoss {
    /// The loss of `x` against `y` (same shape).
    ///
    /// # Errors
    /// As [`crate::functional::mse_loss`].
    pub fn forward(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        loss::mse_loss(x, y, self.reduction)
    }
}

/// Mean absolute error.
#[derive(Debug, Clone, Copy, Default)]
pub struct L1Loss {
    /// Reduction.
    pub reduction: Reduction,
}

impl L1Loss {
    /// The loss of `x` against `y` (same shape).
    ///
    /// # Errors
    /// As [`crate::functional::l1_loss`].
    pub fn forward(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        loss::l1_loss(x, y, self.reduction)
    }
}

/// Smooth L1 loss with threshold `beta` (PyTorch's default 1.0).
#[derive(Debug, Clone, Copy)]
pub struct SmoothL1Loss {
    /// Threshold between the quadratic and linear parts.
    pub beta: f64,
    /// Reduction.
    pub reduction: Reduction,
}

impl Default for SmoothL1Loss {
    fn default() -> Self {
        SmoothL1Loss {
            beta: 1.0,
            reduction: Reduction::Mean,
        }
    }
}

impl SmoothL1Loss {
    /// The loss of `x` against `y` (same shape).
    ///
    /// # Errors
    /// As [`crate::functional::smooth_l1_loss`].
    pub fn forward(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        loss::smooth_l1_loss(x, y, self.beta, self.reduction)
    }
}

/// Binary cross entropy of probabilities.
#[derive(Debug, Clone, Default)]
pub struct BceLoss {
    /// Elementwise weight.
    pub weight: Option<Tensor>,
    /// Reduction.
    pub reduction: Reduction,
}

impl BceLoss {
    /// The loss of probabilities `p` against targets `y` in `[0, 1]`.
    ///
    /// # Errors
    /// As [`crate::functional::binary_cross_entropy`].
    pub fn forward(&self, p: &Tensor, y: &Tensor) -> Result<Tensor> {
        loss::binary_cross_entropy(p, y, self.weight.as_ref(), self.reduction)
    }
}

/// Binary cross entropy on logits (numerically stable).
#[derive(Debug, Clone, Default)]
pub struct BceWithLogitsLoss {
    /// Elementwise weight.
    pub weight: Option<Tensor>,
    /// Weight of positive examples, broadcast over the class dim.
    pub pos_weight: Option<Tensor>,
    /// Reduction.
    pub reduction: Reduction,
}

impl BceWithLogitsLoss {
    /// The loss of logits `x` against targets `y`.
    ///
    /// # Errors
    /// As [`crate::functional::binary_cross_entropy_with_logits`].
    pub fn forward(&self, x: &Tensor, y: &Tensor) -> Result<Tensor> {
        loss::binary_cross_entropy_with_logits(
            x,
            y,
            self.weight.as_ref(),
            self.pos_weight.as_ref(),
            self.reduction,
        )
    }
}
