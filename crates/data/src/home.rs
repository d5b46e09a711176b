//! Where datasets live on disk: `$MLFW_HOME/datasets`, by default `~/.cache/mlfw/datasets`.

pub use mlfw_core::mlfw_home;
use std::path::PathBuf;

/// The default data root, `mlfw_home()/datasets`. Every loader also takes an explicit root.
pub fn data_root() -> PathBuf {
    mlfw_home().join("datasets")
}
