//! Rules for convolution (pooling rules are single kernel calls, dispatched in `mod.rs`).

use mlfw_core::{Conv2dParams, Result, Tensor};

/// Gradients of conv2d w.r.t. input and weight, each only when that input requires grad
/// (a network's first convolution never computes the image's gradient).
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
