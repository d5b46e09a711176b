//! State dicts: every parameter and buffer by PyTorch key name, saved as safetensors.
//!
//! Loading copies values in place (`Tensor::assign`, converting dtype and device), so
//! optimizers that already hold the parameters see the loaded values. A missing
//! `num_batches_tracked` is accepted (torchvision's key lists omit it, and PyTorch fills it
//! in for old checkpoints); a present one is loaded.

use crate::{Module, TensorKind};
use mlfw_core::{safetensors, Device, Error, Result, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// What a non-strict load skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Keys the module has but the state dict lacks.
    pub missing: Vec<String>,
    /// Keys the state dict has but the module lacks.
    pub unexpected: Vec<String>,
}

/// Every parameter and buffer with its dotted key, in registration order.
pub fn state_dict<M: Module + ?Sized>(m: &M) -> Vec<(String, Tensor)> {
    let mut v = Vec::new();
    m.visit_tensors("", &mut |n, t, _| v.push((n.to_string(), t.clone())));
    v
}

/// How many keys an error message names before summarising the rest.
const KEYS_SHOWN: usize = 10;

/// `items` joined by commas, the first [`KEYS_SHOWN`] only, then how many more there are (a
/// ResNet's state dict has over a hundred keys: a message naming them all is unreadable).
fn first_few(items: &[String]) -> String {
    if items.len() <= KEYS_SHOWN {
        return items.join(", ");
    }
    format!(
        "{}, ... and {} more ({} in all)",
        items[..KEYS_SHOWN].join(", "),
        items.len() - KEYS_SHOWN,
        items.len()
    )
}

fn optional_key(name: &str) -> bool {
    name == "num_batches_tracked" || name.ends_with(".num_batches_tracked")
}

/// Copies `sd` into the module. Shape differences are always an error; with `strict`,
/// missing and unexpected keys are too. The error lists all three.
///
/// # Errors
/// `Error::Msg` listing every shape difference and, with `strict`, every missing and unexpected
/// key; nothing is copied then. Copy errors name the key.
pub fn load_state_dict<M: Module + ?Sized>(
    m: &M,
    sd: &HashMap<String, Tensor>,
    strict: bool,
) -> Result<LoadReport> {
    let own = state_dict(m);
    let mut report = LoadReport::default();
    let mut shapes = Vec::new();
    for (k, t) in &own {
        match sd.get(k) {
            None if optional_key(k) => {}
            None => report.missing.push(k.clone()),
            Some(s) if s.shape() != t.shape() => shapes.push(format!(
                "{k}: checkpoint {} vs model {}",
                s.shape(),
                t.shape()
            )),
            Some(_) => {}
        }
    }
    let names: std::collections::HashSet<&str> = own.iter().map(|(k, _)| k.as_str()).collect();
    let mut unexpected: Vec<String> = sd
        .keys()
        .filter(|k| !names.contains(k.as_str()))
        .cloned()
        .collect();
    unexpected.sort();
    report.unexpected = unexpected;
    if !shapes.is_empty()
        || (strict && (!report.missing.is_empty() || !report.unexpected.is_empty()))
    {
        let mut msg = String::from("load_state_dict: checkpoint does not match the model");
        if !report.missing.is_empty() {
            msg += &format!("; missing keys: {}", first_few(&report.missing));
        }
        if !report.unexpected.is_empty() {
            msg += &format!("; unexpected keys: {}", first_few(&report.unexpected));
        }
        if !shapes.is_empty() {
            msg += &format!("; shape differences: {}", first_few(&shapes));
        }
        return Err(Error::msg(msg));
    }
    for (k, t) in &own {
        if let Some(s) = sd.get(k) {
            t.assign(&s.to_dtype(t.dtype())?)
                .map_err(|e| e.context(format!("loading `{k}`")))?;
        }
    }
    Ok(report)
}

/// Writes the state dict to `path` as safetensors (atomically), with metadata `format: pt`.
///
/// # Errors
/// `Error::File` naming `path` when it cannot be written (the old file is left intact).
pub fn save<M: Module + ?Sized>(m: &M, path: impl AsRef<Path>) -> Result<()> {
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::save(path, &state_dict(m), Some(meta))
}

/// Loads a safetensors state dict from `path` into the module.
///
/// # Errors
/// `Error::File` naming `path` when it is missing or not valid safetensors; then as
/// [`load_state_dict`].
pub fn load<M: Module + ?Sized>(m: &M, path: impl AsRef<Path>, strict: bool) -> Result<LoadReport> {
    let f = safetensors::load(path.as_ref(), &Device::Cpu)?;
    load_state_dict(m, &f.into_map(), strict).map_err(|e| e.context(path.as_ref().display()))
}

/// Names of the parameters (not buffers) of a state dict made by [`state_dict`].
pub fn parameter_names<M: Module + ?Sized>(m: &M) -> Vec<String> {
    let mut v = Vec::new();
    m.visit_tensors("", &mut |n, _, k| {
        if k == TensorKind::Parameter {
            v.push(n.to_string())
        }
    });
    v
}
