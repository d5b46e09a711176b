//! The seam to the vision ring's model registry: which architectures exist.
//!
//! Until `mlfw-vision`'s registry lands this lists the zoo names the vision engineer
//! announced; afterwards it asks the registry itself.

use crate::error::{Error, Result};
use crate::index::Entry;

/// Zoo architectures an entry may name (`architecture.model`).
pub const KNOWN_ARCHITECTURES: &[&str] = &[
    "lenet5",
    "mlp",
    "resnet18",
    "resnet34",
    "resnet18_cifar",
    "resnet34_cifar",
    "vgg11_bn",
];

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
