//! `--model path/to/model.onnx` for `mlfw eval` and `mlfw predict`: an ONNX file stands in
//! for a zoo architecture plus its weights.

use std::path::Path;

use mlfw_core::Device;
use mlfw_hub::onnx::{Dim, OnnxModel};
use mlfw_nn::Module;
use mlfw_vision::registry::ModelInfo;

use crate::data::DataSpec;
use crate::error::{CliError, Result};

/// True when `model` names an ONNX file rather than a zoo architecture.
pub fn is_onnx(model: &str) -> bool {
    model.to_ascii_lowercase().ends_with(".onnx")
}

/// Resolves `--model`: `"onnx"` for an ONNX file, else the zoo model's canonical name, which
/// then needs `--weights` or `--pretrained`.
///
/// # Errors
/// An unknown zoo model; a zoo model given neither weights nor `--pretrained`; an
/// ONNX file given either.
pub fn resolve(model: &str, weights: bool, pretrained: bool) -> Result<&'static str> {
    if is_onnx(model) {
        if weights || pretrained {
            return Err(CliError::msg(format!(
                "{model} holds its own weights: --weights and --pretrained do not apply to an .onnx model"
            ))
            .with_code(2));
        }
        return Ok("onnx");
    }
    if !weights && !pretrained {
        return Err(CliError::msg(
            "the following required arguments were not provided: --weights <WEIGHTS> (or --pretrained; not needed when --model is an .onnx file)",
        )
        .with_code(2));
    }
    crate::models::canonical(model)
}

/// Loads the ONNX model at `path` (on the CPU) and sets `spec.input` to the `[C, H, W]` the
/// file declares for its input (dims the file leaves symbolic keep the dataset's size).
/// Returns the model and a description of where it came from.
///
/// # Errors
/// The file failing to load (see [`OnnxModel::load`]); a model without exactly
/// one 4-D (NCHW) image input; a declared channel count that differs from the dataset's.
pub fn load(path: &str, spec: &mut DataSpec) -> Result<(Box<dyn Module>, String)> {
    let m = OnnxModel::load(Path::new(path), &Device::Cpu)?;
    let [input] = m.inputs() else {
        return Err(CliError::msg(format!(
            "{path}: an image model needs exactly one input, the file has {}",
            m.inputs().len()
        )));
    };
    if !input.dims.is_empty() && input.dims.len() != 4 {
        return Err(CliError::msg(format!(
            "{path}: input `{}` has {} dims; an image model takes [N, C, H, W]",
            input.name,
            input.dims.len()
        )));
    }
    for (k, d) in input.dims.iter().skip(1).enumerate() {
        if let Dim::Fixed(n) = d {
            if k == 0 && *n != spec.input[0] {
                return Err(CliError::msg(format!(
                    "{path}: the model takes {n} channels, dataset `{}` has {}",
                    spec.name, spec.input[0]
                )));
            }
            spec.input[k] = *n;
        }
    }
    Ok((Box::new(m), format!("onnx {path}")))
}

/// The model `eval`/`predict` run: the ONNX file `model_arg` (setting `spec.input` from it),
/// or zoo model `name` with `weights` (or the hub's pretrained ones). Returns the model (on
/// the CPU) and where it came from.
///
/// # Errors
/// As [`load`] and [`crate::models::load`].
pub fn load_any(
    model_arg: &str,
    name: &str,
    spec: &mut DataSpec,
    weights: Option<&Path>,
) -> Result<(Box<dyn Module>, String)> {
    if is_onnx(model_arg) {
        load(model_arg, spec)
    } else {
        crate::models::load(name, spec.input, spec.info.num_classes, weights)
    }
}

/// Predict metadata for an ONNX model fed `spec`'s images.
pub fn predict_info(spec: &DataSpec) -> ModelInfo {
    ModelInfo {
        name: "onnx",
        num_classes: spec.info.num_classes,
        input_shape: spec.input,
        mean: spec.info.mean.clone(),
        std: spec.info.std.clone(),
        any_size: false,
        min_size: 1,
        center_crop: false,
    }
}
