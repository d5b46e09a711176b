//! PyTorch parity of a LeNet-5 forward/backward pass and 3 steps of five optimizers.

#[path = "../examples/common/mod.rs"]
mod common;

use mlfw_core::Device;
use std::path::PathBuf;

fn check(groups: &[&str]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/torch-ref");
    let results = common::run(&dir, &Device::Cpu).unwrap();
    assert_eq!(results.len(), 8);
    for r in &results {
        println!("{r}");
    }
    let failed: Vec<String> = results
        .iter()
        .filter(|r| groups.contains(&r.name.as_str()) && !r.passed())
        .map(|r| r.to_string())
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn lenet5_forward_backward_and_sgd_match_pytorch() {
    check(&["logits", "loss", "grads", "sgd3", "sgd_nesterov3"]);
}

/// Adam, AdamW and RMSprop are compared at `common::ADAPTIVE_TOLERANCE` (see its doc).
#[test]
fn lenet5_adaptive_optimizers_match_pytorch() {
    check(&["adam3", "adamw3", "rmsprop3"]);
}
