//! Shared by the CUDA tests: the device-or-skip helper and the "same body on CPU and CUDA"
//! comparison (as candle's test_utils). On a machine without CUDA every test prints
//! `skipping: CUDA not available (...)` and passes.
#![allow(dead_code)]

use mlfw_core::{DType, Device, Generator, Result, Tensor};

/// The CUDA device, or `None` after printing why the test is skipped.
pub fn cuda() -> Option<Device> {
    match mlfw_cuda::device(0) {
        Ok(d) => Some(d),
        Err(e) => {
            println!("skipping: CUDA not available ({e})");
            None
        }
    }
}

/// Normal f32 numbers drawn on the CPU from `seed`, then moved to `dev` (same values everywhere).
pub fn randn(shape: &[usize], seed: u64, dev: &Device) -> Result<Tensor> {
    Tensor::randn_with(
        0.0,
        1.0,
        shape.to_vec(),
        DType::F32,
        &Device::Cpu,
        &mut Generator::new(seed),
    )?
    .to(dev)
}

/// Uniform f32 numbers in `[lo, hi)` drawn on the CPU, then moved to `dev`.
pub fn rand(shape: &[usize], lo: f64, hi: f64, seed: u64, dev: &Device) -> Result<Tensor> {
    Tensor::rand_with(
        lo,
        hi,
        shape.to_vec(),
        DType::F32,
        &Device::Cpu,
        &mut Generator::new(seed),
    )?
    .to(dev)
}

/// Asserts two tensors agree: same shape and dtype, values within `atol + rtol·|want|`
/// (NaN matches NaN). Values are moved to the host before any conversion.
pub fn assert_close(name: &str, want: &Tensor, got: &Tensor, rtol: f64, atol: f64) -> Result<()> {
    assert_eq!(want.dims(), got.dims(), "{name}: shape");
    assert_eq!(want.dtype(), got.dtype(), "{name}: dtype");
    let w = want.to(&Device::Cpu)?.to_f64_vec()?;
    let g = got.to(&Device::Cpu)?.to_f64_vec()?;
    for (i, (a, b)) in w.iter().zip(&g).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= atol + rtol * a.abs();
        assert!(
            ok,
            "{name}: element {i}: cpu {a} vs cuda {b} (rtol {rtol}, atol {atol})"
        );
    }
    Ok(())
}

/// Runs `body` on the CPU and on CUDA and compares every returned tensor.
pub fn same_on_both(
    name: &str,
    rtol: f64,
    atol: f64,
    body: impl Fn(&Device) -> Result<Vec<Tensor>>,
) -> Result<()> {
    let Some(gpu) = cuda() else { return Ok(()) };
    let want = body(&Device::Cpu)?;
    let got = body(&gpu)?;
    assert_eq!(want.len(), got.len(), "{name}: number of outputs");
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        assert_eq!(g.device(), gpu, "{name}[{i}] ran on {}", g.device());
        assert_close(&format!("{name}[{i}]"), w, g, rtol, atol)?;
    }
    Ok(())
}
