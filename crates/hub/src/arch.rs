//! Which architectures the hub can build: those of `mlfw-vision`'s model registry.

use crate::error::{Error, Result};
use crate::index::Entry;

/// Zoo architectures an entry may name (`architecture.model`): the vision registry's names.
pub const KNOWN_ARCHITECTURES: &[&str] = mlfw_vision::registry::MODEL_NAMES;

/// The zoo architectures this build knows.
pub fn known_architectures() -> Vec<String> {
    KNOWN_ARCHITECTURES.iter().map(|s| s.to_string()).collect()
}

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
