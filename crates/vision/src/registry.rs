//! Building models by name (for the CLI and the hub), with what each expects as input.

use crate::models::{EfficientNet, LeNet5, Mlp, MobileNetV2, ResNet, Vgg, VisionTransformer};
use mlfw_core::{Device, Error, Result};
use mlfw_nn::Module;

/// Every name [`build_model`] accepts.
pub const MODEL_NAMES: &[&str] = &[
    "lenet5",
    "mlp",
    "resnet18",
    "resnet18_cifar",
    "resnet34",
    "resnet34_cifar",
    "resnet50",
    "vgg11_bn",
    "mobilenet_v2",
    "efficientnet_b0",
    "vit_b_16",
];

const MNIST_MEAN: f32 = 0.1307;
const MNIST_STD: f32 = 0.3081;
const CIFAR_MEAN: [f32; 3] = [0.4914, 0.4822, 0.4465];
const CIFAR_STD: [f32; 3] = [0.2470, 0.2435, 0.2616];
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// What a model expects: input shape and normalization, and how to preprocess images.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// Registry name.
    pub name: &'static str,
    /// Number of output classes.
    pub num_classes: usize,
    /// Expected input `[C, H, W]` (ResNet/VGG accept other sizes too; this is the default).
    pub input_shape: [usize; 3],
    /// Per-channel mean for `Normalize` (of `[0, 1]` pixels).
    pub mean: Vec<f32>,
    /// Per-channel std for `Normalize`.
    pub std: Vec<f32>,
    /// Whether any input size (at least `min_size`) works, or exactly `input_shape`'s.
    pub any_size: bool,
    /// The smallest height/width the model takes.
    pub min_size: usize,
    /// Predict preprocessing: resize the shorter side to `size / 0.875` then centre-crop
    /// (ImageNet recipe) instead of resizing straight to `input_shape`.
    pub center_crop: bool,
}

/// Options for [`build_model`].
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Number of classes (default 10).
    pub num_classes: usize,
    /// Input channels (default: the model's usual, 1 for LeNet/MLP, 3 otherwise).
    pub in_channels: Option<usize>,
    /// Where parameters live (default CPU).
    pub device: Device,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            num_classes: 10,
            in_channels: None,
            device: Device::Cpu,
        }
    }
}

impl ModelConfig {
    /// Defaults with `num_classes`.
    pub fn new(num_classes: usize) -> Self {
        ModelConfig {
            num_classes,
            ..Default::default()
        }
    }

    /// Sets the input channels.
    pub fn in_channels(mut self, c: usize) -> Self {
        self.in_channels = Some(c);
        self
    }

    /// Sets the device.
    pub fn device(mut self, d: Device) -> Self {
        self.device = d;
        self
    }
}

/// `stats` if it has `c` values, else its average repeated `c` times.
fn per_channel(stats: &[f32], c: usize) -> Vec<f32> {
    if stats.len() == c {
        stats.to_vec()
    } else {
        vec![stats.iter().sum::<f32>() / stats.len() as f32; c]
    }
}

fn unknown(name: &str) -> Error {
    Error::msg(format!(
        "unknown model `{name}`; valid names: {}",
        MODEL_NAMES.join(", ")
    ))
}

/// The metadata of model `name` under `cfg`, without building it.
///
/// # Errors
/// `Error::Msg` listing the valid names for an unknown `name`, or when `num_classes` or
/// `in_channels` is 0.
pub fn model_info(name: &str, cfg: &ModelConfig) -> Result<ModelInfo> {
    let key = MODEL_NAMES
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .ok_or_else(|| unknown(name))?;
    let (c0, hw, mean, std, any, min, crop): (usize, usize, &[f32], &[f32], bool, usize, bool) =
        match *key {
            "lenet5" | "mlp" => (1, 28, &[MNIST_MEAN], &[MNIST_STD], false, 28, false),
            "resnet18_cifar" | "resnet34_cifar" => (3, 32, &CIFAR_MEAN, &CIFAR_STD, true, 8, false),
            "resnet18" | "resnet34" => (3, 224, &IMAGENET_MEAN, &IMAGENET_STD, true, 32, true),
            // Position embeddings for 14×14 patches: exactly 224×224.
            "vit_b_16" => (3, 224, &IMAGENET_MEAN, &IMAGENET_STD, false, 224, true),
            _ => (3, 224, &IMAGENET_MEAN, &IMAGENET_STD, true, 32, true),
        };
    let c = cfg.in_channels.unwrap_or(c0);
    if c == 0 || cfg.num_classes == 0 {
        return Err(Error::msg(format!(
            "{key}: num_classes ({}) and in_channels ({c}) must be positive",
            cfg.num_classes
        )));
    }
    Ok(ModelInfo {
        name: key,
        num_classes: cfg.num_classes,
        input_shape: [c, hw, hw],
        mean: per_channel(mean, c),
        std: per_channel(std, c),
        any_size: any,
        min_size: min,
        center_crop: crop,
    })
}

/// Builds model `name` (one of [`MODEL_NAMES`], case-insensitive) freshly initialised, in
/// training mode, with its metadata.
///
/// # Errors
/// Unknown name (listing the valid ones), zero classes or channels.
pub fn build_model(name: &str, cfg: &ModelConfig) -> Result<(Box<dyn Module>, ModelInfo)> {
    let info = model_info(name, cfg)?;
    let (k, c, d) = (cfg.num_classes, info.input_shape[0], &cfg.device);
    let model: Box<dyn Module> = match info.name {
        "lenet5" => Box::new(LeNet5::new(k, c, d)?),
        "mlp" => Box::new(Mlp::new(c * 28 * 28, &[256, 128], k, d)?),
        "resnet18" => Box::new(ResNet::resnet18(k, c, d)?),
        "resnet34" => Box::new(ResNet::resnet34(k, c, d)?),
        "resnet18_cifar" => Box::new(ResNet::resnet18_cifar(k, c, d)?),
        "resnet34_cifar" => Box::new(ResNet::resnet34_cifar(k, c, d)?),
        "resnet50" => Box::new(ResNet::resnet50(k, c, d)?),
        "vgg11_bn" => Box::new(Vgg::vgg11_bn(k, c, d)?),
        "mobilenet_v2" => Box::new(MobileNetV2::new(k, c, d)?),
        "efficientnet_b0" => Box::new(EfficientNet::b0(k, c, d)?),
        "vit_b_16" => Box::new(VisionTransformer::vit_b_16(k, c, d)?),
        other => return Err(unknown(other)),
    };
    Ok((model, info))
}
