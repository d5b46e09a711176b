//! A compiled step of a network whose second convolution takes Winograd F(2×2, 3×3) (32 → 40
//! channels, 3×3, padding 1: the plan computes its weight gradient with the Winograd kernel,
//! `cpu/conv/winograd/wgrad.rs`) against default eager training (the blocked direct weight
//! gradient). The summation order differs, so the states agree to rounding, not bit for bit:
//! every parameter and buffer within 1e-5 relative (max |Δ| / max |eager|) after 20 SGD
//! momentum steps (measured: 7.1e-7 on two threads, 1.66e-6 on one), and the parameters
//! within 1e-6 after the first. On CPUs without AVX-512
//! both sides take the same kernels and the comparison is exact.

use mlfw_autograd::Backward;
use mlfw_core::{manual_seed, DType, Device, Result, Tensor};
use mlfw_nn::{
    functional as F, BatchNorm2d, Conv2d, Conv2dConfig, Flatten, Linear, Module, Relu, Sequential,
};
use mlfw_optim::{CompiledStep, Optimizer, Sgd, SgdConfig};

fn net(seed: u64) -> Result<Sequential> {
    manual_seed(seed);
    let d = Device::Cpu;
    let c = || Conv2dConfig::default().padding(1);
    Ok(Sequential::new()
        .append(Conv2d::new(3, 32, 3, c(), &d)?)
        .append(BatchNorm2d::new_2d(32, &d)?)
        .append(Relu)
        .append(Conv2d::new(32, 40, 3, c(), &d)?)
        .append(BatchNorm2d::new_2d(40, &d)?)
        .append(Relu)
        .append(Flatten::default())
        .append(Linear::new(40 * 7 * 9, 3, true, &d)?))
}

/// Batch `i`: `n` random `[3, 7, 9]` inputs (odd map) and labels in 0..3.
fn batch(i: u64, n: usize) -> Result<(Tensor, Tensor)> {
    let mut g = mlfw_core::Generator::new(91 + i);
    let x = Tensor::randn_with(0.0, 1.0, [n, 3, 7, 9], DType::F32, &Device::Cpu, &mut g)?;
    let y = Tensor::randint_with(0, 3, [n], &Device::Cpu, &mut g)?;
    Ok((x, y))
}

fn rel(a: &Tensor, b: &Tensor) -> Result<f64> {
    let (a, b) = (a.to_f64_vec()?, b.to_f64_vec()?);
    let m = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    Ok(a.iter()
        .zip(&b)
        .fold(0f64, |e, (x, y)| e.max((x - y).abs()))
        / m)
}

#[test]
fn winograd_weight_gradient_stays_within_rounding_of_eager() -> Result<()> {
    let (eager, compiled) = (net(3)?, net(3)?);
    let cfg = SgdConfig::new(0.02).momentum(0.9);
    let (mut oe, mut oc) = (
        Sgd::new(eager.parameters(), cfg)?,
        Sgd::new(compiled.parameters(), cfg)?,
    );
    let (x0, y0) = batch(0, 6)?;
    let mut step = CompiledStep::new(&compiled, &x0, &y0)?;
    let mut worst = 0f64;
    for i in 0..20 {
        let (x, y) = batch(i % 4, 6)?;
        oe.zero_grad();
        let loss = F::cross_entropy(&eager.forward(&x)?, &y)?;
        loss.backward()?;
        oe.step()?;
        step.step(&x, &y, &mut oc)?;
        if i == 0 {
            for (p, q) in compiled.parameters().iter().zip(eager.parameters()) {
                let e = rel(p, &q)?;
                assert!(e < 1e-6, "after one step: {e:.2e} from eager");
            }
        }
    }
    let (mut se, mut sc) = (eager.named_parameters(), compiled.named_parameters());
    se.extend(eager.named_buffers());
    sc.extend(compiled.named_buffers());
    for ((name, e), (_, c)) in se.iter().zip(&sc) {
        let r = rel(c, e)?;
        worst = worst.max(r);
        assert!(r < 1e-5, "`{name}`: {r:.2e} from eager after 20 steps");
    }
    println!("worst relative difference after 20 steps: {worst:.2e}");
    Ok(())
}
