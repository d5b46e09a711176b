//! Loading pretrained weights: from the cache, pulling first when needed.

use std::collections::HashMap;
use std::path::PathBuf;

use mlfw_core::{Device, Tensor};
use mlfw_nn::Module;
use mlfw_vision::registry::{build_model, ModelConfig, ModelInfo};

use crate::cache::{self, CachedModel};
use crate::error::Result;
use crate::index::{Entry, Preprocessing};
use crate::options::{Ctx, HubOptions};
use crate::pull::{cached_for_spec, pull_with};

/// A model's pretrained state dict with its registry metadata.
#[derive(Debug, Clone)]
pub struct Pretrained {
    /// The entry (architecture, metrics, license, ...).
    pub entry: Entry,
    /// How inputs must be prepared (also `entry.preprocessing`).
    pub preprocessing: Preprocessing,
    /// The verified weights file in the cache.
    pub weights_path: PathBuf,
    /// The state dict, PyTorch key names (`conv1.weight`, ...).
    pub state_dict: HashMap<String, Tensor>,
}

/// A pretrained model, built by the vision registry with its weights loaded (strict), in
/// evaluation mode.
pub struct Loaded {
    /// The model.
    pub model: Box<dyn Module>,
    /// The vision registry's metadata, with the entry's input shape, mean and std: pass it
    /// to `mlfw_vision::predict` helpers to preprocess images as the model was trained.
    pub info: ModelInfo,
    /// The registry entry (architecture, preprocessing, metrics, license, ...).
    pub entry: Entry,
    /// The verified weights file in the cache.
    pub weights_path: PathBuf,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("entry", &self.entry.id())
            .field("info", &self.info)
            .field("weights_path", &self.weights_path)
            .finish_non_exhaustive()
    }
}

/// [`load_with`] with [`HubOptions::from_env`] on the CPU: `mlfw_hub::load("lenet5")`.
///
/// # Errors
/// As [`load_with`].
pub fn load(spec: &str) -> Result<Loaded> {
    load_with(spec, &HubOptions::from_env(), &Device::Cpu)
}

/// Model `spec` (`NAME[@VERSION]` or a single-model registry address) on `device`, built by
/// the vision registry from the entry's architecture, its weights loaded strictly, in eval
/// mode. Pulls first when not cached (see [`load_weights_with`]).
///
/// # Errors
/// Those of [`load_weights_with`]; an architecture the zoo does not know; weights
/// that do not fit the architecture (naming the entry, the file and the keys).
pub fn load_with(spec: &str, opts: &HubOptions, device: &Device) -> Result<Loaded> {
    let w = load_weights_with(spec, opts, device)?;
    let arch = &w.entry.architecture;
    crate::arch::check(&w.entry)?;
    let cfg = ModelConfig::new(arch.num_classes)
        .in_channels(arch.in_channels())
        .device(*device);
    let (mut model, mut info) = build_model(&arch.model, &cfg)?;
    model.load_state_dict(&w.state_dict, true).map_err(|e| {
        e.context(format!(
            "weights {} of `{}` do not fit architecture `{}`",
            w.weights_path.display(),
            w.entry.id(),
            arch.model
        ))
    })?;
    model.eval();
    let c = arch.in_channels();
    let p = &w.preprocessing;
    info.num_classes = arch.num_classes;
    info.input_shape = [c, p.size[0], p.size[1]];
    info.mean = per_channel(&p.mean, c);
    info.std = per_channel(&p.std, c);
    Ok(Loaded {
        model,
        info,
        entry: w.entry,
        weights_path: w.weights_path,
    })
}

/// `v` repeated to `c` values when it holds one.
fn per_channel(v: &[f32], c: usize) -> Vec<f32> {
    if v.len() == 1 {
        vec![v[0]; c]
    } else {
        v.to_vec()
    }
}

/// [`load_weights_with`] with [`HubOptions::from_env`] on the CPU.
///
/// # Errors
/// As [`load_weights_with`].
pub fn load_weights(spec: &str) -> Result<Pretrained> {
    load_weights_with(spec, &HubOptions::from_env(), &Device::Cpu)
}

/// The state dict of `spec` (`NAME[@VERSION]` or a single-model registry address) on `device`:
/// the cached copy when there is one (re-verified by sha256), else pulled first
/// (see [`crate::pull()`]; `opts.force` always pulls).
///
/// # Errors
/// Those of [`crate::pull()`]; a cached file whose digest no longer matches; weights
/// that are not valid safetensors (naming the file).
pub fn load_weights_with(spec: &str, opts: &HubOptions, device: &Device) -> Result<Pretrained> {
    let ctx = Ctx::new(opts)?;
    let model = cached_model(spec, &ctx)?;
    let _lock = cache::lock(&ctx, &model.entry.name, &model.entry.version)?;
    model.verify()?;
    let path = model.weights_path()?;
    let file = mlfw_core::safetensors::load(&path, device)?;
    let state_dict = crate::timm::apply_key_map(&model.entry, file.into_map())?;
    Ok(Pretrained {
        preprocessing: model.entry.preprocessing.clone(),
        entry: model.entry,
        weights_path: path,
        state_dict,
    })
}

/// Loads `spec`'s pretrained weights into `model` (strict: every key must match in name and
/// shape) and returns them with the entry. For a model the caller built itself, e.g. the
/// CLI's `--model lenet5 --pretrained`. Tensors are loaded onto `device` first.
///
/// # Errors
/// Those of [`load_weights_with`]; weights that do not fit `model` (naming the
/// entry, the file and the mismatching keys).
pub fn load_into(
    model: &dyn Module,
    spec: &str,
    opts: &HubOptions,
    device: &Device,
) -> Result<Pretrained> {
    let w = load_weights_with(spec, opts, device)?;
    model.load_state_dict(&w.state_dict, true).map_err(|e| {
        e.context(format!(
            "weights {} of `{}` (architecture `{}`) do not fit this model",
            w.weights_path.display(),
            w.entry.id(),
            w.entry.architecture.model
        ))
    })?;
    Ok(w)
}

/// The cached model for `spec`, pulling it first when absent (or when forced).
fn cached_model(spec: &str, ctx: &Ctx) -> Result<CachedModel> {
    if !ctx.force {
        if let Some(m) = cached_for_spec(spec, ctx)? {
            return Ok(m);
        }
    }
    Ok(pull_with(spec, ctx)?.model)
}
