//! Which architectures the hub can build (those of `mlfw-vision`'s model registry), and
//! whether a weights file fits the architecture its index entry declares.

use mlfw_core::{DType, Device, Tensor};
use mlfw_vision::registry::{build_model, ModelConfig};

use crate::error::{Error, Result};
use crate::index::Entry;

/// Zoo architectures an entry may name (`architecture.model`): the vision registry's names.
pub const KNOWN_ARCHITECTURES: &[&str] = mlfw_vision::registry::MODEL_NAMES;

/// The zoo architectures this build knows.
pub fn known_architectures() -> Vec<String> {
    KNOWN_ARCHITECTURES.iter().map(|s| s.to_string()).collect()
}

/// # Errors
/// Errors with [`Error::UnknownArchitecture`] unless the zoo can build `entry`'s architecture.
pub fn check(entry: &Entry) -> Result<()> {
    let model = entry.architecture.model.as_str();
    if KNOWN_ARCHITECTURES.contains(&model) {
        Ok(())
    } else {
        Err(Error::UnknownArchitecture {
            entry: entry.id(),
            model: model.to_string(),
            known: known_architectures(),
        })
    }
}

///
/// Errors: [`Error::Invalid`] naming the entry, the file and the field that disagrees.
///
/// # Errors
/// Errors unless the weights file at `path` fits `entry`'s metadata: the zoo builds
/// `architecture.model` for `architecture.num_classes` classes and `input_shape[0]` channels,
/// the file's tensors load into it strictly (every name and shape), and one input of
/// `architecture.input_shape` goes through it to `num_classes` outputs.
pub fn check_weights(entry: &Entry, path: &std::path::Path) -> Result<()> {
    check(entry)?;
    let arch = &entry.architecture;
    let at = |field: &str, e: &dyn std::fmt::Display| {
        Error::invalid(format!(
            "{}: the weights {} do not fit the index's `{field}` ({}): {e}",
            entry.id(),
            path.display(),
            match field {
                "architecture.input_shape" => format!("{:?}", arch.input_shape),
                _ => format!(
                    "model {}, num_classes {}, {} input channels",
                    arch.model,
                    arch.num_classes,
                    arch.in_channels()
                ),
            }
        ))
    };
    let cfg = ModelConfig::new(arch.num_classes).in_channels(arch.in_channels());
    let (mut model, _) =
        build_model(&arch.model, &cfg).map_err(|e| at("architecture.model", &e))?;
    model.eval();
    let weights = mlfw_core::safetensors::load(path, &Device::Cpu)?.into_map();
    let weights = crate::timm::apply_key_map(entry, weights)?;
    model
        .load_state_dict(&weights, true)
        .map_err(|e| at("architecture", &e))?;
    let mut shape = vec![1];
    shape.extend_from_slice(&arch.input_shape);
    let x = Tensor::zeros(shape, DType::F32, &Device::Cpu)?;
    let y = model
        .forward(&x)
        .map_err(|e| at("architecture.input_shape", &e))?;
    if y.dims() != [1, arch.num_classes] {
        return Err(at(
            "architecture.input_shape",
            &format!("the model's output has shape {:?}", y.dims()),
        ));
    }
    Ok(())
}
