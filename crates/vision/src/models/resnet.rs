//! ResNet-18/34/50 with torchvision's layout and keys, plus the CIFAR stem variant.

use super::{check_input, Bottleneck};
use mlfw_core::{Device, Error, Pool2dParams, Result, Tensor};
use mlfw_nn::init::{self, FanMode, Nonlinearity};
use mlfw_nn::{BatchNorm2d, Conv2d, Conv2dConfig, Linear, Module, Sequential};

/// A conv without bias, initialised as torchvision (Kaiming normal, fan_out, ReLU).
pub(super) fn conv(
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
    pad: usize,
    d: &Device,
) -> Result<Conv2d> {
    let cfg = Conv2dConfig::default()
        .stride(stride)
        .padding(pad)
        .bias(false);
    let c = Conv2d::new(c_in, c_out, k, cfg, d)?;
    init::kaiming_normal(&c.weight, FanMode::FanOut, Nonlinearity::Relu, None)?;
    Ok(c)
}

/// torchvision's `BasicBlock`: `relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))`, with
/// `downsample = Sequential(conv1x1(stride), BatchNorm2d)` when the shape changes.
pub struct BasicBlock {
    /// 3×3, stride `s`.
    pub conv1: Conv2d,
    /// BatchNorm after conv1.
    pub bn1: BatchNorm2d,
    /// 3×3, stride 1.
    pub conv2: Conv2d,
    /// BatchNorm after conv2.
    pub bn2: BatchNorm2d,
    /// Projection shortcut (`downsample.0` conv, `downsample.1` BatchNorm).
    pub downsample: Option<Sequential>,
}

impl BasicBlock {
    /// A block from `c_in` to `c_out` channels with `stride`.
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn new(c_in: usize, c_out: usize, stride: usize, d: &Device) -> Result<Self> {
        let downsample = if stride != 1 || c_in != c_out {
            Some(
                Sequential::new()
                    .append(conv(c_in, c_out, 1, stride, 0, d)?)
                    .append(BatchNorm2d::new_2d(c_out, d)?),
            )
        } else {
            None
        };
        Ok(BasicBlock {
            conv1: conv(c_in, c_out, 3, stride, 1, d)?,
            bn1: BatchNorm2d::new_2d(c_out, d)?,
            conv2: conv(c_out, c_out, 3, 1, 1, d)?,
            bn2: BatchNorm2d::new_2d(c_out, d)?,
            downsample,
        })
    }
}

impl Module for BasicBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.bn1.forward_relu(&self.conv1.forward(x)?)?;
        let h = self.bn2.forward(&self.conv2.forward(&h)?)?;
        super::blocks::residual_relu(&h, x, self.downsample.as_ref())
    }
    fn visit_children(&self, f: &mut dyn FnMut(&str, &dyn Module)) {
        f("conv1", &self.conv1);
        f("bn1", &self.bn1);
        f("conv2", &self.conv2);
        f("bn2", &self.bn2);
        if let Some(ds) = &self.downsample {
            f("downsample", ds);
        }
    }
    fn visit_children_mut(
        &mut self,
        f: &mut dyn FnMut(&str, &mut dyn Module) -> Result<()>,
    ) -> Result<()> {
        f("conv1", &mut self.conv1)?;
        f("bn1", &mut self.bn1)?;
        f("conv2", &mut self.conv2)?;
        f("bn2", &mut self.bn2)?;
        if let Some(ds) = &mut self.downsample {
            f("downsample", ds)?;
        }
        Ok(())
    }
}

/// torchvision's ResNet with basic or bottleneck blocks: `conv1 → bn1 → relu → maxpool →
/// layer1..4 → avgpool → fc`. The CIFAR variant uses a 3×3 stride-1 `conv1` and no max-pool
/// (same keys).
pub struct ResNet {
    /// Stem conv: 7×7 stride 2 (ImageNet) or 3×3 stride 1 (CIFAR), no bias.
    pub conv1: Conv2d,
    /// Stem BatchNorm.
    pub bn1: BatchNorm2d,
    /// 64 channels (×4 with bottlenecks).
    pub layer1: Sequential,
    /// 128 channels (×4), stride 2.
    pub layer2: Sequential,
    /// 256 channels (×4), stride 2.
    pub layer3: Sequential,
    /// 512 channels (×4), stride 2.
    pub layer4: Sequential,
    /// `Linear(512, num_classes)` (`Linear(2048, ..)` with bottlenecks).
    pub fc: Linear,
    maxpool: bool,
}

impl ResNet {
    /// A ResNet with `blocks[i]` basic blocks in stage `i` (ResNet-18: `[2, 2, 2, 2]`,
    /// ResNet-34: `[3, 4, 6, 3]`); `cifar` selects the 3×3 stem without max-pool.
    pub fn new(
        blocks: [usize; 4],
        num_classes: usize,
        in_channels: usize,
        cifar: bool,
        d: &Device,
    ) -> Result<Self> {
        Self::build(blocks, false, num_classes, in_channels, cifar, d)
    }

