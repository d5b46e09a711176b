//! Building blocks shared by the mobile zoo models (MobileNetV2, EfficientNet): the
//! activations torchvision uses there, `Conv2dNormActivation`, squeeze-and-excitation and
//! stochastic depth.

use mlfw_core::{CmpOp, DType, Device, Result, Tensor};
use mlfw_nn::init::{self, FanMode, Nonlinearity};
use mlfw_nn::{BatchNorm2d, Conv2d, Conv2dConfig, Module, Sequential};

/// `min(max(x, 0), 6)` (PyTorch's `nn.ReLU6`); any shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Relu6;

impl Module for Relu6 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.clamp(0.0, 6.0)
    }
}

/// `x · sigmoid(x)` (PyTorch's `nn.SiLU`, "swish"); any shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silu;

impl Module for Silu {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.mul(&x.sigmoid()?)
    }
}

/// The activation after a conv + BatchNorm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// No activation (projection convs).
    None,
    /// [`Relu6`] (MobileNetV2).
    Relu6,
    /// [`Silu`] (EfficientNet).
    Silu,
}

/// A bias-free conv initialised as torchvision's mobile models (Kaiming normal, fan_out).
pub(crate) fn conv_kaiming(
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    groups: usize,
    d: &Device,
) -> Result<Conv2d> {
    let cfg = Conv2dConfig::default()
        .stride(stride)
        .padding((k - 1) / 2)
        .groups(groups)
        .bias(false);
    let c = Conv2d::new(c_in, c_out, k, cfg, d)?;
    init::kaiming_normal(&c.weight, FanMode::FanOut, Nonlinearity::Relu, None)?;
    Ok(c)
}

/// torchvision's `Conv2dNormActivation`: `Sequential(conv k×k (padding (k−1)/2, no bias),
/// BatchNorm2d(eps), act)`, keys `0.weight`, `1.{weight,bias,running_mean,running_var}`.
///
/// # Errors
/// `Error::Msg` when `groups` does not divide the channels or a size is 0 (as
/// [`mlfw_nn::Conv2d::new`]).
pub fn conv_norm_act(
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    groups: usize,
    act: Act,
    d: &Device,
) -> Result<Sequential> {
    let s = Sequential::new()
        .append(conv_kaiming(c_in, c_out, k, stride, groups, d)?)
        .append(BatchNorm2d::new_2d(c_out, d)?);
    Ok(match act {
        Act::None => s,
        Act::Relu6 => s.append(Relu6),
        Act::Silu => s.append(Silu),
    })
}

/// Squeeze-and-excitation (torchvision's `SqueezeExcitation`, SiLU inside, sigmoid gate):
/// `x · sigmoid(fc2(silu(fc1(avgpool(x)))))` with 1×1 convs `fc1: C → S`, `fc2: S → C`
/// (both with bias). Input and output `[N, C, H, W]`.
pub struct SqueezeExcitation {
    /// `[S, C, 1, 1]` conv with bias.
    pub fc1: Conv2d,
    /// `[C, S, 1, 1]` conv with bias.
    pub fc2: Conv2d,
}

impl SqueezeExcitation {
    /// SE over `channels` with `squeeze` hidden channels.
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn new(channels: usize, squeeze: usize, d: &Device) -> Result<Self> {
        let c = |i, o| -> Result<Conv2d> {
            let conv = Conv2d::new(i, o, 1, Conv2dConfig::default(), d)?;
            init::kaiming_normal(&conv.weight, FanMode::FanOut, Nonlinearity::Relu, None)?;
            if let Some(b) = &conv.bias {
                init::zeros(b)?;
            }
            Ok(conv)
        };
        Ok(SqueezeExcitation {
            fc1: c(channels, squeeze)?,
            fc2: c(squeeze, channels)?,
        })
    }
}

impl Module for SqueezeExcitation {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let s = x.adaptive_avg_pool2d((1, 1))?;
        let s = Silu.forward(&self.fc1.forward(&s)?)?;
        let s = self.fc2.forward(&s)?.sigmoid()?;
        x.mul(&s)
    }
    mlfw_nn::children!(fc1, fc2);
}

/// torchvision's `StochasticDepth(p, "row")`: in training, each sample's residual branch is
/// dropped with probability `p` and the kept ones scaled by `1/(1−p)`; the identity in eval.
#[derive(Debug, Clone)]
pub struct StochasticDepth {
    /// Drop probability in `[0, 1)`.
    pub p: f64,
    training: bool,
}

impl StochasticDepth {
    /// Stochastic depth with drop probability `p` (clamped to `[0, 1)`).
    pub fn new(p: f64) -> Self {
        StochasticDepth {
            p: p.clamp(0.0, 0.999_999),
            training: true,
        }
    }
}

impl Module for StochasticDepth {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.training || self.p == 0.0 {
            return Ok(x.clone());
        }
        let keep = 1.0 - self.p;
        let n = x.dims().first().copied().unwrap_or(1);
        let mut shape = vec![1; x.rank().max(1)];
        shape[0] = n;
        let u = Tensor::rand(0.0, 1.0, shape, DType::F32, &x.device())?;
        let mask = u
            .cmp_scalar(keep, CmpOp::Lt)?
            .to_dtype(x.dtype())?
            .mul_scalar(1.0 / keep)?;
        x.mul(&mask)
    }
    fn set_own_training(&mut self, on: bool) {
        self.training = on;
    }
    fn own_training(&self) -> Option<bool> {
        Some(self.training)
    }
}

/// The end of a residual block: `relu(h + shortcut)`, the shortcut being `x` or, when the
/// block changes shape, `downsample(x)` (torchvision's BasicBlock and Bottleneck).
pub(crate) fn residual_relu(
    h: &Tensor,
    x: &Tensor,
    downsample: Option<&Sequential>,
) -> Result<Tensor> {
    match downsample {
        Some(ds) => h.add(&ds.forward(x)?)?.relu(),
        None => h.add(x)?.relu(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu6_silu_and_stochastic_depth() -> Result<()> {
        let x = Tensor::from_vec(vec![-1f32, 0., 3., 8.], [4], &Device::Cpu)?;
        assert_eq!(Relu6.forward(&x)?.to_vec::<f32>()?, vec![0., 0., 3., 6.]);
        let s = Silu.forward(&x)?.to_vec::<f32>()?;
        assert!((s[0] + 0.268_941_4).abs() < 1e-6 && (s[2] - 2.857_722_8).abs() < 1e-5);
        let mut sd = StochasticDepth::new(0.5);
        let ones = Tensor::ones([64, 3], DType::F32, &Device::Cpu)?;
        let y = sd.forward(&ones)?.to_vec::<f32>()?;
        assert!(y.contains(&0.0) && y.contains(&2.0));
        sd.eval();
        assert_eq!(sd.forward(&ones)?.to_vec::<f32>()?, vec![1.0; 192]);
        Ok(())
    }
}
