//! Convolution + bias + ReLU + 2×2 max pooling as one pass, for compiled plans.
//!
//! Eager (and the plan without this step) stores the convolution's full-size output
//! `[N, O, oH, oW]` and the fused pooling step (`cpu::pool_fused`) reads it back from memory.
//! Here the direct kernels' per-image output (`cpu::conv::direct`, still in the thread's
//! scratch, in L1/L2) is pooled at once by [`bias_relu_max_pool_2x2_strided`], so the
//! full-size map is never written. The convolution's arithmetic is the direct kernel's and
//! the pooling's is `pool_fused`'s, so the pooled values and indices are bit-identical to
//! eager's `max_pool2d(relu(conv2d(x, w) + b))`: eager's store adds `+ 0.0` (turning a `-0.0`
//! output into `+0.0`), which the bias add and ReLU cannot tell apart (`±0 + b` differ only
//! when `b` is `-0.0`, and then ReLU maps both zeros to `+0.0`; comparisons treat them equal).
//!
//! Taken only where eager would run the direct kernels (f32, stride 1, AVX-512, small
//! weights, not `MLFW_CONV_DIRECT=0`); elsewhere [`conv_bias_relu_max_pool_2x2`] returns
//! `Ok(false)` and the plan runs the plain convolution and `pool_fused` after it.

use super::conv::conv2d_direct_each;
use super::pool_fused::bias_relu_max_pool_2x2_strided;
use crate::params::Conv2dParams;
use crate::{Error, Result};

/// `max_pool2d(relu(conv2d(x, w) + bias[o]), 2, 2)` with PyTorch's indices, when eager
/// would compute the convolution on the direct kernels: `x` is `[N, C, H, W]` and `w`
/// `[O, C/groups, kH, kW]` (contiguous, dims `xd`, `wd`), `bias` has `O` elements, `out`
/// and `idx` `N·O·(oH/2)·(oW/2)` (floor mode). Returns `Ok(false)` and writes nothing when
/// another kernel would compute the convolution.
///
/// # Errors
/// Inconsistent geometry (as `conv2d`), an output smaller than 2×2, or slices whose
/// lengths do not fit.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_bias_relu_max_pool_2x2(
    x: &[f32],
    xd: (usize, usize, usize, usize),
    w: &[f32],
    wd: (usize, usize, usize, usize),
    p: &Conv2dParams,
    bias: &[f32],
    out: &mut [f32],
    idx: &mut [i64],
) -> Result<bool> {
    let op = "conv_bias_relu_max_pool_2x2";
    let (oh, ow) = p
        .out_hw((xd.2, xd.3), (wd.2, wd.3))
        .ok_or_else(|| Error::msg(format!("{op}: input {xd:?} smaller than kernel {wd:?}")))?;
    if oh < 2 || ow < 2 {
        return Err(Error::msg(format!(
            "{op}: a {oh}x{ow} output has no 2x2 window"
        )));
    }
    if bias.len() != wd.0 {
        return Err(Error::msg(format!(
            "{op}: {} biases for {} output channels",
            bias.len(),
            wd.0
        )));
    }
    let per_img = wd.0 * (oh / 2) * (ow / 2);
    let bad = std::sync::atomic::AtomicBool::new(false);
    let epi = |_: usize, wide: &[f32], s: (usize, usize), vs: &mut [f32], is: &mut [i64]| {
        if bias_relu_max_pool_2x2_strided(wide, s, bias, (oh, ow), vs, is).is_err() {
            bad.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    let ran = conv2d_direct_each(x, xd, w, wd, p, (out, per_img), (idx, per_img), &epi)?;
    if bad.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Error::msg(format!(
            "{op}: the direct kernel's layout does not fit the pooling (internal error)"
        )));
    }
    Ok(ran)
}
