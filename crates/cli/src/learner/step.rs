//! One training step — the single place where a batch turns into an optimizer update.
//!
//! [`Learner`](super::Learner) calls [`TrainStep::step`] once per batch and does nothing
//! else with the model's gradients. [`StandardStep`] is eager autograd (forward and loss under
//! autocast, backward, optional loss scaling and gradient averaging, optimizer step); a
//! compiled or otherwise fused step replaces it with [`Learner::step`](super::Learner::step),
//! and any `FnMut(Step) -> Result<StepOutput>` closure is a step too.

use mlfw_autograd::Backward;
use mlfw_core::{DType, Tensor};
use mlfw_distributed::DistributedDataParallel;
use mlfw_nn::Module;
use mlfw_optim::{GradScaler, Optimizer};

use crate::error::Result;

/// A loss function: `(model output, target) -> scalar loss` (mean over the batch).
pub type LossFn = Box<dyn Fn(&Tensor, &Tensor) -> mlfw_core::Result<Tensor>>;

/// Everything one step may use, borrowed from the learner for the length of the step.
pub struct Step<'a> {
    /// The model (in training mode).
    pub model: &'a mut dyn Module,
    /// The optimizer; the step calls its `zero_grad` and `step`.
    pub optimizer: &'a mut dyn Optimizer,
    /// The loss function.
    pub loss: &'a LossFn,
    /// The model's input, on the model's device (after the learner's input transform).
    pub input: &'a Tensor,
    /// The batch's targets, on the model's device.
    pub target: &'a Tensor,
    /// The autocast dtype (mixed precision), if any.
    pub amp: Option<DType>,
    /// The dynamic loss scaler of f16 mixed precision, if any.
    pub scaler: Option<&'a mut GradScaler>,
    /// Gradient averaging across the ranks of a data-parallel run, if any.
    pub ddp: Option<&'a DistributedDataParallel>,
}

/// What a step reports back.
pub struct StepOutput {
    /// The model's output for the batch (used for the training accuracy).
    pub output: Tensor,
    /// The loss of the batch. A step whose loss is not finite must leave the weights as they
    /// were: the learner then stops the run (NaN stop).
    pub loss: f64,
}

/// One training step on one batch.
pub trait TrainStep {
    /// Runs the step: zero the gradients, forward, loss, backward, update.
    ///
    /// Errors: whatever the model, loss, backward pass or optimizer report.
    fn step(&mut self, s: Step<'_>) -> Result<StepOutput>;
}

impl<F: FnMut(Step<'_>) -> Result<StepOutput>> TrainStep for F {
    fn step(&mut self, s: Step<'_>) -> Result<StepOutput> {
        self(s)
    }
}

/// The eager step: forward and loss under autocast (backward outside it, as in PyTorch), the
/// loss checked before any update, backward (scaled under f16), data-parallel gradient
/// averaging, then the optimizer step (through the scaler under f16).
#[derive(Debug, Default, Clone, Copy)]
pub struct StandardStep;

impl TrainStep for StandardStep {
    fn step(&mut self, s: Step<'_>) -> Result<StepOutput> {
        eager_step(s, None)
    }
}

/// [`StandardStep`] with the gradients clipped to a total 2-norm of at most `max_norm`
/// (PyTorch's `clip_grad_norm_`) between backward and the optimizer step; under f16 the
/// gradients are unscaled first, as PyTorch's AMP recipe does.
#[derive(Debug, Clone, Copy)]
pub struct ClippedStep {
    /// The largest total gradient norm let through.
    pub max_norm: f64,
}

impl TrainStep for ClippedStep {
    fn step(&mut self, s: Step<'_>) -> Result<StepOutput> {
        eager_step(s, Some(self.max_norm))
    }
}

/// The eager step, clipping the gradient norm to `clip` when given.
fn eager_step(s: Step<'_>, clip: Option<f64>) -> Result<StepOutput> {
    s.optimizer.zero_grad();
    let (output, loss) = {
        let _amp = s.amp.map(mlfw_core::autocast::autocast).transpose()?;
        let output = s.model.forward(s.input)?;
        let loss = (s.loss)(&output, s.target)?;
        (output, loss)
    };
    let lv = loss.item_f64()?;
    if !lv.is_finite() {
        return Ok(StepOutput { output, loss: lv });
    }
    match s.scaler.as_deref() {
        Some(sc) => sc.scale(&loss)?.backward()?,
        None => loss.backward()?,
    }
    if let Some(ddp) = s.ddp {
        ddp.finish()?;
    }
    let mut scaler = s.scaler;
    if let Some(max_norm) = clip {
        let params = s.model.parameters();
        if let Some(sc) = scaler.as_deref_mut() {
            sc.unscale_(&params)?;
        }
        mlfw_optim::clip_grad_norm(&params, max_norm, 2.0)?;
    }
    match scaler {
        Some(sc) => {
            sc.step(s.optimizer, &s.model.parameters())?;
            sc.update();
        }
        None => s.optimizer.step()?,
    }
    Ok(StepOutput { output, loss: lv })
}
