//! Every case of PyTorch's ops fixture passes forward and backward (the `torch_parity` runner).

use mlfw_core::{Device, Tensor};
use std::path::PathBuf;

#[test]
fn every_fixture_case_matches_pytorch() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/torch-ref/ops.safetensors");
    let results = mlfw_nn::parity::run_file(&path, &Device::Cpu).unwrap();
    assert!(results.len() >= 50, "only {} cases", results.len());
    let failed = mlfw_nn::parity::failures(&results);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn runner_binary_reports_and_fails_on_unknown_ops() {
    // A fixture with an op the runner does not know must fail, not pass silently.
    use mlfw_core::safetensors;
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

/// Runs every case of `file` (under tests/fixtures/torch-ref) on `device` and asserts all pass.
fn fixture_passes(file: &str, device: &Device) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/torch-ref")
        .join(file);
    let results = mlfw_nn::parity::run_file(&path, device).unwrap();
    assert!(!results.is_empty(), "{file}: no cases");
    let failed = mlfw_nn::parity::failures(&results);
    assert!(
        failed.is_empty(),
        "{file} on {device:?}:\n{}",
        failed.join("\n")
    );
}

#[test]
fn special_values_fixture_matches_pytorch() {
    fixture_passes("special.safetensors", &Device::Cpu);
}

#[test]
fn special_values_and_ops_fixtures_match_pytorch_on_cuda() {
    let device = match mlfw_cuda::device(0) {
        Ok(d) => d,
        Err(e) => {
            println!("skipping: CUDA not available ({e})");
            return;
        }
    };
    fixture_passes("special.safetensors", &device);
    fixture_passes("ops.safetensors", &device);
}

#[test]
fn special_values_are_compared_exactly() {
    use mlfw_nn::parity::rel_err;
    let t = |v: Vec<f32>| Tensor::from_vec(v, [3], &Device::Cpu).unwrap();
    let want = t(vec![f32::NAN, f32::INFINITY, 1.0]);
    assert_eq!(
        rel_err(&t(vec![f32::NAN, f32::INFINITY, 1.0]), &want).unwrap(),
        0.0
    );
    // A finite value, the other infinity or a NaN where PyTorch has none: infinitely wrong.
    for bad in [
        vec![0.0, f32::INFINITY, 1.0],
        vec![f32::NAN, f32::NEG_INFINITY, 1.0],
        vec![f32::NAN, 1e30, 1.0],
        vec![f32::NAN, f32::INFINITY, f32::NAN],
    ] {
        assert_eq!(
            rel_err(&t(bad.clone()), &want).unwrap(),
            f64::INFINITY,
            "{bad:?}"
        );
    }
    // Elsewhere relative to the largest finite reference value.
    let e = rel_err(&t(vec![f32::NAN, f32::INFINITY, 1.5]), &want).unwrap();
    assert!((e - 0.5).abs() < 1e-5, "{e}");
}
