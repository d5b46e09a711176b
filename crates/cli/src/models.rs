//! Models by command-line name, on top of mlfw-vision's model registry, and the input size
//! each is fed for a dataset.

use std::path::Path;

use mlfw_core::Device;
use mlfw_nn::Module;
use mlfw_vision::registry::{build_model, model_info, ModelConfig, ModelInfo, MODEL_NAMES};
use mlfw_vision::transfer;

use crate::error::{CliError, Result};

/// The canonical name of `name` (case-insensitive, `-` for `_`, `lenet` for `lenet5`), or an
/// error listing the valid names.
///
/// # Errors
/// `name` is not one of the models (the message lists them).
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
            let valid = MODEL_NAMES.join(", ");
            CliError::msg(if n.ends_with(".onnx") {
                format!(
                    "`{name}`: ONNX files run in `mlfw eval` and `mlfw predict` only; this \
                     command takes a zoo model: {valid}"
                )
            } else if mlfw_nn::lm::lm_canonical(name).is_some() {
                format!(
                    "`{name}` is a language model (for `mlfw train`, `bench` and `generate`); \
                     this command takes an image model: {valid}"
                )
            } else {
                format!("unknown model `{name}`; valid models: {valid}")
            })
        })
}

fn info(model: &str, channels: Option<usize>, num_classes: usize) -> Result<ModelInfo> {
    let cfg = ModelConfig {
        in_channels: channels,
        ..ModelConfig::new(num_classes)
    };
    Ok(model_info(model, &cfg)?)
}

/// The vision registry's metadata of `model` with `channels` input channels.
///
/// # Errors
/// `model` unknown to the vision registry, or it rejects `channels`.
pub fn model_metadata(model: &str, channels: usize) -> Result<ModelInfo> {
    info(model, Some(channels), 10)
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
///
/// `--input` is given as `C,H,W` or `C H W`.
///
/// # Errors
/// `input` given without exactly three numbers.
pub fn input_or_default(model: &str, input: Option<&[usize]>) -> Result<[usize; 3]> {
    match input {
        None => Ok(default_input(model)),
        Some(&[c, h, w]) => Ok([c, h, w]),
        Some(v) => Err(CliError::msg(format!(
            "--input takes three numbers C,H,W (e.g. 3,32,32 or 3 32 32), got {v:?}"
        ))),
    }
}

/// Builds `model` (canonical name) for `input` images and `num_classes` classes on the CPU,
/// initialised from the global generator.
///
/// # Errors
/// `model` unknown, or its constructor rejecting `input`'s channels or `num_classes`.
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
            let from = load_pretrained(m.as_ref(), model, None, num_classes, false)?;
            Ok((m, from))
        }
    }
}

/// Loads the hub's pretrained weights for `model` (the entry `spec`, default the one named
/// after the model; pulled on first use) into `m`, built for `num_classes`. Weights with another class count keep every layer
/// but the classifier head when `replace_head` (the head stays freshly initialised: fine-tuning),
/// and are an error otherwise. Returns where the weights came from, for the console.
///
/// # Errors
/// Those of the hub (not found, checksum, network); an entry of another
/// architecture; weights that do not fit; a class-count mismatch without `replace_head`.
pub fn load_pretrained(
    m: &dyn Module,
    model: &str,
    spec: Option<&str>,
    num_classes: usize,
    replace_head: bool,
) -> Result<String> {
    let opts = mlfw_hub::HubOptions::from_env();
    let w = mlfw_hub::load_weights_with(spec.unwrap_or(model), &opts, &Device::Cpu)?;
    let id = w.entry.id();
    if w.entry.architecture.model != model {
        return Err(CliError::msg(format!(
            "the hub entry `{id}` holds a {}, not a {model}",
            w.entry.architecture.model
        )));
    }
    let have = w.entry.architecture.num_classes;
    let misfit = |e: mlfw_core::Error| {
        CliError::msg(e).context(format!(
            "pretrained weights {} of `{id}` (architecture `{}`)",
            w.weights_path.display(),
            w.entry.architecture.model
        ))
    };
    if have == num_classes {
        m.load_state_dict(&w.state_dict, true).map_err(misfit)?;
        return Ok(format!("pretrained {id}"));
    }
    if !replace_head {
        return Err(CliError::msg(format!(
            "the pretrained weights `{id}` classify {have} classes, but {num_classes} are needed \
             here; a new classifier head must be trained first: mlfw train --model {model} \
             --pretrained --dataset ... --num-classes {num_classes}"
        )));
    }
    let head = transfer::head_prefix(m)?;
    transfer::load_backbone(m, &w.state_dict, &head).map_err(misfit)?;
    Ok(format!(
        "pretrained {id}, with a new {num_classes}-class head `{head}` (the weights have {have} classes)"
    ))
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
