//! A compiled LeNet-5 step run as micro-batches (one plan per thread, outputs combined)
//! against eager training. Summation order differs from eager's (partial sums per
//! micro-batch), so results are compared within a relative tolerance (per tensor, max abs
//! difference over max abs value); measured figures are printed (`--nocapture`) and quoted
//! in the tests' docs. Also: unequal micro-batches, ignored targets
//! (`-100`) weighting the combine, a micro-batch with no counted target (whole-batch
//! replay, bit-identical), the NaN stop, and batch norm staying whole-batch.

#[path = "common/lenet_data.rs"]
mod lenet_data;

use lenet_data::lenet;
#[path = "common/bn_net.rs"]
#[allow(dead_code)]
mod bn_net;

use mlfw_autograd::Backward;
use mlfw_core::{Device, Result, Tensor};
use mlfw_nn::{functional as F, Module};
use mlfw_optim::{CompiledStep, Optimizer, Sgd, SgdConfig, SplitMode};
use mlfw_vision::models::LeNet5;

fn batch(i: u64, n: usize) -> Result<(Tensor, Tensor)> {
    lenet_data::batch_of(2000, i, n)
}

fn eager_step(
    model: &dyn Module,
    opt: &mut dyn Optimizer,
    x: &Tensor,
    y: &Tensor,
) -> Result<(f64, Tensor)> {
    opt.zero_grad();
    let logits = model.forward(x)?;
    let loss = F::cross_entropy(&logits, y)?;
    let lv = loss.item_f64()?;
    loss.backward()?;
    opt.step()?;
    Ok((lv, logits))
}

/// Max over tensors of `max|a - b| / max|b|`.
fn max_rel(a: &[Tensor], b: &[Tensor]) -> Result<f64> {
    let mut worst = 0f64;
    for (p, q) in a.iter().zip(b) {
        let (p, q) = (p.to_vec::<f32>()?, q.to_vec::<f32>()?);
        let scale = q.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
        let diff = p
            .iter()
            .zip(&q)
            .fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()));
        worst = worst.max(diff / scale.max(f64::MIN_POSITIVE));
    }
    Ok(worst)
}

fn sgd(m: &LeNet5) -> Result<Sgd> {
    Sgd::new(
        m.parameters(),
        SgdConfig::new(0.05).momentum(0.9).weight_decay(1e-4),
    )
}

/// `steps` steps of batch `n` split as `mode`, against eager; returns the weights' max
/// relative difference.
fn train(n: usize, mode: SplitMode, want_parts: usize, steps: u64) -> Result<f64> {
    let (eager, compiled) = (lenet(3)?, lenet(3)?);
    let (mut oe, mut oc) = (sgd(&eager)?, sgd(&compiled)?);
    let (x0, y0) = batch(0, n)?;
    let mut step = CompiledStep::new(&compiled, &x0, &y0)?.with_split(mode);
    assert_eq!(step.micro_batches(n).len(), want_parts);
    assert!(step.split_summary(n).contains("micro-batches"));
    for i in 0..steps {
        let (x, y) = batch(i % 7, n)?;
        let (le, logits) = eager_step(&eager, &mut oe, &x, &y)?;
        let out = step.step(&x, &y, &mut oc)?;
        assert_eq!(out.logits.dims(), &[n, 10]);
        if i == 0 {
            // Same weights: the same loss, and the concatenated logits are eager's.
            assert!(
                (out.loss - le).abs() <= 1e-6 * le.abs(),
                "{} vs {le}",
                out.loss
            );
            assert!(max_rel(&[out.logits], &[logits])? <= 1e-6);
        }
    }
    let w = max_rel(&compiled.parameters(), &eager.parameters())?;
    println!("batch {n}, {mode:?}, {steps} steps: weights max rel diff {w:.2e}");
    Ok(w)
}

/// One step's gradient (SGD, lr 1: the weight change) against eager's: the combine is right
/// and only summation order differs (measured ≤ 8.6e-6 relative, conv1's bias at 16+16+16+2).
#[test]
fn one_step_gradients_within_2e5_of_eager() -> Result<()> {
    for (n, k) in [(64, 32), (50, 16), (6, 3)] {
        let (e, c) = (lenet(3)?, lenet(3)?);
        let w0 = e
            .parameters()
            .iter()
            .map(|p| p.copy())
            .collect::<Result<Vec<_>>>()?;
        let (x, y) = batch(5, n)?;
        let mut oe = Sgd::new(e.parameters(), SgdConfig::new(1.0))?;
        let mut oc = Sgd::new(c.parameters(), SgdConfig::new(1.0))?;
        eager_step(&e, &mut oe, &x, &y)?;
        let mut step = CompiledStep::new(&c, &x, &y)?.with_split(SplitMode::MicroBatch(k));
        step.step(&x, &y, &mut oc)?;
        let delta = |m: &LeNet5| -> Result<Vec<Tensor>> {
            m.parameters()
                .iter()
                .zip(&w0)
                .map(|(p, w)| w.sub(p))
                .collect()
        };
        let r = max_rel(&delta(&c)?, &delta(&e)?)?;
        println!("batch {n} as micro-batches of {k}: gradient max rel diff {r:.2e}");
        assert!(r <= 2e-5, "batch {n}/{k}: {r:e}");
    }
    Ok(())
}

