//! Models by name for the command line, and the input size each expects.
//!
//! TEMP: LeNet-5 and the MLP are defined here until mlfw-vision's model registry lands in
//! main; then this file only maps command-line names onto that registry.

use mlfw_core::{Device, Pool2dParams, Result as CoreResult, Tensor};
use mlfw_nn::{Conv2d, Conv2dConfig, Linear, Module};

use crate::error::{CliError, Result};

/// Every model name `--model` accepts.
pub const MODEL_NAMES: [&str; 2] = ["lenet5", "mlp"];

/// The canonical name of `name` (`lenet` → `lenet5`, case-insensitive), or an error listing
/// the valid names.
pub fn canonical(name: &str) -> Result<&'static str> {
    let n = name.trim().to_ascii_lowercase().replace('-', "_");
    let n = match n.as_str() {
        "lenet" | "lenet_5" => "lenet5",
        other => other,
    };
    MODEL_NAMES
        .iter()
        .copied()
        .find(|&m| m == n)
        .ok_or_else(|| {
            CliError::msg(format!(
                "unknown model `{name}`; valid models: {}",
                MODEL_NAMES.join(", ")
            ))
        })
}

/// The `[C, H, W]` input `model` is fed for a dataset of images `data` (`[C, H, W]`):
/// LeNet-5 needs 28×28, ImageNet-style ResNets and VGG at least 32×32.
pub fn input_shape(model: &str, data: [usize; 3]) -> [usize; 3] {
    let [c, h, w] = data;
    match model {
        "lenet5" => [c, 28, 28],
        "resnet18" | "resnet34" | "vgg11_bn" => [c, h.max(32), w.max(32)],
        _ => [c, h, w],
    }
}

/// The input a model is usually fed (`[C, H, W]`), for benchmarks.
pub fn default_input(model: &str) -> [usize; 3] {
    match model {
        "lenet5" | "mlp" => [1, 28, 28],
        "resnet18_cifar" => [3, 32, 32],
        _ => [3, 224, 224],
    }
}

/// Builds `model` (canonical name) for `input` images and `num_classes` classes on the CPU,
/// initialised from the global generator.
pub fn build(model: &str, input: [usize; 3], num_classes: usize) -> Result<Box<dyn Module>> {
    let d = Device::Cpu;
    let [c, h, w] = input;
    Ok(match canonical(model)? {
        "lenet5" => Box::new(LeNet5 {
            conv1: Conv2d::new(c, 6, 5, Conv2dConfig::default().padding(2), &d)?,
            conv2: Conv2d::new(6, 16, 5, Conv2dConfig::default(), &d)?,
            fc1: Linear::new(400, 120, true, &d)?,
            fc2: Linear::new(120, 84, true, &d)?,
            fc3: Linear::new(84, num_classes, true, &d)?,
        }),
        _ => Box::new(Mlp {
            fc1: Linear::new(c * h * w, 256, true, &d)?,
            fc2: Linear::new(256, 128, true, &d)?,
            fc3: Linear::new(128, num_classes, true, &d)?,
        }),
    })
}

/// Builds `model` and loads `weights` (strict), or the hub's pretrained weights for the
/// model's name (pulled on first use) when `None`;
/// returns the model (on the CPU) and a description of where the weights came from.
pub fn load(
    model: &str,
    input: [usize; 3],
    num_classes: usize,
    weights: Option<&std::path::Path>,
) -> Result<(Box<dyn Module>, String)> {
    let m = build(model, input, num_classes)?;
    match weights {
        Some(path) => {
            m.load(path)?;
            Ok((m, path.display().to_string()))
        }
        None => {
            let opts = mlfw_hub::HubOptions::from_env();
            let w = mlfw_hub::load_into(m.as_ref(), model, &opts, &Device::Cpu)?;
            let from = format!("pretrained {}", w.entry.id());
            Ok((m, from))
        }
    }
}

struct LeNet5 {
    conv1: Conv2d,
    conv2: Conv2d,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Module for LeNet5 {
    fn forward(&self, x: &Tensor) -> CoreResult<Tensor> {
        let pool = Pool2dParams::new(2);
        let h = self.conv1.forward(x)?.relu()?.max_pool2d(pool)?;
        let h = self.conv2.forward(&h)?.relu()?.max_pool2d(pool)?;
        let h = self.fc1.forward(&h.flatten(1, -1)?)?.relu()?;
        self.fc3.forward(&self.fc2.forward(&h)?.relu()?)
    }
    mlfw_nn::children!(conv1, conv2, fc1, fc2, fc3);
}

struct Mlp {
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> CoreResult<Tensor> {
        let h = self.fc1.forward(&x.flatten(1, -1)?)?.relu()?;
        self.fc3.forward(&self.fc2.forward(&h)?.relu()?)
    }
    mlfw_nn::children!(fc1, fc2, fc3);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(canonical("LeNet").unwrap(), "lenet5");
        let e = canonical("alexnet").unwrap_err();
        assert!(e.message().contains("lenet5"), "{}", e.message());
    }
}
