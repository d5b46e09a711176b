//! Compiled plans on CUDA: fused groups launched as generated NVRTC kernels, and the
//! training step replayed as a CUDA graph. Written without a GPU to run them on: each test
//! skips with a notice when CUDA (or NVRTC) is absent, and they run in the device bundle
//! (`crates/cuda/device/bundle.sh`). Kernels compiled here go to a temporary cache
//! (`MLFW_CUDA_CACHE`), never to `~/.cache/mlfw`.

use super::common::{assert_close, cuda, randn};
use mlfw_core::graph::{compile, Capture, Graph};
use mlfw_core::{Device, Result, Tensor};
use mlfw_nn::{Conv2d, Conv2dConfig, Flatten, Linear, MaxPool2d, Module, Relu, Sequential};
use mlfw_optim::{CompiledStep, Sgd, SgdConfig};
use std::sync::OnceLock;

/// CUDA with NVRTC, and a temporary kernel cache; `None` after a notice when absent.
fn device() -> Option<Device> {
    let dev = cuda()?;
    if !mlfw_cuda::compile::nvrtc_available() {
        println!("skipping: libnvrtc not found (fused CUDA kernels cannot be compiled)");
        return None;
    }
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = CACHE.get_or_init(|| tempfile::tempdir().expect("a temporary folder"));
    if std::env::var_os("MLFW_CUDA_CACHE").is_none() {
        std::env::set_var("MLFW_CUDA_CACHE", dir.path());
    }
    Some(dev)
}

/// Bias add + ReLU, ReLU's mask and a `where`: ops whose CUDA code rounds as the CPU loop
/// does (no FMA contraction), plus `tanh`/`sigmoid`, which follow CUDA's own accuracy.
fn body(x: &Tensor, b: &Tensor) -> Result<Vec<Tensor>> {
    let h = x.add(b)?.relu()?;
    let mask = h.cmp_scalar(0.0, mlfw_core::CmpOp::Gt)?;
    let y = mask.where_cond(&h.mul_scalar(0.5)?, &h.affine(2.0, -1.0)?)?;
    let z = y.mul(&h)?.sub(&x.permute(&[0, 1, 3, 2])?)?;
    let t = z.tanh()?.sigmoid()?.add(&z)?;
    Ok(vec![z, mask, t])
}

fn captured(x: &Tensor, b: &Tensor) -> Result<Graph> {
    Capture::new()
        .input("x", x)
        .param("b", b)
        .run(|xs| body(&xs[0], b))
}

#[test]
fn fused_groups_on_cuda_match_the_cpu_plan() -> Result<()> {
    let Some(dev) = device() else { return Ok(()) };
    let (x, b) = (
        randn(&[2, 3, 5, 5], 1, &Device::Cpu)?,
        randn(&[1, 3, 1, 1], 2, &Device::Cpu)?,
    );
    let mut cpu = compile(&captured(&x, &b)?)?;
    let (xc, bc) = (x.to(&dev)?, b.to(&dev)?);
    let mut gpu = compile(&captured(&xc, &bc)?)?;
    assert!(
        gpu.stats().fused_groups > 0,
        "no fused group on CUDA: {:?}",
        gpu.stats()
    );
    assert_eq!(cpu.stats().fused_groups, gpu.stats().fused_groups);
    let want = cpu.run(&[x])?;
    for _ in 0..2 {
        // The second run reuses the planned buffers.
        let got = gpu.run(std::slice::from_ref(&xc))?;
        assert_close("z (bit-exact ops)", &want[0], &got[0], 0.0, 0.0)?;
        assert_close("mask", &want[1], &got[1], 0.0, 0.0)?;
        // tanh/sigmoid: CUDA's tanhf/expf are within 2 ulp.
        assert_close("t", &want[2], &got[2], 1e-6, 1e-6)?;
    }
    Ok(())
}

/// LeNet-5 (as in PyTorch's tutorial, 28×28 inputs) on `dev`.
fn lenet(dev: &Device) -> Result<Sequential> {
    Ok(Sequential::new()
        .append(Conv2d::new(
            1,
            6,
            5,
            Conv2dConfig::default().padding(2),
            dev,
        )?)
        .append(Relu)
        .append(MaxPool2d::new(2))
        .append(Conv2d::new(6, 16, 5, Conv2dConfig::default(), dev)?)
        .append(Relu)
        .append(MaxPool2d::new(2))
        .append(Flatten::default())
        .append(Linear::new(400, 120, true, dev)?)
        .append(Relu)
        .append(Linear::new(120, 84, true, dev)?)
        .append(Relu)
        .append(Linear::new(84, 10, true, dev)?))
}

/// A copy of `m`'s parameters in a second LeNet-5.
fn twin(m: &Sequential, dev: &Device) -> Result<Sequential> {
    let t = lenet(dev)?;
    for (a, b) in t.parameters().iter().zip(m.parameters()) {
        a.assign(&b)?;
    }
    Ok(t)
}

