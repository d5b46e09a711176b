//! Capturing modules as graphs ([`mlfw_core::graph::Graph`]): a model's forward pass, or a
//! whole training step (forward, loss, backward), with parameters and buffers named by
//! their state-dict keys.

use crate::{functional as F, Module};
use mlfw_core::graph::{Capture, Graph};
use mlfw_core::{Error, Result, Tensor};

fn named_tensors(model: &dyn Module) -> Vec<(String, Tensor)> {
    let mut v = model.named_parameters();
    v.extend(model.named_buffers());
    v
}

/// Captures `model.forward(input)` as a graph with one placeholder, `input`, and one
/// output, `logits`. With `symbolic_batch`, dim 0 is a symbolic batch size `N` and the graph
/// runs on any batch. The model's mode (train/eval) is used as it is.
///
/// # Errors
/// The forward pass failing on `input`; with `symbolic_batch`, a model whose ops depend on
/// the batch size (`Error::Msg` from the capture).
pub fn trace_module(model: &dyn Module, input: &Tensor, symbolic_batch: bool) -> Result<Graph> {
    Capture::new()
        .input("input", input)
        .params(named_tensors(model))
        .symbolic_batch(symbolic_batch)
        .run(|xs| Ok(vec![model.forward(&xs[0])?]))
}

/// Captures one training step of a classifier: forward on `input`, the mean cross-entropy
/// against `target` (i64 class indices), and the backward pass. Placeholders `input`,
/// `target`; outputs: the loss, then the gradient of every parameter in
/// `model.named_parameters()` order (an untouched parameter's gradient is zeros). The
/// optimizer update is not part of the graph.
///
/// # Errors
/// As [`trace_module`]; `Error::Msg` for a model without parameters; errors of the loss
/// (targets that are not i64 class indices in range).
pub fn trace_train_step(
    model: &dyn Module,
    input: &Tensor,
    target: &Tensor,
    symbolic_batch: bool,
) -> Result<Graph> {
    let params = model.parameters();
    if params.is_empty() {
        return Err(Error::msg("trace_train_step: the model has no parameters"));
    }
    Capture::new()
        .input("input", input)
        .input("target", target)
        .params(named_tensors(model))
        .symbolic_batch(symbolic_batch)
        .run(|xs| {
            let loss = F::cross_entropy(&model.forward(&xs[0])?, &xs[1])?;
            let grads = mlfw_autograd::grad(&loss, &params, None)?;
            let mut out = vec![loss];
            for (g, p) in grads.into_iter().zip(&params) {
                out.push(match g {
                    Some(g) => g,
                    None => p.zeros_like()?,
                });
            }
            Ok(out)
        })
}
