//! Every PyTorch reference case of `tests/fixtures/torch-ref/ops.safetensors` on the CPU.

use mlfw_core::Device;
use std::path::PathBuf;

#[test]
fn torch_ops_fixture_passes_on_cpu() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/torch-ref/ops.safetensors");
    let results = mlfw_nn::parity::run_file(&path, &Device::Cpu).unwrap();
    assert!(results.len() >= 50, "only {} cases", results.len());
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| r.to_string())
        .collect();
    for r in &results {
        println!("{r}");
    }
    assert!(failed.is_empty(), "failed cases:\n{}", failed.join("\n"));
}

#[test]
fn unknown_op_fails_the_case() {
    use mlfw_core::{safetensors, Tensor};
    use std::collections::HashMap;
    let d = Device::Cpu;
    let t = Tensor::from_vec(vec![1f32, 2.], [2], &d).unwrap();
    let tensors = vec![
        ("x.in0".to_string(), t.clone()),
        ("x.out".to_string(), t.clone()),
        ("x.gout".to_string(), t),
    ];
    let meta = HashMap::from([(
        "x".to_string(),
        r#"{"op": "frobnicate", "inputs": 1, "grads": [0]}"#.to_string(),
    )]);
    let bytes = safetensors::to_bytes(&tensors, Some(meta)).unwrap();
    let f = safetensors::load_bytes(&bytes, "mem", &d).unwrap();
    let r = mlfw_nn::parity::run(&f, &d).unwrap();
    assert_eq!(r.len(), 1);
    assert!(!r[0].passed);
    assert!(
        r[0].error.as_deref().unwrap().contains("unknown op"),
        "{}",
        r[0]
    );
    assert!(r[0].to_string().contains("FAIL"));
}
