//! A compiled ViT training step against eager training run with `MLFW_FUSED=0` (the
//! composite attention, layer-norm and GELU formulas, which is what a capture records): bit
//! for bit after 30 steps. With the fused eager kernels the two agree only to rounding
//! (`compiled_zoo.rs`). One test in this file, so the environment variable is this
//! process's alone.

use mlfw_autograd::Backward;
use mlfw_core::{manual_seed, DType, Device, Generator, Result, Tensor};
use mlfw_nn::{functional as F, Module};
use mlfw_optim::{CompiledStep, Optimizer, Sgd, SgdConfig};
use mlfw_vision::models::VisionTransformer;

fn vit() -> Result<VisionTransformer> {
    manual_seed(11);
    let mut m = VisionTransformer::new(32, 8, 2, 2, 32, 64, 10, 3, &Device::Cpu)?;
    m.train(true);
    Ok(m)
}

fn bits(m: &dyn Module) -> Result<Vec<Vec<u32>>> {
    m.parameters()
        .iter()
        .map(|p| Ok(p.to_vec::<f32>()?.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

#[test]
fn vit_compiled_matches_unfused_eager_bit_for_bit() -> Result<()> {
    // SAFETY (edition 2021: a safe call): the only test of this process sets it first.
    std::env::set_var("MLFW_FUSED", "0");
    let (eager, compiled) = (vit()?, vit()?);
    let cfg = SgdConfig::new(0.05).momentum(0.9);
    let (mut oe, mut oc) = (
        Sgd::new(eager.parameters(), cfg)?,
        Sgd::new(compiled.parameters(), cfg)?,
    );
    let mut g = Generator::new(3);
    let x0 = Tensor::randn_with(0.0, 1.0, [2, 3, 32, 32], DType::F32, &Device::Cpu, &mut g)?;
    let y0 = Tensor::randint_with(0, 10, [2], &Device::Cpu, &mut g)?;
    let mut step = CompiledStep::new(&compiled, &x0, &y0)?;
    assert!(
        step.fixed_batch(),
        "zeros of a batch-sized shape in its backward"
    );
    let why = step.fixed_batch_reason().unwrap_or_default();
    assert!(
        why.contains("batch-sized shape") && !why.contains("symbolic"),
        "{why}"
    );
    for i in 0..30 {
        let x = Tensor::randn_with(0.0, 1.0, [2, 3, 32, 32], DType::F32, &Device::Cpu, &mut g)?;
        let y = Tensor::randint_with(0, 10, [2], &Device::Cpu, &mut g)?;
        oe.zero_grad();
        let loss = F::cross_entropy(&eager.forward(&x)?, &y)?;
        let le = loss.item_f64()?;
        loss.backward()?;
        oe.step()?;
        oc.zero_grad();
        let out = step.step(&x, &y, &mut oc)?;
        assert_eq!(le.to_bits(), out.loss.to_bits(), "loss at step {i}");
    }
    assert_eq!(bits(&eager)?, bits(&compiled)?);
    Ok(())
}
