//! A compiled training step of a network with batch norm: the running statistics are state
//! writes of the captured graph, performed by every compiled step. Compared bit for bit
//! with eager training run with `MLFW_FUSED=0` (the composite batch-norm formula, which is
//! what a capture records: the fused batch-norm kernel computes the same maths in another
//! order, so with it eager and compiled agree only to rounding). One test in this file, so
//! the environment variable is this process's alone.

use mlfw_autograd::Backward;
use mlfw_core::{manual_seed, DType, Device, Result, Tensor};
use mlfw_nn::{
    functional as F, BatchNorm2d, Conv2d, Conv2dConfig, Flatten, Linear, Module, Relu, Sequential,
};
use mlfw_optim::{CompiledStep, Optimizer, Sgd, SgdConfig};

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

/// Every parameter and buffer (running mean and variance, batches tracked) as bits.
fn state_bits(m: &dyn Module) -> Result<Vec<(String, Vec<u64>)>> {
    let mut all = m.named_parameters();
    all.extend(m.named_buffers());
    all.into_iter()
        .map(|(n, t)| {
            let v = t.to_dtype(DType::F64)?.to_vec::<f64>()?;
            Ok((n, v.iter().map(|x| x.to_bits()).collect()))
        })
        .collect()
}

#[test]
fn batch_norm_running_statistics_match_eager_bit_for_bit() -> Result<()> {
    // SAFETY (edition 2021: a safe call): the only test of this process sets it first.
    std::env::set_var("MLFW_FUSED", "0");
    let (eager, compiled) = (net(5)?, net(5)?);
    let cfg = SgdConfig::new(0.05).momentum(0.9);
    let (mut oe, mut oc) = (
        Sgd::new(eager.parameters(), cfg)?,
        Sgd::new(compiled.parameters(), cfg)?,
    );
    let before = state_bits(&compiled)?;
    let (x0, y0) = batch(0, 8)?;
    let mut step = CompiledStep::new(&compiled, &x0, &y0)?;
    assert_eq!(
        before,
        state_bits(&compiled)?,
        "capturing must not change the model"
    );
    assert!(!step.graph().writes.is_empty(), "{}", step.graph());
    // Batch norm's unbiased n / (n - 1) depends on the batch size: one size only.
    assert!(step.fixed_batch());
    assert!(step.accepts(&x0));
    assert!(!step.accepts(&batch(0, 5)?.0));
    for i in 0..30 {
        let (x, y) = batch(i % 5, 8)?;
        oe.zero_grad();
        let loss = F::cross_entropy(&eager.forward(&x)?, &y)?;
        let le = loss.item_f64()?;
        loss.backward()?;
        oe.step()?;
        let out = step.step(&x, &y, &mut oc)?;
        assert_eq!(le.to_bits(), out.loss.to_bits(), "loss at step {i}");
    }
    let (e, c) = (state_bits(&eager)?, state_bits(&compiled)?);
    assert!(c.iter().any(|(n, _)| n.ends_with("running_mean")));
    for ((ne, ve), (nc, vc)) in e.iter().zip(&c) {
        assert_eq!(ne, nc);
        assert_eq!(ve, vc, "{ne} differs after 30 steps");
    }
    assert_ne!(before, c, "the steps trained the model");
    Ok(())
}
