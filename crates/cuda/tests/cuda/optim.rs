//! Fused optimizer updates against the CPU (several steps, every option).

use crate::common::{randn, same_on_both};
use mlfw_core::{Device, OptimUpdate, Result, Tensor};

fn run(d: &Device, updates: &[OptimUpdate], n_state: usize) -> Result<Vec<Tensor>> {
    let p = randn(&[37, 5], 1, d)?.copy()?;
    let state: Vec<Tensor> = (0..n_state)
        .map(|i| randn(&[37, 5], 10 + i as u64, d)?.abs_or_self())
        .collect::<Result<_>>()?;
    for (step, u) in updates.iter().enumerate() {
        let g = randn(&[5, 37], 2 + step as u64, d)?.t()?; // strided gradient
        p.optim_update(&g, &state, u)?;
    }
    let mut out = vec![p];
    out.extend(state);
    Ok(out)
}

trait AbsOrSelf {
    fn abs_or_self(self) -> Result<Tensor>;
}
impl AbsOrSelf for Tensor {
    /// Squared-average states must be non-negative.
    fn abs_or_self(self) -> Result<Tensor> {
        self.unary_op(mlfw_core::UnaryOp::Abs)
    }
}

#[test]
fn sgd_adam_rmsprop_adagrad() -> Result<()> {
    let mut cases: Vec<(String, Vec<OptimUpdate>, usize)> = Vec::new();
    for (momentum, nesterov, wd, maximize) in [
        (0.0, false, 0.0, false),
        (0.9, false, 1e-2, false),
        (0.9, true, 0.0, true),
    ] {
        let us = (0..3)
            .map(|s| OptimUpdate::Sgd {
                lr: 0.1,
                momentum,
                dampening: 0.1,
                nesterov,
                weight_decay: wd,
                maximize,
                first_step: s == 0,
            })
            .collect();
        cases.push((
            format!("sgd m={momentum} n={nesterov}"),
            us,
            (momentum != 0.0) as usize,
        ));
    }
    for (amsgrad, decoupled, wd) in [
        (false, false, 0.0),
        (true, false, 1e-2),
        (false, true, 1e-2),
        (true, true, 0.1),
    ] {
        let us = (1..=3)
            .map(|step| OptimUpdate::Adam {
                lr: 1e-2,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: wd,
                amsgrad,
                decoupled,
                maximize: false,
                step,
            })
            .collect();
        cases.push((
            format!("adam ams={amsgrad} w={decoupled}"),
            us,
            2 + amsgrad as usize,
        ));
    }
    for (momentum, centered) in [(0.0, false), (0.9, false), (0.0, true), (0.5, true)] {
        let us = (0..3)
            .map(|_| OptimUpdate::RmsProp {
                lr: 1e-2,
                alpha: 0.99,
                eps: 1e-8,
                weight_decay: 1e-3,
                momentum,
                centered,
                maximize: false,
            })
            .collect();
        cases.push((
            format!("rmsprop m={momentum} c={centered}"),
            us,
            1 + (momentum > 0.0) as usize + centered as usize,
        ));
    }
    let us = (1..=3)
        .map(|step| OptimUpdate::Adagrad {
            lr: 1e-1,
            lr_decay: 1e-2,
            weight_decay: 1e-2,
            eps: 1e-10,
            maximize: false,
            step,
        })
        .collect();
    cases.push(("adagrad".into(), us, 1));
    for (name, us, n_state) in cases {
        same_on_both(&name, 1e-5, 1e-6, |d| run(d, &us, n_state))?;
    }
    Ok(())
}
