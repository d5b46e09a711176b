//! Rules for convolution (pooling rules are single kernel calls, dispatched in `mod.rs`).

use mlfw_core::{Conv2dParams, Result, Tensor};

/// Gradients of conv2d w.r.t. input and weight.
pub fn conv2d(
    input: &Tensor,
    weight: &Tensor,
    g: &Tensor,
    p: Conv2dParams,
) -> Result<(Tensor, Tensor)> {
    let (h, w) = (input.dims()[2], input.dims()[3]);
    let (kh, kw) = (weight.dims()[2], weight.dims()[3]);
    let gi = g.conv2d_backward_input(weight, p, (h, w))?;
    let gw = input.conv2d_backward_weight(g, p, (kh, kw))?;
    Ok((gi, gw))
}
