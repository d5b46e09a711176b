//! A compiled step of a network with batch norm against *default* eager training, which
//! runs the fused batch-norm kernels. The capture records those kernels as graph ops
//! (`batch_norm`, `batch_norm_backward`), so the compiled step is bit-identical to eager
//! (until 2026-11-30 the capture recorded the composite formula: 4.0e-7 relative after 30
//! steps). `compiled_batch_norm.rs` checks the composite formula against `MLFW_FUSED=0`.

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

fn state(m: &dyn Module) -> Result<Vec<(String, Vec<f64>)>> {
    let mut all = m.named_parameters();
    all.extend(m.named_buffers());
    all.into_iter()
        .map(|(n, t)| Ok((n, t.to_dtype(DType::F64)?.to_vec::<f64>()?)))
        .collect()
}

#[test]
fn batch_norm_compiled_matches_fused_eager_bit_for_bit() -> Result<()> {
    let (eager, compiled) = (net(5)?, net(5)?);
    let cfg = SgdConfig::new(0.05).momentum(0.9);
    let (mut oe, mut oc) = (
        Sgd::new(eager.parameters(), cfg)?,
        Sgd::new(compiled.parameters(), cfg)?,
    );
    let (x0, y0) = batch(0, 8)?;
    let mut step = CompiledStep::new(&compiled, &x0, &y0)?;
    let ops: Vec<String> = step.graph().nodes.iter().map(|n| n.op_name()).collect();
    let count = |name: &str| ops.iter().filter(|o| *o == name).count();
    assert_eq!(count("batch_norm"), 1, "{ops:?}");
    assert_eq!(count("batch_norm_backward"), 1, "{ops:?}");
    assert_eq!(count("rsqrt"), 0, "composite batch norm recorded: {ops:?}");
    for i in 0..30 {
        let (x, y) = batch(i % 5, 8)?;
        oe.zero_grad();
        let loss = F::cross_entropy(&eager.forward(&x)?, &y)?;
        loss.backward()?;
        oe.step()?;
        step.step(&x, &y, &mut oc)?;
    }
    let (se, sc) = (state(&eager)?, state(&compiled)?);
    assert_eq!(se.len(), sc.len());
    for ((name, e), (_, c)) in se.iter().zip(&sc) {
        let same = e.iter().zip(c).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "`{name}` differs from eager after 30 steps");
    }
    Ok(())
}
