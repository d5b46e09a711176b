//! Building generated CUDA source for the host, to test kernels' logic without a GPU: g++
//! with `device/cuda_shim.h` (CUDA's built-ins for one host thread), `-ffp-contract=off` so
//! `a * b + c` rounds as the kernels compiled with `--fmad=false` do. For tests only.

use std::path::Path;
use std::process::{Command, Output};

/// Compiles the C++ file `cu` (a CUDA module with the shim included) into the shared library
/// `so`. Returns g++'s output (check `status`; its stderr says why on failure).
///
/// # Errors
/// g++ cannot be started (not installed): callers skip their test with a notice.
#[doc(hidden)]
pub fn compile_shared(cu: &Path, so: &Path) -> std::io::Result<Output> {
    let shim = concat!(env!("CARGO_MANIFEST_DIR"), "/device/cuda_shim.h");
    Command::new("g++")
        .args([
            "-std=c++17",
            "-O1",
            "-shared",
            "-fPIC",
            "-ffp-contract=off",
            "-include",
            shim,
        ])
        .arg(cu)
        .arg("-o")
        .arg(so)
        .output()
}
