//! A compiled LeNet-5 training step, whole-batch replay (`SplitMode::Off`; the micro-batch
//! split is tested in `compiled_split.rs`), against eager training: the same weights after 100
//! steps (bit for bit: the compiled plan runs the eager kernels, and its fused loops use
//! the eager per-element formulas, so no summation order changes), recompilation on a new
//! batch size, the divergence (NaN) stop, and the fallbacks.

#[path = "common/lenet_data.rs"]
mod lenet_data;

use lenet_data::lenet;
use mlfw_autograd::Backward;
use mlfw_core::{DType, Device, Result, Tensor};
use mlfw_nn::{functional as F, Dropout, Flatten, Linear, Module, Sequential};
use mlfw_optim::{AdamConfig, AdamW, CompiledStep, Optimizer, Sgd, SgdConfig, SplitMode};
use mlfw_vision::models::LeNet5;

fn batch(i: u64, n: usize) -> Result<(Tensor, Tensor)> {
    lenet_data::batch_of(1000, i, n)
}

fn eager_step(model: &dyn Module, opt: &mut dyn Optimizer, x: &Tensor, y: &Tensor) -> Result<f64> {
    opt.zero_grad();
    let loss = F::cross_entropy(&model.forward(x)?, y)?;
    let lv = loss.item_f64()?;
    loss.backward()?;
    opt.step()?;
    Ok(lv)
}

fn weights_bits(model: &dyn Module) -> Result<Vec<Vec<u32>>> {
    model
        .parameters()
        .iter()
        .map(|p| Ok(p.to_vec::<f32>()?.iter().map(|v| v.to_bits()).collect()))
        .collect()
}

fn compare_100_steps(make_opt: impl Fn(&LeNet5) -> Result<Box<dyn Optimizer>>) -> Result<()> {
    let (eager, compiled) = (lenet(3)?, lenet(3)?);
    let (mut oe, mut oc) = (make_opt(&eager)?, make_opt(&compiled)?);
    let (x0, y0) = batch(0, 16)?;
    let mut step = CompiledStep::new(&compiled, &x0, &y0)?.with_split(SplitMode::Off);
    assert!(step.stats().fused_groups > 0, "{:?}", step.stats());
    for i in 0..100 {
        let (x, y) = batch(i % 7, 16)?;
        let le = eager_step(&eager, oe.as_mut(), &x, &y)?;
        let out = step.step(&x, &y, oc.as_mut())?;
        assert_eq!(le.to_bits(), out.loss.to_bits(), "loss at step {i}");
        assert_eq!(out.logits.dims(), &[16, 10]);
    }
    assert_eq!(weights_bits(&eager)?, weights_bits(&compiled)?);
    step.check_model(&compiled)?;
    assert!(step.check_model(&lenet(3)?).is_err());
    assert_eq!(step.compilations(), 1);
    Ok(())
}

#[test]
fn sgd_momentum_100_steps_bit_identical_to_eager() -> Result<()> {
    compare_100_steps(|m| {
        let cfg = SgdConfig::new(0.05).momentum(0.9).weight_decay(1e-4);
        Ok(Box::new(Sgd::new(m.parameters(), cfg)?))
    })
}

#[test]
fn adamw_100_steps_bit_identical_to_eager() -> Result<()> {
    compare_100_steps(|m| {
        Ok(Box::new(AdamW::new(
            m.parameters(),
            AdamConfig::adamw(1e-3),
        )?))
    })
}

#[test]
fn a_new_batch_size_recompiles_and_stays_exact() -> Result<()> {
    let (eager, compiled) = (lenet(5)?, lenet(5)?);
    let cfg = SgdConfig::new(0.05).momentum(0.9);
    let mut oe = Sgd::new(eager.parameters(), cfg)?;
    let mut oc = Sgd::new(compiled.parameters(), cfg)?;
    let (x0, y0) = batch(0, 8)?;
    let mut step = CompiledStep::new(&compiled, &x0, &y0)?.with_split(SplitMode::Off);
    for (i, n) in [8, 8, 5, 8, 5, 3].into_iter().enumerate() {
        let (x, y) = batch(i as u64, n)?;
        let le = eager_step(&eager, &mut oe, &x, &y)?;
        let out = step.step(&x, &y, &mut oc)?;
        assert_eq!(le.to_bits(), out.loss.to_bits(), "batch {n}");
        assert_eq!(out.logits.dims(), &[n, 10]);
    }
    assert_eq!(step.compilations(), 3, "8, 5 and 3 each compiled once");
    assert_eq!(weights_bits(&eager)?, weights_bits(&compiled)?);
    // A wrong image size is refused, never computed on the old shapes.
    let bad = Tensor::zeros([8, 1, 32, 32], DType::F32, &Device::Cpu)?;
    assert!(step.step(&bad, &y0, &mut oc).is_err());
    Ok(())
}

#[test]
fn a_nan_loss_is_returned_and_the_weights_are_left_alone() -> Result<()> {
    let model = lenet(9)?;
    let mut opt = Sgd::new(model.parameters(), SgdConfig::new(0.1))?;
    let (x, y) = batch(0, 4)?;
    let mut step = CompiledStep::new(&model, &x, &y)?.with_split(SplitMode::Off);
    let before = weights_bits(&model)?;
    let mut v = x.to_vec::<f32>()?;
    v[0] = f32::NAN;
    let xn = Tensor::from_vec(v, [4, 1, 28, 28], &Device::Cpu)?;
    let out = step.step(&xn, &y, &mut opt)?;
    assert!(out.loss.is_nan());
    assert_eq!(before, weights_bits(&model)?, "no update on a NaN loss");
    assert!(step.step(&x, &y, &mut opt)?.loss.is_finite());
    assert_ne!(before, weights_bits(&model)?);
    Ok(())
}

#[test]
fn steps_that_cannot_be_replayed_are_refused() -> Result<()> {
    let dev = Device::Cpu;
    let x = Tensor::randn(0.0, 1.0, [4, 3, 8, 8], DType::F32, &dev)?;
    let y = Tensor::from_vec(vec![0i64, 1, 0, 1], [4], &dev)?;
    // Dropout draws a new mask per step; a capture would freeze one.
    let drop = Sequential::new()
        .append(Flatten::default())
        .append(Dropout::new(0.5)?)
        .append(Linear::new(192, 2, true, &dev)?);
    // The reason names the random draw (it used to be the symbolic capture's "constant has
    // a batch-sized shape", which says nothing to a user).
    let err = CompiledStep::new(&drop, &x, &y)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains(mlfw_core::graph::RANDOM_DRAW) && err.contains("dropout"),
        "{err}"
    );
    Ok(())
}
