//! Bounded mutation fuzzing of the safetensors reader: every mutated file ends in `Ok` or a
//! clean error, never a panic or an abort, and never an allocation beyond the file's bytes.

#[path = "../../../tests/common/fuzz.rs"]
mod fuzz;

use std::collections::HashMap;

use mlfw_core::{safetensors, DType, Device, Tensor};

#[test]
fn fuzz_safetensors() {
    let d = Device::Cpu;
    let tensors = vec![
        (
            "conv1.weight".to_string(),
            Tensor::from_vec((0..24).map(|i| i as f32).collect::<Vec<_>>(), [2, 3, 4], &d).unwrap(),
        ),
        (
            "steps".to_string(),
            Tensor::from_vec(vec![1i64, 2, 3], [3], &d).unwrap(),
        ),
        (
            "half".to_string(),
            Tensor::zeros([2, 2], DType::F16, &d).unwrap(),
        ),
    ];
    let meta = HashMap::from([("mlfw.checkpoint".to_string(), "{\"epoch\": 1}".to_string())]);
    let seeds = vec![
        safetensors::to_bytes(&tensors, Some(meta)).unwrap(),
        safetensors::to_bytes(&tensors[1..2], None).unwrap(),
    ];
    let r = fuzz::fuzz("safetensors", &seeds, 1000, 5, |b| {
        safetensors::load_bytes(b, "fuzz.safetensors", &d).map(|_| ())
    });
    assert_eq!(r.panics, 0, "{r:?}");
    assert!(r.ok > 0 && r.clean_errors > 0, "{r:?}");
}
