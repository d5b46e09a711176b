//! A compiled step of a network with batch norm against *default* eager training, which
//! runs the fused batch-norm kernels. The capture records those kernels as graph ops
//! (`batch_norm`, `batch_norm_backward`), so the compiled step is bit-identical to eager
//! (until 2026-11-30 the capture recorded the composite formula: 4.0e-7 relative after 30
//! steps). `compiled_batch_norm.rs` checks the composite formula against `MLFW_FUSED=0`.

#[path = "common/bn_net.rs"]
mod bn_net;

use bn_net::{batch, net, state_bits};
use mlfw_autograd::Backward;
use mlfw_core::Result;
use mlfw_nn::{functional as F, Module};
use mlfw_optim::{CompiledStep, Optimizer, Sgd, SgdConfig};

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
    let (se, sc) = (state_bits(&eager)?, state_bits(&compiled)?);
    assert_eq!(se.len(), sc.len());
    for ((name, e), (_, c)) in se.iter().zip(&sc) {
        assert!(e == c, "`{name}` differs from eager after 30 steps");
    }
    Ok(())
}
