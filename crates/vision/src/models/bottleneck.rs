//! torchvision's `Bottleneck` residual block (ResNet-50 and deeper).

use super::resnet::conv;
use mlfw_core::{Device, Result, Tensor};
use mlfw_nn::{BatchNorm2d, Conv2d, Module, Sequential};

/// torchvision's `Bottleneck` (ResNet v1.5, stride on the 3×3):
/// `relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x))))))) + shortcut(x))` with a 1×1
/// reduction to `width`, a 3×3 at `stride`, and a 1×1 expansion to `4·width`;
/// `downsample = Sequential(conv1x1(stride), BatchNorm2d)` when the shape changes.
/// Input `[N, C_in, H, W]`, output `[N, 4·width, H/stride, W/stride]`.
pub struct Bottleneck {
    /// 1×1, `C_in → width`.
    pub conv1: Conv2d,
    /// BatchNorm after conv1.
    pub bn1: BatchNorm2d,
    /// 3×3 at `stride`, `width → width`.
    pub conv2: Conv2d,
    /// BatchNorm after conv2.
    pub bn2: BatchNorm2d,
    /// 1×1, `width → 4·width`.
    pub conv3: Conv2d,
    /// BatchNorm after conv3.
    pub bn3: BatchNorm2d,
    /// Projection shortcut (`downsample.0` conv, `downsample.1` BatchNorm).
    pub downsample: Option<Sequential>,
}

impl Bottleneck {
    /// Output channels per unit of `width`.
    pub const EXPANSION: usize = 4;

    /// A block from `c_in` channels through `width` to `4·width`, with `stride`.
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn new(c_in: usize, width: usize, stride: usize, d: &Device) -> Result<Self> {
        let c_out = width * Self::EXPANSION;
        let downsample = if stride != 1 || c_in != c_out {
            Some(
                Sequential::new()
                    .append(conv(c_in, c_out, 1, stride, 0, d)?)
                    .append(BatchNorm2d::new_2d(c_out, d)?),
            )
        } else {
            None
        };
        Ok(Bottleneck {
            conv1: conv(c_in, width, 1, 1, 0, d)?,
            bn1: BatchNorm2d::new_2d(width, d)?,
            conv2: conv(width, width, 3, stride, 1, d)?,
            bn2: BatchNorm2d::new_2d(width, d)?,
            conv3: conv(width, c_out, 1, 1, 0, d)?,
            bn3: BatchNorm2d::new_2d(c_out, d)?,
            downsample,
        })
    }
}

impl Module for Bottleneck {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.bn1.forward_relu(&self.conv1.forward(x)?)?;
        let h = self.bn2.forward_relu(&self.conv2.forward(&h)?)?;
        let h = self.bn3.forward(&self.conv3.forward(&h)?)?;
        super::blocks::residual_relu(&h, x, self.downsample.as_ref())
    }
    fn visit_children(&self, f: &mut dyn FnMut(&str, &dyn Module)) {
        f("conv1", &self.conv1);
        f("bn1", &self.bn1);
        f("conv2", &self.conv2);
        f("bn2", &self.bn2);
        f("conv3", &self.conv3);
        f("bn3", &self.bn3);
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
        f("conv3", &mut self.conv3)?;
        f("bn3", &mut self.bn3)?;
        if let Some(ds) = &mut self.downsample {
            f("downsample", ds)?;
        }
        Ok(())
    }
}
