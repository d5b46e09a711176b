//! A compiled step of a network with batch norm against *default* eager training, which
//! runs the fused batch-norm kernels (a capture records the composite formula: the same
//! maths, another summation order). They agree to rounding, not bit for bit; this states
//! and checks the bound (see `compiled_batch_norm.rs` for the bit-exact comparison).

use mlfw_autograd::Backward;
use mlfw_core::{manual_seed, DType, Device, Result, Tensor};
use mlfw_nn::{
    functional as F, BatchNorm2d, Conv2d, Conv2dConfig, Flatten, Linear, Module, Relu, Sequential,
};
use mlfw_optim::{CompiledStep, Optimizer, Sgd, SgdConfig};

/// Largest difference allowed after 30 steps, relative to each tensor's largest magnitude:
/// the 1e-6 (measured 2026-11-30: 4.0e-7, on `0.bias`).
const REL: f64 = 1e-6;

fn net(seed: u64) -> Result<Sequential> {
    manual_seed(seed);
    let dev = Device::Cpu;
    Ok(Sequential::new()
        .append(Conv2d::new(
            3,
            4,
            3,
            Conv2dConfig::default().padding(1),
            &dev,
        )?)
        .append(BatchNorm2d::new_2d(4, &dev)?)
        .append(Relu)
        .append(Flatten::default())
        .append(Linear::new(4 * 8 * 8, 3, true, &dev)?))
}

fn batch(i: u64, n: usize) -> Result<(Tensor, Tensor)> {
    let mut g = mlfw_core::Generator::new(77 + i);
    let x = Tensor::randn_with(0.0, 1.0, [n, 3, 8, 8], DType::F32, &Device::Cpu, &mut g)?;
    let y = Tensor::randint_with(0, 3, [n], &Device::Cpu, &mut g)?;
    Ok((x, y))
}

fn state(m: &dyn Module) -> Result<Vec<(String, Vec<f64>)>> {
    let mut all = m.named_parameters();
    all.extend(m.named_buffers());
    all.into_iter()
        .map(|(n, t)| Ok((n, t.to_dtype(DType::F64)?.to_vec::<f64>()?)))
        .collect()
}

#[test]
fn batch_norm_compiled_matches_fused_eager_to_rounding() -> Result<()> {
    let (eager, compiled) = (net(5)?, net(5)?);
    let cfg = SgdConfig::new(0.05).momentum(0.9);
    let (mut oe, mut oc) = (
        Sgd::new(eager.parameters(), cfg)?,
        Sgd::new(compiled.parameters(), cfg)?,
    );
    let (x0, y0) = batch(0, 8)?;
    let mut step = CompiledStep::new(&compiled, &x0, &y0)?;
    for i in 0..30 {
        let (x, y) = batch(i % 5, 8)?;
        oe.zero_grad();
        let loss = F::cross_entropy(&eager.forward(&x)?, &y)?;
        loss.backward()?;
        oe.step()?;
        step.step(&x, &y, &mut oc)?;
    }
    let mut worst = (0.0f64, String::new());
    for ((name, e), (_, c)) in state(&eager)?.iter().zip(&state(&compiled)?) {
        let scale = e.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
        let d = e
            .iter()
            .zip(c)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
            / scale;
        if d > worst.0 {
            worst = (d, name.clone());
        }
    }
    println!("largest difference after 30 steps, relative to each tensor's max |value|: {worst:?}");
    assert!(worst.0 <= REL, "{worst:?}");
    Ok(())
}
