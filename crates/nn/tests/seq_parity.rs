//! The sequence layers against PyTorch's numbers (`tests/fixtures/torch-seq/seq.safetensors`).

use mlfw_core::{safetensors, Device};

#[test]
fn torch_seq_fixture_passes() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/torch-seq/seq.safetensors"
    );
    let file = safetensors::load(path, &Device::Cpu).unwrap();
    let cases = mlfw_nn::seq_parity::run(&file);
    assert_eq!(cases.len(), 6);
    for c in &cases {
        assert!(c.passed(), "{c}");
    }
}
