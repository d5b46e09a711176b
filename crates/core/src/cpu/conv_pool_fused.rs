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

use super::conv::{conv2d_backward_weight_direct_each, conv2d_direct_each};
use super::pool_fused::{
    bias_grad_from_plane_sums, bias_relu_max_pool_2x2_strided, max_pool_2x2_relu_backward_image,
    Pool2x2, BIAS_SUM_MAX_PLANE,
};
use crate::params::Conv2dParams;
use crate::{Error, Result};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

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

/// The weight gradient of `conv2d(x, w)` (and, with `bias_grad`, the bias gradient) when
/// the convolution's output feeds bias + ReLU + 2×2 max pooling, computed from the pooled
/// gradient: each image's output gradient `where(relu <= c0, 0, max_pool2d_backward(gy))`
/// ([`max_pool_2x2_relu_backward_image`]) is written into the direct weight-gradient
/// kernel's scratch just before the kernel reads it, so the full-size `[N, O, oH, oW]`
/// gradient is never stored or re-read. Bit-identical to eager's `where`, `sum([0, 2, 3])`
/// and `conv2d_backward_weight`: the same per-element expressions, the same per-plane sum
/// order, the same kernel on the same values.
///
/// `x` is `[N, C, H, W]` (dims `xd`, contiguous), `wd` the weight's dims `[O, C, kH, kW]`,
/// `gy`, `pooled`, `idx` `N·O·(oH/2)·(oW/2)` each, `geo` the pooling's geometry (`N·O`
/// planes of `oH × oW`), `bias_grad` `O` elements. With `input_grad = (weight, dx)`, also
/// the input gradient `dx` `[N, C, H, W]` from the same per-image gradients (bit-identical to
/// eager's `conv2d_backward_input`). Returns `Ok(None)`, writing nothing, where eager would
/// compute the gradients on another kernel.
///
/// # Errors
/// Inconsistent geometry or slice lengths; an index outside its 2×2 window; a bias gradient
/// with fewer than 2 channels or planes of `BIAS_SUM_MAX_PLANE` or more elements.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_weight_grad_from_pool(
    x: &[f32],
    xd: (usize, usize, usize, usize),
    wd: (usize, usize, usize, usize),
    p: &Conv2dParams,
    (gy, pooled, idx): (&[f32], &[f32], &[i64]),
    c0: f32,
    geo: Pool2x2,
    bias_grad: Option<&mut [f32]>,
    input_grad: Option<(&[f32], &mut [f32])>,
) -> Result<Option<Vec<f32>>> {
    let op = "conv_weight_grad_from_pool";
    let ol = geo.out_len();
    geo.check(
        op,
        &[
            ("grad", gy.len(), geo.planes * ol),
            ("pooled", pooled.len(), geo.planes * ol),
            ("indices", idx.len(), geo.planes * ol),
            (
                "bias_grad",
                bias_grad.as_ref().map_or(geo.c, |b| b.len()),
                geo.c,
            ),
        ],
    )?;
    let out_hw = p.out_hw((xd.2, xd.3), (wd.2, wd.3));
    if out_hw != Some((geo.h, geo.w)) || geo.planes != xd.0 * wd.0 || geo.c != wd.0 {
        return Err(Error::msg(format!(
            "{op}: pooling geometry {geo:?} does not fit the convolution of {xd:?} by {wd:?}"
        )));
    }
    if bias_grad.is_some() && (geo.c < 2 || geo.in_len() >= BIAS_SUM_MAX_PLANE) {
        return Err(Error::msg(format!(
            "{op}: the fused bias gradient needs at least 2 channels and planes of fewer than {BIAS_SUM_MAX_PLANE} elements ({geo:?})"
        )));
    }
    let want_sums = bias_grad.is_some();
    // Each image's plane sums, written once by the task that runs the image (f64 bits).
    let sums: Vec<AtomicU64> = (0..if want_sums { geo.planes } else { 0 })
        .map(|_| AtomicU64::new(0))
        .collect();
    let bad = AtomicBool::new(false);
    let dense = |i: usize, buf: &mut [f32]| {
        let mut s = [0f64; 64];
        let mut heap = Vec::new();
        let ss: &mut [f64] = match (want_sums, geo.c <= s.len()) {
            (false, _) => &mut [],
            (true, true) => &mut s[..geo.c],
            (true, false) => {
                heap.resize(geo.c, 0f64);
                &mut heap
            }
        };
        if max_pool_2x2_relu_backward_image((gy, pooled, idx), c0, geo, i, buf, ss).is_err() {
            bad.store(true, Ordering::Relaxed);
        }
        for (m, v) in ss.iter().enumerate() {
            sums[i * geo.c + m].store(v.to_bits(), Ordering::Relaxed);
        }
    };
    let Some(dw) = conv2d_backward_weight_direct_each(x, xd, wd, p, &dense, input_grad)? else {
        return Ok(None);
    };
    if bad.load(Ordering::Relaxed) {
        return Err(Error::msg(format!(
            "{op}: an index lies outside its 2x2 window (indices not from a 2x2 stride-2 max pool)"
        )));
    }
    if let Some(db) = bias_grad {
        let sums: Vec<f64> = sums
            .iter()
            .map(|s| f64::from_bits(s.load(Ordering::Relaxed)))
            .collect();
        bias_grad_from_plane_sums(&sums, geo.c, db);
    }
    Ok(Some(dw))
}