/// 20 SGD-momentum steps stay within 1e-6 relative of eager (measured 2.0e-7).
#[test]
fn sgd_momentum_20_steps_split_in_two_within_1e6_of_eager() -> Result<()> {
    let w = train(64, SplitMode::MicroBatch(32), 2, 20)?;
    assert!(w <= 1e-6, "weights differ by {w:e} relative");
    let w = train(50, SplitMode::MicroBatch(16), 4, 20)?;
    assert!(w <= 1e-6, "weights differ by {w:e} relative");
    Ok(())
}

/// After 100 steps the 1e-6 of issue 17 does **not** hold: on this random-label task a
/// difference of one ulp anywhere eventually flips a ReLU or max-pool choice, after which
/// the runs drift apart. Measured (2 threads): 5.7e-2 relative after 100 steps, and eager
/// itself with one weight perturbed by one ulp drifts by the same 5.7e-2 (4.1e-3 at step 80,
/// under 5e-7 up to step 60). This checks the drift stays at that level (a wrong combine
/// is off by far more within a few steps).
#[test]
fn sgd_momentum_100_steps_stay_near_eager() -> Result<()> {
    let w = train(64, SplitMode::MicroBatch(32), 2, 100)?;
    assert!(w <= 0.2, "weights differ by {w:e} relative");
    Ok(())
}

#[test]
fn ignored_targets_weight_the_combine_and_an_empty_part_runs_whole() -> Result<()> {
    let (eager, compiled) = (lenet(4)?, lenet(4)?);
    let (mut oe, mut oc) = (sgd(&eager)?, sgd(&compiled)?);
    let (x, y) = batch(1, 16)?;
    let mut step = CompiledStep::new(&compiled, &x, &y)?.with_split(SplitMode::MicroBatch(8));
    // Micro-batch 0 counts 2 targets, micro-batch 1 counts 8: weights 0.2 / 0.8, not 0.5.
    let mut t = y.to_vec::<i64>()?;
    t[..6].iter_mut().for_each(|v| *v = -100);
    let y1 = Tensor::from_vec(t.clone(), [16], &Device::Cpu)?;
    let (le, _) = eager_step(&eager, &mut oe, &x, &y1)?;
    let out = step.step(&x, &y1, &mut oc)?;
    assert!(
        (out.loss - le).abs() <= 1e-6 * le.abs(),
        "{} vs {le}",
        out.loss
    );
    assert!(max_rel(&compiled.parameters(), &eager.parameters())? <= 1e-6);
    // Micro-batch 0 counts none: the whole batch runs (bit-identical step).
    let (eager, compiled) = (lenet(4)?, lenet(4)?);
    let (mut oe, mut oc) = (sgd(&eager)?, sgd(&compiled)?);
    let mut step = CompiledStep::new(&compiled, &x, &y)?.with_split(SplitMode::MicroBatch(8));
    t[..8].iter_mut().for_each(|v| *v = -100);
    let y2 = Tensor::from_vec(t, [16], &Device::Cpu)?;
    let (le, _) = eager_step(&eager, &mut oe, &x, &y2)?;
    let out = step.step(&x, &y2, &mut oc)?;
    assert_eq!(out.loss.to_bits(), le.to_bits());
    assert_eq!(max_rel(&compiled.parameters(), &eager.parameters())?, 0.0);
    Ok(())
}

#[test]
fn a_nan_in_one_micro_batch_stops_the_step() -> Result<()> {
    let model = lenet(9)?;
    let mut opt = Sgd::new(model.parameters(), SgdConfig::new(0.1))?;
    let (x, y) = batch(0, 16)?;
    let mut step = CompiledStep::new(&model, &x, &y)?.with_split(SplitMode::MicroBatch(8));
    let before: Vec<Vec<f32>> = model
        .parameters()
        .iter()
        .map(|p| p.to_vec::<f32>())
        .collect::<Result<_>>()?;
    let mut v = x.to_vec::<f32>()?;
    v[15 * 784] = f32::NAN; // in the second micro-batch
    let bad = Tensor::from_vec(v, [16, 1, 28, 28], &Device::Cpu)?;
    let out = step.step(&bad, &y, &mut opt)?;
    assert!(!out.loss.is_finite());
    for (p, b) in model.parameters().iter().zip(&before) {
        assert_eq!(&p.to_vec::<f32>()?, b);
    }
    Ok(())
}

#[test]
fn the_split_is_off_on_request_and_for_batch_norm() -> Result<()> {
    let m = lenet(1)?;
    let (x, y) = batch(0, 64)?;
    let step = CompiledStep::new(&m, &x, &y)?.with_split(SplitMode::Off);
    assert_eq!(step.micro_batches(64), vec![64]);
    assert!(step.split_summary(64).contains("whole batch"));
    let bn = bn_net::net(1)?;
    let (x, y) = bn_net::batch(0, 8)?;
    let step = CompiledStep::new(&bn, &x, &y)?.with_split(SplitMode::MicroBatch(4));
    assert_eq!(step.micro_batches(8), vec![8]);
    let s = step.split_summary(8);
    assert!(s.contains("not sample-separable"), "{s}");
    Ok(())
}
