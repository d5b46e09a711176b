//! Every PyTorch reference case of `tests/fixtures/torch-ref/ops.safetensors` and
//! `special.safetensors` (NaN, ±inf, ties, singular points) on the CPU, and on CUDA when one is
//! present (skipped with a notice otherwise); the runner itself (unknown ops fail, special values
//! compared exactly).

use mlfw_core::Device;
use std::path::PathBuf;

#[test]
fn torch_ops_fixture_passes_on_cpu() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/torch-ref/ops.safetensors");
    let results = mlfw_nn::parity::run_file(&path, &Device::Cpu).unwrap();
    assert!(results.len() >= 50, "only {} cases", results.len());
    let failed = mlfw_nn::parity::failures(&results);
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

/// One hand-written case: metadata JSON and its tensors (f32 unless `.indices`).
type Case = (
    &'static str,
    &'static str,
    Vec<(&'static str, Vec<usize>, Vec<f32>)>,
);

#[test]
fn runner_knows_other_ops_and_values_of_the_special_kinds() {
    use mlfw_core::{safetensors, Tensor};
    use std::collections::HashMap;
    const NAN: f32 = f32::NAN;
    let d = Device::Cpu;
    // Values are PyTorch's by its documented rules (ties, NaN, singular points).
    let cases: Vec<Case> = vec![
        (
            "amin_ties",
            r#"{"op": "amin", "dims": [1], "keepdim": true, "inputs": 1, "grads": [0]}"#,
            vec![
                ("in0", vec![2, 3], vec![2., 1., 1., 0., 5., 0.]),
                ("out", vec![2, 1], vec![1., 0.]),
                ("gout", vec![2, 1], vec![1., 2.]),
                ("grad0", vec![2, 3], vec![0., 0.5, 0.5, 1., 0., 1.]),
            ],
        ),
        (
            "min_dim0",
            r#"{"op": "min", "dim": 0, "keepdim": false, "inputs": 1, "grads": [0]}"#,
            vec![
                ("in0", vec![2, 2], vec![3., 1., 3., 0.]),
                ("out", vec![2], vec![3., 0.]),
                ("gout", vec![2], vec![1., 1.]),
                ("grad0", vec![2, 2], vec![1., 0., 0., 1.]),
            ],
        ),
        (
            "clamp_max_only",
            r#"{"op": "clamp", "min": null, "max": 0.5, "inputs": 1, "grads": [0]}"#,
            vec![
                ("in0", vec![4], vec![NAN, 1., -2., 0.5]),
                ("out", vec![4], vec![NAN, 0.5, -2., 0.5]),
                ("gout", vec![4], vec![1., 1., 1., 1.]),
                ("grad0", vec![4], vec![0., 0., 1., 1.]),
            ],
        ),
        (
            "hardtanh",
            r#"{"op": "hardtanh", "inputs": 1, "grads": [0]}"#,
            vec![
                ("in0", vec![3], vec![-2., 0.5, NAN]),
                ("out", vec![3], vec![-1., 0.5, NAN]),
                ("gout", vec![3], vec![1., 1., 1.]),
                ("grad0", vec![3], vec![0., 1., 0.]),
            ],
        ),
        (
            "std_rows",
            r#"{"op": "std", "dims": [1], "unbiased": false, "keepdim": true, "inputs": 1, "grads": [0]}"#,
            vec![
                ("in0", vec![2, 2], vec![1., 3., 2., 2.]),
                ("out", vec![2, 1], vec![1., 0.]),
                ("gout", vec![2, 1], vec![1., 1.]),
                ("grad0", vec![2, 2], vec![-0.5, 0.5, 0., 0.]),
            ],
        ),
        (
            "norm_zero",
            r#"{"op": "norm", "dims": null, "inputs": 1, "grads": [0]}"#,
            vec![
                ("in0", vec![2], vec![0., 0.]),
                ("out", vec![], vec![0.]),
                ("gout", vec![], vec![1.]),
                ("grad0", vec![2], vec![0., 0.]),
            ],
        ),
        (
            "bce_none",
            r#"{"op": "binary_cross_entropy", "reduction": "none", "inputs": 2, "grads": [0]}"#,
            vec![
                ("in0", vec![2], vec![0.5, 1.]),
                ("in1", vec![2], vec![0., 1.]),
                ("out", vec![2], vec![std::f32::consts::LN_2, 0.]),
                ("gout", vec![2], vec![1., 1.]),
                ("grad0", vec![2], vec![2., 0.]),
            ],
        ),
        (
            "embedding_2d",
            r#"{"op": "embedding", "padding_idx": null, "inputs": 1, "grads": [0]}"#,
            vec![
                ("in0", vec![2, 2], vec![1., 2., 3., 4.]),
                ("out", vec![2, 2, 2], vec![3., 4., 3., 4., 1., 2., 3., 4.]),
                ("gout", vec![2, 2, 2], vec![1.; 8]),
                ("grad0", vec![2, 2], vec![1., 1., 3., 3.]),
            ],
        ),
        (
            "maximum_nan",
            r#"{"op": "maximum", "elementwise": true, "inputs": 2, "grads": [0, 1]}"#,
            vec![
                ("in0", vec![3], vec![NAN, 1., 2.]),
                ("in1", vec![3], vec![0., NAN, 2.]),
                ("out", vec![3], vec![NAN, NAN, 2.]),
                ("gout", vec![3], vec![1., 1., 1.]),
                ("grad0", vec![3], vec![1., 1., 0.5]),
                ("grad1", vec![3], vec![1., 1., 0.5]),
            ],
        ),
    ];
    let mut tensors = vec![];
    let mut meta = HashMap::new();
    for (name, m, ts) in &cases {
        meta.insert(name.to_string(), m.to_string());
        for (k, shape, v) in ts {
            let t = Tensor::from_vec(v.clone(), shape.clone(), &d).unwrap();
            tensors.push((format!("{name}.{k}"), t));
        }
    }
    let ids = Tensor::from_vec(vec![1i64, 1, 0, 1], [2, 2], &d).unwrap();
    tensors.push(("embedding_2d.indices".to_string(), ids));
    let bytes = safetensors::to_bytes(&tensors, Some(meta)).unwrap();
    let f = safetensors::load_bytes(&bytes, "mem", &d).unwrap();
    let results = mlfw_nn::parity::run(&f, &d).unwrap();
    assert_eq!(results.len(), cases.len());
    let failed = mlfw_nn::parity::failures(&results);
    assert!(failed.is_empty(), "{}", failed.join("\n"));
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
    use mlfw_core::Tensor;
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
