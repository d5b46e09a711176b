//! Helpers shared by the ONNX tests.

use mlfw_core::Tensor;

/// Largest `|got − want|` over the largest `|want|` (shapes must agree).
pub fn rel_err(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.dims(), want.dims());
    let (g, w) = (got.to_f64_vec().unwrap(), want.to_f64_vec().unwrap());
    let scale = w.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
    g.iter()
        .zip(&w)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()))
        / scale
}
