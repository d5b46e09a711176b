//! Loading pretrained weights: from the cache, pulling first when needed.

use std::collections::HashMap;
use std::path::PathBuf;

use mlfw_core::{Device, Tensor};

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

/// [`load_weights_with`] with [`HubOptions::from_env`] on the CPU.
pub fn load_weights(spec: &str) -> Result<Pretrained> {
    load_weights_with(spec, &HubOptions::from_env(), &Device::Cpu)
}

/// The state dict of `spec` (`NAME[@VERSION]` or a single-model registry address) on `device`:
/// the cached copy when there is one (re-verified by sha256), else pulled first
/// (see [`crate::pull`]; `opts.force` always pulls).
///
/// Errors: those of [`crate::pull`]; a cached file whose digest no longer matches; weights
/// that are not valid safetensors (naming the file).
pub fn load_weights_with(spec: &str, opts: &HubOptions, device: &Device) -> Result<Pretrained> {
    let ctx = Ctx::new(opts)?;
    let model = cached_model(spec, &ctx)?;
    let _lock = cache::lock(&ctx, &model.entry.name, &model.entry.version)?;
    model.verify()?;
    let path = model.weights_path()?;
    let file = mlfw_core::safetensors::load(&path, device)?;
    Ok(Pretrained {
        preprocessing: model.entry.preprocessing.clone(),
        entry: model.entry,
        weights_path: path,
        state_dict: file.into_map(),
    })
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
