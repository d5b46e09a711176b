//! `load`: a model built by the vision registry with its pretrained weights.

mod common;

use common::{index_json, opts, sha, weights};
use mlfw_core::Device;
use mlfw_data::Dataset;
use mlfw_hub::load_with;

#[test]
fn builtin_lenet5_classifies_mnist_mini_offline() {
    let home = tempfile::tempdir().unwrap();
    let loaded = load_with("lenet5", &opts(home.path()).offline(true), &Device::Cpu).unwrap();
    assert_eq!(loaded.info.input_shape, [1, 28, 28]);
    assert_eq!(loaded.info.mean, vec![0.1307]);

    let test = mlfw_data::MnistMini::new(false).unwrap();
    let idx: Vec<usize> = (0..test.len()).collect();
    let batch = test.get_batch(&idx, &vec![0; idx.len()]).unwrap();
    let (m, s) = (loaded.info.mean[0] as f64, loaded.info.std[0] as f64);
    let x = batch.images.affine(1.0 / s, -m / s).unwrap();
    let pred = loaded
        .model
        .forward(&x)
        .unwrap()
        .argmax(1, false)
        .unwrap()
        .to_vec::<i64>()
        .unwrap();
    let labels = batch.labels.to_vec::<i64>().unwrap();
    let acc = pred.iter().zip(&labels).filter(|(a, b)| a == b).count() as f64 / labels.len() as f64;
    let listed = loaded.entry.best_metric().unwrap().accuracy;
    assert!(
        (acc - listed).abs() < 0.0015,
        "accuracy {acc}, index says {listed}"
    );
}

#[test]
fn weights_that_do_not_fit_are_a_clear_error() {
    let w = weights();
    let reg = tempfile::tempdir().unwrap();
    std::fs::write(reg.path().join("w.safetensors"), &w).unwrap();
    // LeNet-5 weights listed as a 5-class LeNet-5.
    let index = index_json(
        "five",
        "lenet5",
        "w.safetensors",
        "w.safetensors",
        &sha(&w),
        w.len(),
    )
    .replace("\"num_classes\":10", "\"num_classes\":5");
    std::fs::write(reg.path().join("index.json"), index).unwrap();
    let home = tempfile::tempdir().unwrap();
    let o = opts(home.path()).registry(reg.path().display().to_string());
    let msg = load_with("five", &o, &Device::Cpu).unwrap_err().to_string();
    assert!(msg.contains("five@1") && msg.contains("fc3"), "{msg}");
}
