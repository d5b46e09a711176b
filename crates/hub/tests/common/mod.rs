//! Test helpers: the data ring's loopback HTTP server (included by path), plus helpers to
//! write registries.
#![allow(dead_code)]

#[path = "../../../data/tests/common/server.rs"]
mod server;
#[allow(unused_imports)]
pub use server::*;

/// Deterministic test bytes.
pub fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2654435761)
                .wrapping_add(seed as u32) as u8
        })
        .collect()
}

/// Every file (not folder) under `dir`, recursively.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Real LeNet-5 weights (the built-in file).
pub fn weights() -> Vec<u8> {
    include_bytes!("../../builtin/lenet5-mnist-mini.safetensors").to_vec()
}

/// SHA-256 hex of `b`.
pub fn sha(b: &[u8]) -> String {
    mlfw_data::download::sha256_bytes(b)
}

/// An index.json with one model `name@1` (architecture `arch`) whose one file is `file`,
/// fetched from `url`, with the given digest and size.
pub fn index_json(
    name: &str,
    arch: &str,
    file: &str,
    url: &str,
    sha256: &str,
    size: usize,
) -> String {
    serde_json::json!({
        "format_version": 1,
        "models": [{
            "name": name,
            "version": "1",
            "architecture": {"model": arch, "num_classes": 10, "input_shape": [1, 28, 28]},
            "preprocessing": {"size": [28, 28], "mean": [0.1307], "std": [0.3081]},
            "files": [{"name": file, "url": url, "sha256": sha256, "size": size}],
            "metrics": [{"dataset": "mnist-mini", "split": "test", "accuracy": 0.969}],
            "license": "MIT",
            "train_command": "mlfw train --model lenet5 --dataset mnist-mini"
        }]
    })
    .to_string()
}

/// Quiet, quick-retrying options with `home` as mlfw's home.
pub fn opts(home: &std::path::Path) -> mlfw_hub::HubOptions {
    let mut o = mlfw_hub::HubOptions::default()
        .home(home)
        .progress(mlfw_hub::Progress::Quiet);
    o.retries = 2;
    o.retry_delay = std::time::Duration::from_millis(10);
    o.timeout = std::time::Duration::from_secs(10);
    o
}

/// [`index_json`] for model `m` (LeNet-5) whose file `m.safetensors` holds `w`, declared as
/// `size` bytes.
pub fn lenet_index(w: &[u8], size: usize) -> String {
    index_json(
        "m",
        "lenet5",
        "m.safetensors",
        "m.safetensors",
        &sha(w),
        size,
    )
}
