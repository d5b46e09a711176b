//! Models by command-line name, on top of mlfw-vision's model registry, and the input size
//! each is fed for a dataset.

use std::path::Path;

use mlfw_core::Device;
use mlfw_nn::Module;
use mlfw_vision::registry::{build_model, model_info, ModelConfig, ModelInfo, MODEL_NAMES};

use crate::error::{CliError, Result};

/// The canonical name of `name` (case-insensitive, `-` for `_`, `lenet` for `lenet5`), or an
/// error listing the valid names.
pub fn canonical(name: &str) -> Result<&'static str> {
    let n = name.trim().to_ascii_lowercase().replace('-', "_");
    let n = match n.as_str() {
        "lenet" | "lenet_5" => "lenet5",
        "vgg11" => "vgg11_bn",
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

fn info(model: &str, channels: Option<usize>, num_classes: usize) -> Result<ModelInfo> {
    let cfg = ModelConfig {
        in_channels: channels,
        ..ModelConfig::new(num_classes)
    };
    Ok(model_info(model, &cfg)?)
}

/// The `[C, H, W]` input `model` is fed for dataset images of shape `data`: the dataset's own
/// size where the model takes any size (at least its minimum), else the model's fixed size
/// (LeNet-5 and the MLP: 28×28).
pub fn input_shape(model: &str, data: [usize; 3]) -> [usize; 3] {
    let [c, h, w] = data;
    match info(model, Some(c), 10) {
        Ok(i) if i.any_size => [c, h.max(i.min_size), w.max(i.min_size)],
        Ok(i) => [c, i.input_shape[1], i.input_shape[2]],
        Err(_) => data,
    }
}

/// The input a model is usually fed (`[C, H, W]`: 1×28×28 for LeNet-5 and the MLP, 3×32×32
/// for the CIFAR ResNets, 3×224×224 otherwise), for benchmarks.
pub fn default_input(model: &str) -> [usize; 3] {
    info(model, None, 10).map_or([1, 28, 28], |i| i.input_shape)
}

/// The `[C, H, W]` given as `--input`, or the model's usual input.
pub fn input_or_default(model: &str, input: Option<&[usize]>) -> [usize; 3] {
    match input {
        Some(&[c, h, w]) => [c, h, w],
        _ => default_input(model),
    }
}

/// Builds `model` (canonical name) for `input` images and `num_classes` classes on the CPU,
/// initialised from the global generator.
pub fn build(model: &str, input: [usize; 3], num_classes: usize) -> Result<Box<dyn Module>> {
    let cfg = ModelConfig::new(num_classes).in_channels(input[0]);
    Ok(build_model(model, &cfg)?.0)
}

/// Builds `model` and loads `weights` (strict), or the hub's pretrained weights for the
/// model's name (pulled on first use) when `None`; returns the model (on the CPU) and where
/// the weights came from.
pub fn load(
    model: &str,
    input: [usize; 3],
    num_classes: usize,
    weights: Option<&Path>,
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

/// The vision registry's metadata of `model` for `input` images, normalized with `mean`/`std`
/// (for the predict helper).
pub fn predict_info(
    model: &str,
    input: [usize; 3],
    num_classes: usize,
    mean: &[f32],
    std: &[f32],
) -> Result<ModelInfo> {
    let mut i = info(model, Some(input[0]), num_classes)?;
    i.input_shape = input;
    i.mean = mean.to_vec();
    i.std = std.to_vec();
    Ok(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_inputs() {
        assert_eq!(canonical("LeNet").unwrap(), "lenet5");
        assert_eq!(canonical("resnet18-cifar").unwrap(), "resnet18_cifar");
        let e = canonical("alexnet").unwrap_err();
        assert!(
            e.message().contains("lenet5, mlp, resnet18"),
            "{}",
            e.message()
        );
        assert_eq!(input_shape("lenet5", [3, 32, 32]), [3, 28, 28]);
        assert_eq!(input_shape("resnet18", [1, 28, 28]), [1, 32, 32]);
        assert_eq!(input_shape("resnet18_cifar", [3, 32, 32]), [3, 32, 32]);
        assert_eq!(default_input("lenet5"), [1, 28, 28]);
    }
}
