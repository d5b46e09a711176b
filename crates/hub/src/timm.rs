//! timm releases on Hugging Face (`hf://timm/<arch>.<tag>`): their `config.json` (timm's
//! format: `architecture`, `num_classes`, `pretrained_cfg` with `input_size`, `mean`, `std`)
//! becomes an entry with `key_map: "timm"`, and their `model.safetensors` is renamed to the
//! zoo's (torchvision's) keys on load. The file's sha256 and size come from the Hub API, as
//! for any Hugging Face repo without an mlfw `index.json`.

use std::collections::HashMap;

use mlfw_core::Tensor;
use mlfw_vision::timm_keys;

use crate::error::{Error, Result};
use crate::index::{Architecture, Entry, Preprocessing};

/// The entry described by a timm `config.json` (`None` when `text` is not one), named
/// `name` at `version`.
///
/// # Errors
/// Naming `origin` and the field: a timm architecture the zoo cannot map, missing `pretrained_cfg`
/// fields.
pub fn entry_from_config(
    text: &str,
    origin: &str,
    name: &str,
    version: &str,
) -> Result<Option<Entry>> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return Ok(None);
    };
    let (Some(arch), Some(cfg)) = (
        v.get("architecture").and_then(|a| a.as_str()),
        v.get("pretrained_cfg"),
    ) else {
        return Ok(None);
    };
    let model = timm_keys::zoo_name(arch).ok_or_else(|| {
        Error::index(
            origin,
            "architecture",
            format!(
                "timm architecture `{arch}` has no mlfw counterpart (mapped: resnet18, \
                 resnet34, resnet50, mobilenetv2_100, efficientnet_b0, vit_base_patch16_224)"
            ),
        )
    })?;
    let nums = |field: &str| -> Result<Vec<f64>> {
        cfg.get(field)
            .and_then(|a| a.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .ok_or_else(|| Error::index(origin, format!("pretrained_cfg.{field}"), "missing"))
    };
    let input_shape: Vec<usize> = nums("input_size")?.iter().map(|&x| x as usize).collect();
    let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let num_classes =
        v.get("num_classes")
            .or_else(|| cfg.get("num_classes"))
            .and_then(|n| n.as_u64())
            .ok_or_else(|| Error::index(origin, "num_classes", "missing"))? as usize;
    let tag = cfg.get("tag").and_then(|t| t.as_str()).unwrap_or("");
    let license = v
        .get("license")
        .and_then(|l| l.as_str())
        .unwrap_or("see the model card");
    Ok(Some(Entry {
        name: name.to_string(),
        version: version.to_string(),
        description: format!("timm {arch}.{tag} (ImageNet weights, renamed to torchvision's keys)"),
        architecture: Architecture {
            model: model.to_string(),
            num_classes,
            input_shape: input_shape.clone(),
        },
        preprocessing: Preprocessing {
            size: input_shape.iter().skip(1).copied().collect(),
            mean: f32s(nums("mean")?),
            std: f32s(nums("std")?),
        },
        files: Vec::new(),
        metrics: Vec::new(),
        license: license.to_string(),
        trained_by: Some("pytorch".into()),
        train_command: None,
        key_map: Some("timm".into()),
    }))
}

/// `sd` with the entry's key map applied (unchanged without one).
///
/// # Errors
/// A timm key without a zoo counterpart (naming it and the entry).
pub fn apply_key_map(
    entry: &Entry,
    sd: HashMap<String, Tensor>,
) -> Result<HashMap<String, Tensor>> {
    match entry.key_map.as_deref() {
        Some("timm") => timm_keys::to_torchvision(&entry.architecture.model, sd)
            .map_err(|e| Error::invalid(format!("{}: {e}", entry.id()))),
        _ => Ok(sd),
    }
}
