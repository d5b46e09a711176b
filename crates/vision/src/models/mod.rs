//! The model zoo: architectures on `mlfw-nn` modules with torchvision's state-dict keys, so
//! PyTorch checkpoints (converted to safetensors) load directly.
//!
//! | model | input | keys |
//! |---|---|---|
//! | [`LeNet5`] | `[N, C, 28, 28]` | `conv1`, `conv2`, `fc1`..`fc3` |
//! | [`Mlp`] | `[N, ...]` flattened to `in_features` | `fc1`..`fcK` |
//! | [`ResNet`] (18, 34, 50, CIFAR variants) | `[N, C, H, W]`, any size ≥ 32 (CIFAR: ≥ 8) | torchvision's |
//! | [`MobileNetV2`] | `[N, C, H, W]`, H, W ≥ 32 | `features.N`, `classifier.1` |
//! | [`EfficientNet`] (B0) | `[N, C, H, W]`, H, W ≥ 32 | `features.N`, `classifier.1` |
//! | [`VisionTransformer`] (B/16) | `[N, C, 224, 224]` | `conv_proj`, `class_token`, `encoder.*`, `heads.head` |
//! | [`Vgg`] (11 with BatchNorm) | `[N, C, H, W]`, H, W ≥ 32 | `features.N`, `classifier.N` |

pub mod blocks;
mod bottleneck;
mod efficientnet;
mod lenet;
mod mobilenet;
mod resnet;
mod vgg;
mod vit;

pub use bottleneck::Bottleneck;
pub use efficientnet::{EfficientNet, MbConv};
pub use lenet::{LeNet5, Mlp};
pub use mobilenet::{InvertedResidual, MobileNetV2};
pub use resnet::{BasicBlock, ResNet};
pub use vgg::Vgg;
pub use vit::{Encoder, EncoderBlock, EncoderLayers, Heads, VisionTransformer};

use mlfw_core::{Error, Result, Tensor};

/// Errors unless `x` is `[N, C, H, W]` with `C == channels` and `H, W >= min_hw`
/// (and, when given, exactly `exact_hw`).
pub(crate) fn check_input(
    x: &Tensor,
    model: &str,
    channels: usize,
    min_hw: usize,
    exact_hw: Option<(usize, usize)>,
) -> Result<()> {
    let want = match exact_hw {
        Some((h, w)) => format!("[N, {channels}, {h}, {w}]"),
        None => format!("[N, {channels}, H, W] with H, W >= {min_hw}"),
    };
    let ok = match *x.dims() {
        [_, c, h, w] => {
            c == channels
                && h >= min_hw
                && w >= min_hw
                && !matches!(exact_hw, Some(e) if e != (h, w))
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::msg(format!(
            "{model}: expected input {want}, got {}",
            x.shape()
        )))
    }
}
