//! MobileNetV2 (Sandler et al. 2018) with torchvision's layout and keys.

use super::blocks::{conv_kaiming, conv_norm_act, Act};
use super::check_input;
use mlfw_core::{Device, Error, Result, Tensor};
use mlfw_nn::init;
use mlfw_nn::{BatchNorm2d, Dropout, Linear, Module, Sequential};

/// torchvision's `InvertedResidual`: `conv = Sequential([1×1 expand, BN, ReLU6] (when
/// `expand_ratio ≠ 1`), [3×3 depthwise at stride, BN, ReLU6], 1×1 project, BN)`, plus `x` when
/// the stride is 1 and the channels match. Keys `conv.N.*`.
pub struct InvertedResidual {
    /// The expand / depthwise / project chain.
    pub conv: Sequential,
    residual: bool,
}

impl InvertedResidual {
    /// A block from `c_in` to `c_out` channels at `stride` (1 or 2) with hidden width
    /// `round(c_in · expand_ratio)`.
    ///
    /// # Errors
    /// `Error::Msg` when a channel count is 0 (as [`mlfw_nn::Conv2d::new`]).
    pub fn new(
        c_in: usize,
        c_out: usize,
        stride: usize,
        expand_ratio: usize,
        d: &Device,
    ) -> Result<Self> {
        let hidden = c_in * expand_ratio;
        let mut conv = Sequential::new();
        if expand_ratio != 1 {
            conv = conv.append(conv_norm_act(c_in, hidden, 1, 1, 1, Act::Relu6, d)?);
        }
        let conv = conv
            .append(conv_norm_act(
                hidden,
                hidden,
                3,
                stride,
                hidden,
                Act::Relu6,
                d,
            )?)
            .append(conv_kaiming(hidden, c_out, 1, 1, 1, d)?)
            .append(BatchNorm2d::new_2d(c_out, d)?);
        Ok(InvertedResidual {
            conv,
            residual: stride == 1 && c_in == c_out,
        })
    }
}

impl Module for InvertedResidual {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.conv.forward(x)?;
        if self.residual {
            h.add(x)
        } else {
            Ok(h)
        }
    }
    mlfw_nn::children!(conv);
}

/// torchvision's `mobilenet_v2(num_classes)` (width 1.0): `features` (a 3×3 stride-2 stem,
/// 17 inverted residuals, a 1×1 conv to 1280, all with ReLU6) → global average pool →
/// `classifier = Sequential(Dropout(0.2), Linear(1280, num_classes))`.
/// Input `[N, C, H, W]` with H, W ≥ 32; output `[N, num_classes]`.
pub struct MobileNetV2 {
    /// `features.0` … `features.18`.
    pub features: Sequential,
    /// `classifier.0` dropout, `classifier.1` linear.
    pub classifier: Sequential,
    in_channels: usize,
}

/// `(expand t, channels c, repeats n, first stride s)` per stage, as in the paper.
const SETTINGS: [(usize, usize, usize, usize); 7] = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
];

impl MobileNetV2 {
    /// Width of the last feature map (input of the classifier).
    pub const LAST_CHANNELS: usize = 1280;

    /// A fresh MobileNetV2 initialised as torchvision (Kaiming-normal convs, N(0, 0.01)
    /// linear). Errors on zero classes or channels.
    ///
    /// # Errors
    /// `Error::Msg` when `num_classes` or `in_channels` is 0.
    pub fn new(num_classes: usize, in_channels: usize, d: &Device) -> Result<Self> {
        if num_classes == 0 || in_channels == 0 {
            return Err(Error::msg(format!(
                "MobileNetV2: num_classes ({num_classes}) and in_channels ({in_channels}) must be positive"
            )));
        }
        let mut features =
            Sequential::new().append(conv_norm_act(in_channels, 32, 3, 2, 1, Act::Relu6, d)?);
        let mut c_in = 32;
        for (t, c, n, s) in SETTINGS {
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                features = features.append(InvertedResidual::new(c_in, c, stride, t, d)?);
                c_in = c;
            }
        }
        let last = Self::LAST_CHANNELS;
        features = features.append(conv_norm_act(c_in, last, 1, 1, 1, Act::Relu6, d)?);
        let fc = Linear::new(last, num_classes, true, d)?;
        init::normal(&fc.weight, 0.0, 0.01, None)?;
        if let Some(b) = &fc.bias {
            init::zeros(b)?;
        }
        let classifier = Sequential::new().append(Dropout::new(0.2)?).append(fc);
        Ok(MobileNetV2 {
            features,
            classifier,
            in_channels,
        })
    }
}

impl Module for MobileNetV2 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input(x, "MobileNetV2", self.in_channels, 32, None)?;
        let h = self
            .features
            .forward(x)
            .map_err(|e| e.context("MobileNetV2 features"))?;
        let h = h.adaptive_avg_pool2d((1, 1))?.flatten(1, -1)?;
        self.classifier.forward(&h)
    }
    mlfw_nn::children!(features, classifier);
}
