//! A complete small training loop: an MLP on a synthetic two-class problem with AdamW,
//! gradient clipping, a warm-up + cosine schedule, and a checkpoint of model and optimizer.
//!
//! `cargo run -p mlfw-optim --example train_mlp`

use mlfw_autograd::Backward;
use mlfw_core::{DType, Device, Generator, Result, Tensor};
use mlfw_nn::{functional as F, Linear, Module, Relu, Sequential};
use mlfw_optim::sched::{CosineAnnealingLR, LinearLR, LrSchedule, Scheduler, SequentialLR};
use mlfw_optim::{clip_grad_norm, AdamConfig, AdamW, Optimizer, OptimizerState};

fn main() -> Result<()> {
    let device = Device::Cpu;
    let mut g = Generator::new(42);
    let model = Sequential::new()
        .append(Linear::new_with(2, 32, true, &device, &mut g)?)
        .append(Relu)
        .append(Linear::new_with(32, 2, true, &device, &mut g)?);

    // Points inside the unit circle are class 1.
    let x = Tensor::rand_with(-1.5, 1.5, [256, 2], DType::F32, &device, &mut g)?;
    let r2 = x.square()?.sum(&[1], false)?;
    let y = r2
        .cmp_scalar(1.0, mlfw_core::CmpOp::Lt)?
        .to_dtype(DType::I64)?;

    let mut opt = AdamW::new(model.parameters(), AdamConfig::adamw(0.02))?;
    let schedules: Vec<Box<dyn LrSchedule>> = vec![
        Box::new(LinearLR {
            start_factor: 0.1,
            end_factor: 1.0,
            total_iters: 10,
        }),
        Box::new(CosineAnnealingLR {
            t_max: 190,
            eta_min: 1e-4,
        }),
    ];
    let mut sched = Scheduler::new(SequentialLR::new(schedules, vec![10])?, &mut opt)?;

    for step in 0..200 {
        opt.zero_grad();
        let loss = F::cross_entropy(&model.forward(&x)?, &y)?;
        F::check_finite(&loss, &format!("step {step}"))?;
        loss.backward()?;
        let norm = clip_grad_norm(&model.parameters(), 1.0, 2.0)?;
        opt.step()?;
        sched.step(&mut opt)?;
        if step % 40 == 0 {
            println!(
                "step {step:>3}  loss {:.4}  grad norm {norm:.3}  lr {:.5}",
                loss.item_f64()?,
                opt.lr()
            );
        }
    }
    let pred = model.forward(&x)?.argmax(1, false)?;
    println!("train accuracy {:.3}", pred.count_eq(&y)? / 256.0);

    let dir = std::env::temp_dir();
    model.save(&dir.join("mlp.safetensors"))?;
    opt.state_dict()?.save(dir.join("mlp.optim.safetensors"))?;
    let mut resumed = AdamW::new(model.parameters(), AdamConfig::adamw(0.02))?;
    resumed.load_state_dict(&OptimizerState::load(dir.join("mlp.optim.safetensors"))?)?;
    println!(
        "checkpoint written; resumed optimizer lr {:.5}",
        resumed.lr()
    );
    Ok(())
}
