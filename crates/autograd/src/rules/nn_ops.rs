//! Rules for convolution (pooling rules are single kernel calls, dispatched in `mod.rs`).

use mlfw_core::{Conv2dParams, Result, Tensor};

/// Gradients of conv2d w.r.t. input and weight, each only when that input requires grad
/// (a network's first convolution never computes the image's gradient).
///
/// # Errors
/// `input` or `weight` not 4-d, or `g` not shaped like the convolution's output for `p`.
pub fn conv2d(
    input: &Tensor,
    weight: &Tensor,
    g: &Tensor,
    p: Conv2dParams,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let (h, w) = (input.dims()[2], input.dims()[3]);
    let (kh, kw) = (weight.dims()[2], weight.dims()[3]);
    let gi = match input.requires_grad() {
        true => Some(g.conv2d_backward_input(weight, p, (h, w))?),
        false => None,
    };
    let gw = match weight.requires_grad() {
        true => Some(input.conv2d_backward_weight(g, p, (kh, kw))?),
        false => None,
    };
    Ok((gi, gw))
}

/// Gradients of `gi = conv2d_backward_input(grad, weight)` given `g` (shaped like the conv's
/// input). `gi` is linear in both: ⟨gi, g⟩ = ⟨grad, conv2d(g, weight)⟩, so
/// d/dgrad = conv2d(g, weight) and d/dweight = conv2d_backward_weight(g, grad).
///
/// # Errors
/// `grad`, `weight` or `g` not 4-d, or shapes that do not match the convolution for `p`.
pub fn conv2d_backward_input(
    grad: &Tensor,
    weight: &Tensor,
    g: &Tensor,
    p: Conv2dParams,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let (kh, kw) = (weight.dims()[2], weight.dims()[3]);
    let gg = match grad.requires_grad() {
        true => Some(g.conv2d(weight, None, p)?),
        false => None,
    };
    let gw = match weight.requires_grad() {
        true => Some(g.conv2d_backward_weight(grad, p, (kh, kw))?),
        false => None,
    };
    Ok((gg, gw))
}

/// Gradients of `gw = conv2d_backward_weight(input, grad)` given `g` (shaped like the
/// weight): ⟨gw, g⟩ = ⟨grad, conv2d(input, g)⟩, so d/dinput = conv2d_backward_input(grad, g)
/// and d/dgrad = conv2d(input, g).
///
/// # Errors
/// `input`, `grad` or `g` not 4-d, or shapes that do not match the convolution for `p`.
pub fn conv2d_backward_weight(
    input: &Tensor,
    grad: &Tensor,
    g: &Tensor,
    p: Conv2dParams,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let (h, w) = (input.dims()[2], input.dims()[3]);
    let gi = match input.requires_grad() {
        true => Some(grad.conv2d_backward_input(g, p, (h, w))?),
        false => None,
    };
    let gg = match grad.requires_grad() {
        true => Some(input.conv2d(g, None, p)?),
        false => None,
    };
    Ok((gi, gg))
}

/// Gradient of `max_pool2d_backward(grad, indices)` w.r.t. `grad`: `g` read back at the
/// pooled positions (a gather over each flattened plane).
///
/// # Errors
/// `g` or `grad` not 4-d; `indices` whose element count is not `grad`'s, or out of range of
/// a plane of `g`.
pub fn max_pool2d_backward(grad: &Tensor, indices: &Tensor, g: &Tensor) -> Result<Tensor> {
    let (n, c) = (g.dims()[0], g.dims()[1]);
    let plane = g.dims()[2] * g.dims()[3];
    let out = grad.dims()[2] * grad.dims()[3];
    let ids = indices.reshape([n, c, out])?;
    g.reshape([n, c, plane])?
        .gather(&ids, 2)?
        .reshape(grad.shape().clone())
}
