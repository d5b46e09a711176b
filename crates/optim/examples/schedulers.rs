//! Learning-rate schedules as a user composes them: StepLR, a custom schedule written as a
//! trait impl, linear warm-up followed by cosine decay (SequentialLR), OneCycle with its
//! momentum cycling, and a scheduler's state saved and restored mid-run.
//!
//! `cargo run -p mlfw-optim --example schedulers`

use mlfw_core::{Device, Result, Tensor};
use mlfw_optim::sched::{
    CosineAnnealingLR, LinearLR, LrSchedule, OneCycleLR, Scheduler, SequentialLR, StepLR,
};
use mlfw_optim::{Optimizer, Sgd, SgdConfig};

/// Inverse square-root decay after `warmup` epochs (the Transformer's schedule, shape only).
struct InverseSqrt {
    warmup: u64,
}

impl LrSchedule for InverseSqrt {
    fn name(&self) -> &'static str {
        "InverseSqrt"
    }
    fn lr(&self, base: f64, t: u64) -> Result<f64> {
        let t = (t + 1) as f64;
        let w = self.warmup as f64;
        Ok(base * (t / w).min((w / t).sqrt()))
    }
}

/// The rates a schedule gives over `epochs` epochs (one `step` per epoch).
fn trace(schedule: impl LrSchedule + 'static, epochs: usize) -> Result<Vec<f64>> {
    let p = Tensor::zeros([1], mlfw_core::DType::F32, &Device::Cpu)?.requires_grad_(true)?;
    let mut opt = Sgd::new(vec![p], SgdConfig::new(0.1).momentum(0.9))?;
    let mut sched = Scheduler::new(schedule, &mut opt)?;
    let mut lrs = Vec::new();
    for _ in 0..epochs {
        lrs.push(opt.lr());
        sched.step(&mut opt)?;
    }
    Ok(lrs)
}

fn show(name: &str, lrs: &[f64]) {
    let s: Vec<String> = lrs.iter().map(|l| format!("{l:.4}")).collect();
    println!("{name:<22} {}", s.join(" "));
}

fn main() -> Result<()> {
    show("StepLR(3, 0.5)", &trace(StepLR::new(3, 0.5), 10)?);
    show("InverseSqrt(4)", &trace(InverseSqrt { warmup: 4 }, 10)?);
    let warmup_cosine = SequentialLR::new(
        vec![
            Box::new(LinearLR {
                start_factor: 0.1,
                end_factor: 1.0,
                total_iters: 3,
            }),
            Box::new(CosineAnnealingLR {
                t_max: 7,
                eta_min: 0.0,
            }),
        ],
        vec![3],
    )?;
    show("warm-up + cosine", &trace(warmup_cosine, 10)?);
    show("OneCycle(max 1.0)", &trace(OneCycleLR::new(1.0, 10), 10)?);

    // Resume: the scheduler's state is a JSON string; restore it into a fresh scheduler.
    let p = Tensor::zeros([1], mlfw_core::DType::F32, &Device::Cpu)?.requires_grad_(true)?;
    let mut opt = Sgd::new(vec![p], SgdConfig::new(0.1))?;
    let mut sched = Scheduler::new(StepLR::new(2, 0.1), &mut opt)?;
    for _ in 0..3 {
        sched.step(&mut opt)?;
    }
    let saved = sched.state_dict();
    let mut resumed = Scheduler::new(StepLR::new(2, 0.1), &mut opt)?;
    resumed.load_state_dict(&saved, &mut opt)?;
    println!(
        "restored at epoch {}: lr {:.4} (saved {saved})",
        resumed.last_epoch(),
        opt.lr()
    );
    Ok(())
}
