//! The sequence layers against PyTorch's numbers (`tests/fixtures/torch-seq/seq.safetensors`).

use mlfw_core::{safetensors, Device};

fn check(name: &str, n: usize) {
    let path = format!(
        "{}/../../tests/fixtures/torch-seq/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let file = safetensors::load(&path, &Device::Cpu).unwrap();
    let cases = mlfw_nn::seq_parity::run(&file);
    assert_eq!(cases.len(), n);
    for c in &cases {
        assert!(c.passed(), "{c}");
    }
}

#[test]
fn torch_seq_fixture_passes() {
    check("seq.safetensors", 6);
}

/// Other sizes and options, written by `tests/fixtures/torch-seq/gen_seq_options.py`.
#[test]
fn torch_seq_options_fixture_passes() {
    check("seq_options.safetensors", 5);
}

/// LSTMs with hidden sizes that are multiples of 16 (the AVX-512 kernels where the CPU has
/// them), odd batches, both directions, 1 and 2 layers; written by
/// `tests/fixtures/torch-seq/gen_seq_lstm_simd.py`.
#[test]
fn torch_seq_lstm_simd_fixture_passes() {
    check("seq_lstm_simd.safetensors", 2);
}
