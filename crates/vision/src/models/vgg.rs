//! VGG with BatchNorm (torchvision's `vgg11_bn` layout and keys).

use super::check_input;
use mlfw_core::{Device, Error, Result, Tensor};
use mlfw_nn::init::{self, FanMode, Nonlinearity};
use mlfw_nn::{
    AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Conv2dConfig, Dropout, Linear, MaxPool2d, Module, Relu,
    Sequential,
};

/// VGG-11 configuration: output channels of each 3×3 conv, `0` for a 2×2 max-pool.
const VGG11: &[usize] = &[64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0];

/// torchvision's VGG: `features` (conv3×3 → BatchNorm → ReLU, max-pools) → adaptive average
/// pool to 7×7 → `classifier` (Linear 25088→4096, ReLU, Dropout, Linear 4096→4096, ReLU,
/// Dropout, Linear 4096→classes). Keys `features.N.*` and `classifier.{0,3,6}.*`.
pub struct Vgg {
    /// Convolutional trunk.
    pub features: Sequential,
    /// Fully connected head.
    pub classifier: Sequential,
    in_channels: usize,
}

impl Vgg {
    /// `vgg11_bn(num_classes)` for `in_channels`-channel images, initialised as torchvision
    /// (convs Kaiming normal fan_out, linears N(0, 0.01), biases 0).
    ///
    /// # Errors
    /// `Error::Msg` when `num_classes` or `in_channels` is 0.
    pub fn vgg11_bn(num_classes: usize, in_channels: usize, d: &Device) -> Result<Self> {
        if num_classes == 0 || in_channels == 0 {
            return Err(Error::msg(
                "vgg11_bn: num_classes and in_channels must be positive",
            ));
        }
        let mut features = Sequential::new();
        let mut c = in_channels;
        for &v in VGG11 {
            if v == 0 {
                features = features.append(MaxPool2d::new(2));
            } else {
                let conv = Conv2d::new(c, v, 3, Conv2dConfig::default().padding(1), d)?;
                init::kaiming_normal(&conv.weight, FanMode::FanOut, Nonlinearity::Relu, None)?;
                if let Some(b) = &conv.bias {
                    init::zeros(b)?;
                }
                features = features
                    .append(conv)
                    .append(BatchNorm2d::new_2d(v, d)?)
                    .append(Relu);
                c = v;
            }
        }
        let lin = |i: usize, o: usize| -> Result<Linear> {
            let l = Linear::new(i, o, true, d)?;
            init::normal(&l.weight, 0.0, 0.01, None)?;
            if let Some(b) = &l.bias {
                init::zeros(b)?;
            }
            Ok(l)
        };
        let classifier = Sequential::new()
            .append(lin(512 * 7 * 7, 4096)?)
            .append(Relu)
            .append(Dropout::new(0.5)?)
            .append(lin(4096, 4096)?)
            .append(Relu)
            .append(Dropout::new(0.5)?)
            .append(lin(4096, num_classes)?);
        Ok(Vgg {
            features,
            classifier,
            in_channels,
        })
    }
}

impl Module for Vgg {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        check_input(x, "VGG", self.in_channels, 32, None)?;
        let h = self.features.forward(x)?;
        let h = AdaptiveAvgPool2d::new((7, 7)).forward(&h)?.flatten(1, -1)?;
        self.classifier.forward(&h)
    }
    mlfw_nn::children!(features, classifier);
}