fn batch(n: usize, seed: u64, dev: &Device) -> Result<(Tensor, Tensor)> {
    let x = randn(&[n, 1, 28, 28], seed, dev)?;
    let y: Vec<i64> = (0..n as i64).map(|i| (i * 7 + seed as i64) % 10).collect();
    Ok((x, Tensor::from_vec(y, [n], dev)?))
}

fn sgd(m: &Sequential) -> Result<Sgd> {
    Sgd::new(m.parameters(), SgdConfig::new(0.05).momentum(0.9))
}

fn assert_params_close(a: &Sequential, b: &Sequential, rtol: f64) -> Result<()> {
    for (i, (p, q)) in a.parameters().iter().zip(b.parameters()).enumerate() {
        assert_close(&format!("parameter {i}"), p, &q, rtol, 1e-7)?;
    }
    Ok(())
}

#[test]
fn cuda_graph_replay_of_a_lenet5_step_equals_the_plain_replay() -> Result<()> {
    let Some(dev) = device() else { return Ok(()) };
    let graphed = lenet(&dev)?;
    let plain = twin(&graphed, &dev)?;
    let (x0, y0) = batch(16, 0, &dev)?;
    let mut sg = CompiledStep::new(&graphed, &x0, &y0)?.with_device_graph(true);
    let mut sp = CompiledStep::new(&plain, &x0, &y0)?.with_device_graph(false);
    assert!(sg.stats().fused_groups > 0, "{:?}", sg.stats());
    let (mut og, mut op) = (sgd(&graphed)?, sgd(&plain)?);
    for s in 0..6 {
        let (x, y) = batch(16, s, &dev)?;
        let a = sg.step(&x, &y, &mut og)?;
        let b = sp.step(&x, &y, &mut op)?;
        assert!(a.loss.is_finite());
        // Same kernels in the same order; cuDNN may pick other algorithms per handle state.
        assert!(
            (a.loss - b.loss).abs() <= 1e-5 * b.loss.abs(),
            "step {s}: graphed loss {} vs plain {}",
            a.loss,
            b.loss
        );
        assert_close("logits", &b.logits, &a.logits, 1e-4, 1e-5)?;
    }
    assert!(
        sg.graph_captured(),
        "the step was not captured as a CUDA graph"
    );
    assert!(!sp.graph_captured());
    assert_params_close(&plain, &graphed, 1e-4)
}

#[test]
fn a_nan_loss_stops_before_the_update_under_graph_replay() -> Result<()> {
    let Some(dev) = device() else { return Ok(()) };
    let m = lenet(&dev)?;
    let (x, y) = batch(8, 1, &dev)?;
    let mut step = CompiledStep::new(&m, &x, &y)?;
    let mut opt = sgd(&m)?;
    for _ in 0..3 {
        step.step(&x, &y, &mut opt)?;
    }
    assert!(step.graph_captured());
    let before: Vec<Vec<f32>> = m
        .parameters()
        .iter()
        .map(|p| p.to(&Device::Cpu)?.to_vec::<f32>())
        .collect::<Result<_>>()?;
    let bad = x.mul_scalar(f64::NAN)?;
    let out = step.step(&bad, &y, &mut opt)?;
    assert!(out.loss.is_nan(), "loss {}", out.loss);
    for (p, b) in m.parameters().iter().zip(&before) {
        assert_eq!(
            &p.to(&Device::Cpu)?.to_vec::<f32>()?,
            b,
            "a parameter moved"
        );
    }
    // The graph keeps working on finite inputs.
    assert!(step.step(&x, &y, &mut opt)?.loss.is_finite());
    Ok(())
}

#[test]
fn a_new_batch_shape_recompiles_and_captures_its_own_graph() -> Result<()> {
    let Some(dev) = device() else { return Ok(()) };
    let graphed = lenet(&dev)?;
    let plain = twin(&graphed, &dev)?;
    let (x, y) = batch(8, 2, &dev)?;
    let mut sg = CompiledStep::new(&graphed, &x, &y)?;
    let mut sp = CompiledStep::new(&plain, &x, &y)?.with_device_graph(false);
    let (mut og, mut op) = (sgd(&graphed)?, sgd(&plain)?);
    for n in [8, 8, 8, 4, 4, 4, 8] {
        let (x, y) = batch(n, n as u64, &dev)?;
        let a = sg.step(&x, &y, &mut og)?;
        let b = sp.step(&x, &y, &mut op)?;
        assert!((a.loss - b.loss).abs() <= 1e-5 * b.loss.abs());
        assert_eq!(a.logits.dims(), [n, 10]);
    }
    assert_eq!(sg.compilations(), 2);
    assert!(sg.graph_captured());
    assert_params_close(&plain, &graphed, 1e-4)?;
    Ok(())
}