    /// A ResNet with `blocks[i]` [`Bottleneck`] blocks in stage `i` (ResNet-50: `[3, 4, 6, 3]`).
    pub fn with_bottlenecks(
        blocks: [usize; 4],
        num_classes: usize,
        in_channels: usize,
        d: &Device,
    ) -> Result<Self> {
        Self::build(blocks, true, num_classes, in_channels, false, d)
    }

    fn build(
        blocks: [usize; 4],
        bottleneck: bool,
        num_classes: usize,
        in_channels: usize,
        cifar: bool,
        d: &Device,
    ) -> Result<Self> {
        if num_classes == 0 || in_channels == 0 || blocks.contains(&0) {
            return Err(Error::msg(format!(
                "ResNet: num_classes ({num_classes}), in_channels ({in_channels}) and blocks {blocks:?} must be positive"
            )));
        }
        let stem = if cifar {
            conv(in_channels, 64, 3, 1, 1, d)?
        } else {
            conv(in_channels, 64, 7, 2, 3, d)?
        };
        let mut c_in = 64;
        let mut stages = Vec::new();
        let expansion = if bottleneck { Bottleneck::EXPANSION } else { 1 };
        for (i, &n) in blocks.iter().enumerate() {
            let width = 64 << i;
            let mut s = Sequential::new();
            for b in 0..n {
                let stride = if b == 0 && i > 0 { 2 } else { 1 };
                s = if bottleneck {
                    s.append(Bottleneck::new(c_in, width, stride, d)?)
                } else {
                    s.append(BasicBlock::new(c_in, width, stride, d)?)
                };
                c_in = width * expansion;
            }
            stages.push(s);
        }
        let mut it = stages.into_iter();
        let mut next = || it.next().ok_or_else(|| Error::msg("ResNet: missing stage"));
        Ok(ResNet {
            conv1: stem,
            bn1: BatchNorm2d::new_2d(64, d)?,
            layer1: next()?,
            layer2: next()?,
            layer3: next()?,
            layer4: next()?,
            fc: Linear::new(512 * expansion, num_classes, true, d)?,
            maxpool: !cifar,
        })
    }

    /// torchvision's `resnet18(num_classes)`.
    ///
    /// # Errors
    /// `Error::Msg` when `num_classes` or `in_channels` is 0.
    pub fn resnet18(num_classes: usize, in_channels: usize, d: &Device) -> Result<Self> {
        Self::new([2, 2, 2, 2], num_classes, in_channels, false, d)
    }

    /// torchvision's `resnet34(num_classes)`.
    ///
    /// # Errors
    /// `Error::Msg` when `num_classes` or `in_channels` is 0.
    pub fn resnet34(num_classes: usize, in_channels: usize, d: &Device) -> Result<Self> {
        Self::new([3, 4, 6, 3], num_classes, in_channels, false, d)
    }

    /// torchvision's `resnet50(num_classes)` (bottleneck blocks `[3, 4, 6, 3]`).
    ///
    /// # Errors
    /// `Error::Msg` when `num_classes` or `in_channels` is 0.
    pub fn resnet50(num_classes: usize, in_channels: usize, d: &Device) -> Result<Self> {
        Self::with_bottlenecks([3, 4, 6, 3], num_classes, in_channels, d)
    }

    /// ResNet-18 with the CIFAR stem (3×3 stride-1 conv1, no max-pool) for 32×32 images.
    ///
    /// # Errors
    /// `Error::Msg` when `num_classes` or `in_channels` is 0.
    pub fn resnet18_cifar(num_classes: usize, in_channels: usize, d: &Device) -> Result<Self> {
        Self::new([2, 2, 2, 2], num_classes, in_channels, true, d)
    }

    /// ResNet-34 with the CIFAR stem.
    ///
    /// # Errors
    /// `Error::Msg` when `num_classes` or `in_channels` is 0.
    pub fn resnet34_cifar(num_classes: usize, in_channels: usize, d: &Device) -> Result<Self> {
        Self::new([3, 4, 6, 3], num_classes, in_channels, true, d)
    }

    /// The backbone's output before `fc`: `[N, 512]` (`[N, 2048]` with bottlenecks).
    ///
    /// # Errors
    /// `Error::Msg` when `x` is not `[N, in_channels, H, W]` with `H, W` at least the network's
    /// minimum; errors name the stage.
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let min = if self.maxpool { 32 } else { 8 };
        check_input(x, "ResNet", self.conv1.in_channels(), min, None)?;
        let mut h = self.bn1.forward_relu(&self.conv1.forward(x)?)?;
        if self.maxpool {
            let mut p = Pool2dParams::new(3);
            p.stride = (2, 2);
            p.padding = (1, 1);
            h = h.max_pool2d(p)?;
        }
        for (i, stage) in [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
            .into_iter()
            .enumerate()
        {
            h = stage
                .forward(&h)
                .map_err(|e| e.context(format!("ResNet layer{}", i + 1)))?;
        }
        h.adaptive_avg_pool2d((1, 1))?.flatten(1, -1)
    }
}

impl Module for ResNet {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc.forward(&self.features(x)?)
    }
    mlfw_nn::children!(conv1, bn1, layer1, layer2, layer3, layer4, fc);
}
