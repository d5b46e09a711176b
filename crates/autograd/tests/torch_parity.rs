//! Every case of PyTorch's ops fixture passes forward and backward (the `torch_parity` runner).

use mlfw_core::Device;
use std::path::PathBuf;

#[test]
fn every_fixture_case_matches_pytorch() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/torch-ref/ops.safetensors");
    let results = mlfw_nn::parity::run_file(&path, &Device::Cpu).unwrap();
    assert!(results.len() >= 50, "only {} cases", results.len());
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.to_string())
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn runner_binary_reports_and_fails_on_unknown_ops() {
    // A fixture with an op the runner does not know must fail, not pass silently.
    use mlfw_core::{safetensors, Tensor};
    let dir = std::env::temp_dir().join(format!("mlfw-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("unknown.safetensors");
    let t = |v: Vec<f32>| Tensor::from_vec(v, [2], &Device::Cpu).unwrap();
    let meta = [(
        "mystery".to_string(),
        r#"{"op": "mystery", "inputs": 1, "grads": [0]}"#.to_string(),
    )]
    .into_iter()
    .collect();
    let ts = vec![
        ("mystery.in0".to_string(), t(vec![1., 2.])),
        ("mystery.out".to_string(), t(vec![1., 2.])),
        ("mystery.gout".to_string(), t(vec![1., 1.])),
        ("mystery.grad0".to_string(), t(vec![1., 1.])),
    ];
    safetensors::save(&f, &ts, Some(meta)).unwrap();
    let results = mlfw_nn::parity::run_file(&f, &Device::Cpu).unwrap();
    assert_eq!(results.len(), 1);
    assert!(!results[0].passed);
    let _ = std::fs::remove_dir_all(&dir);
}
