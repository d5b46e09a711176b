//! PyTorch parity of a LeNet-5 forward/backward pass and 3 steps of five optimizers.

#[path = "../examples/common/mod.rs"]
mod common;

use mlfw_core::Device;
use std::path::PathBuf;

#[test]
fn lenet5_trace_matches_pytorch_on_cpu() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/torch-ref");
    let results = common::run(&dir, &Device::Cpu).unwrap();
    for r in &results {
        println!("{r}");
    }
    assert_eq!(results.len(), 8);
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed())
        .map(|r| r.to_string())
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
