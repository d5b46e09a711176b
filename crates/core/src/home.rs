//! mlfw's folder for caches on disk (datasets, hub models, compiled kernels), shared by
//! every crate that keeps files there.

use std::path::PathBuf;

/// mlfw's cache folder: `$MLFW_HOME` if set, else `$HOME/.cache/mlfw` (or `%USERPROFILE%` on
/// Windows), else `.mlfw` in the current folder.
pub fn mlfw_home() -> PathBuf {
    if let Some(h) = std::env::var_os("MLFW_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".cache").join("mlfw"))
        .unwrap_or_else(|| PathBuf::from(".mlfw"))
}
