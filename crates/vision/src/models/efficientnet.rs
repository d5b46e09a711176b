//! EfficientNet-B0 (Tan & Le 2019) with torchvision's layout and keys.

use super::blocks::{conv_norm_act, Act, SqueezeExcitation, StochasticDepth};
use super::check_input;
use mlfw_core::{Device, Error, Result, Tensor};
use mlfw_nn::init;
use mlfw_nn::{Dropout, Linear, Module, Sequential};

/// torchvision's `MBConv`: `block = Sequential([1×1 expand, BN, SiLU] (when the expand ratio
/// is not 1), [k×k depthwise at stride, BN, SiLU], SqueezeExcitation(C_in/4), [1×1 project,
/// BN])`, plus `x` through stochastic depth when the stride is 1 and the channels match.
/// Keys `block.N.*`.
pub struct MbConv {
    /// The expand / depthwise / SE / project chain.
    pub block: Sequential,
    /// Drops the residual branch per sample in training; identity in eval.
    pub stochastic_depth: StochasticDepth,
    residual: bool,
}

/// One MBConv stage: expand ratio, kernel, first stride, channels in/out, repeats.
#[derive(Debug, Clone, Copy)]
struct Stage {
    expand: usize,
    kernel: usize,
    stride: usize,
    c_in: usize,
    c_out: usize,
    layers: usize,
}

const fn st(
    expand: usize,
    kernel: usize,
    stride: usize,
    c_in: usize,
    c_out: usize,
    layers: usize,
) -> Stage {
    Stage {
        expand,
        kernel,
        stride,
        c_in,
        c_out,
        layers,
    }
}

/// EfficientNet-B0's stages (width and depth multipliers 1.0).
const B0: [Stage; 7] = [
    st(1, 3, 1, 32, 16, 1),
    st(6, 3, 2, 16, 24, 2),
    st(6, 5, 2, 24, 40, 2),
    st(6, 3, 2, 40, 80, 3),
    st(6, 5, 1, 80, 112, 3),
    st(6, 5, 2, 112, 192, 4),
    st(6, 3, 1, 192, 320, 1),
];

impl MbConv {
    /// A block from `c_in` to `c_out` channels: hidden width `c_in · expand`, depthwise
    /// `kernel`×`kernel` at `stride`, stochastic-depth probability `sd_prob`.
    ///
    /// # Errors
    /// `Error::Msg` when a channel count is 0 (as [`mlfw_nn::Conv2d::new`]).
    pub fn new(
        c_in: usize,
        c_out: usize,
        expand: usize,
        kernel: usize,
        stride: usize,
        sd_prob: f64,
        d: &Device,
    ) -> Result<Self> {
        let hidden = c_in * expand;
        let mut block = Sequential::new();
        if expand != 1 {
            block = block.append(conv_norm_act(c_in, hidden, 1, 1, 1, Act::Silu, d)?);
        }
        let block = block
            .append(conv_norm_act(
                hidden,
                hidden,
                kernel,
                stride,
                hidden,
                Act::Silu,
                d,
            )?)
            .append(SqueezeExcitation::new(hidden, (c_in / 4).max(1), d)?)
            .append(conv_norm_act(hidden, c_out, 1, 1, 1, Act::None, d)?);
        Ok(MbConv {
            block,
            stochastic_depth: StochasticDepth::new(sd_prob),
            residual: stride == 1 && c_in == c_out,
        })
    }
}

impl Module for MbConv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.block.forward(x)?;
        if self.residual {
            self.stochastic_depth.forward(&h)?.add(x)
        } else {
            Ok(h)
        }
    }
    mlfw_nn::children!(block, stochastic_depth);
}

/// torchvision's `efficientnet_b0(num_classes)`: `features` (a 3×3 stride-2 stem, 16 MBConv
/// blocks in 7 stages `features.1..7`, a 1×1 conv to 1280, all with SiLU) → global average
/// pool → `classifier = Sequential(Dropout(0.2), Linear(1280, num_classes))`. Stochastic depth
/// grows linearly to 0.2 over the blocks (identity in eval). Input `[N, C, H, W]` with H, W ≥
/// 32; output `[N, num_classes]`.
pub struct EfficientNet {
    /// `features.0` … `features.8`.
    pub features: Sequential,
    /// `classifier.0` dropout, `classifier.1` linear.
    pub classifier: Sequential,
    in_channels: usize,
}

impl EfficientNet {
    /// Width of the last feature map (input of the classifier).
    pub const LAST_CHANNELS: usize = 1280;

    /// A fresh EfficientNet-B0 initialised as torchvision (Kaiming-normal convs, linear
    /// U(±1/√num_classes)). Errors on zero classes or channels.
    ///
    /// # Errors
    /// `Error::Msg` when `num_classes` or `in_channels` is 0.
    pub fn b0(num_classes: usize, in_channels: usize, d: &Device) -> Result<Self> {
        if num_classes == 0 || in_channels == 0 {
            return Err(Error::msg(format!(
                "EfficientNet: num_classes ({num_classes}) and in_channels ({in_channels}) must be positive"
            )));
        }
        let mut features =
            Sequential::new().append(conv_norm_act(in_channels, 32, 3, 2, 1, Act::Silu, d)?);
        let total: usize = B0.iter().map(|s| s.layers).sum();
        let mut id = 0;
        for s in B0 {
            let mut stage = Sequential::new();
            for i in 0..s.layers {
                let (c_in, stride) = if i == 0 {
                    (s.c_in, s.stride)
                } else {
                    (s.c_out, 1)
                };
                let p = 0.2 * id as f64 / total as f64;
                stage = stage.append(MbConv::new(
                    c_in, s.c_out, s.expand, s.kernel, stride, p, d,
                )?);
                id += 1;
            }
            features = features.append(stage);
        }
        let last = Self::LAST_CHANNELS;
        features = features.append(conv_norm_act(320, last, 1, 1, 1, Act::Silu, d)?);
        let fc = Linear::new(last, num_classes, true, d)?;
        let r = 1.0 / (num_classes as f64).sqrt();
        init::uniform(&fc.weight, -r, r, None)?;
        if let Some(b) = &fc.bias {
            init::zeros(b)?;
        }
        let classifier = Sequential::new().append(Dropout::new(0.2)?).append(fc);
        Ok(EfficientNet {
            features,
            classifier,
            in_channels,
        })
    }
}

impl Module for EfficientNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input(x, "EfficientNet", self.in_channels, 32, None)?;
        let h = self
            .features
            .forward(x)
            .map_err(|e| e.context("EfficientNet features"))?;
        let h = h.adaptive_avg_pool2d((1, 1))?.flatten(1, -1)?;
        self.classifier.forward(&h)
    }
    mlfw_nn::children!(features, classifier);
}
