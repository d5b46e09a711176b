//! A compiled training step of a network with batch norm: the running statistics are state
//! writes of the captured graph, performed by every compiled step. Compared bit for bit
//! with eager training run with `MLFW_FUSED=0` (the composite batch-norm formula, which is
//! what a capture records: the fused batch-norm kernel computes the same maths in another
//! order, so with it eager and compiled agree only to rounding). One test in this file, so
//! the environment variable is this process's alone.

#[path = "common/bn_net.rs"]
mod bn_net;

use bn_net::{batch, net, state_bits};
use mlfw_autograd::Backward;
use mlfw_core::Result;
use mlfw_nn::{functional as F, Module};
use mlfw_optim::{CompiledStep, Optimizer, Sgd, SgdConfig};

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
