//! Training throughput of ResNet-18 (CIFAR variant) on the CPU: batch 32 of random 3×32×32
//! images, cross-entropy, SGD with momentum 0.9; prints the median images/s of the timed steps
//! after warm-up. PyTorch's figure for the same work: `python bench/pytorch_resnet.py`.
//!
//! ```text
//! cargo run --release -p mlfw-vision --example bench_resnet [-- --steps 10 --warmup 2 --batch 32]
//! ```

use mlfw_autograd::Backward;
use mlfw_core::{DType, Device, Generator, Result, Tensor};
use mlfw_nn::{functional as F, Module};
use mlfw_optim::{Optimizer, Sgd, SgdConfig};
use mlfw_vision::models::ResNet;
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<()> {
    // As the `mlfw` binary does: reuse freed tensor buffers instead of fresh page faults.
    mlfw_core::cpu::tune_allocator();
    let (steps, warmup, batch) = (
        arg("--steps", 10).max(1),
        arg("--warmup", 2),
        arg("--batch", 32).max(1),
    );
    let dev = Device::Cpu;
    mlfw_core::manual_seed(0);
    let model = ResNet::resnet18_cifar(10, 3, &dev)?;
    let mut opt = Sgd::new(model.parameters(), SgdConfig::new(0.01).momentum(0.9))?;
    let mut g = Generator::new(1);
    let x = Tensor::randn_with(0.0, 1.0, [batch, 3, 32, 32], DType::F32, &dev, &mut g)?;
    let y = Tensor::randint_with(0, 10, [batch], &dev, &mut g)?;
    let mut rates = Vec::new();
    for step in 0..warmup + steps {
        let t0 = Instant::now();
        opt.zero_grad();
        let loss = F::cross_entropy(&model.forward(&x)?, &y)?;
        let t_fwd = t0.elapsed().as_secs_f64();
        loss.backward()?;
        let t_bwd = t0.elapsed().as_secs_f64();
        opt.step()?;
        let dt = t0.elapsed().as_secs_f64();
        let rate = batch as f64 / dt;
        println!(
            "step {step:2}: loss {:.4}, {dt:.3} s (forward {t_fwd:.3}, backward {:.3}, step {:.3}), {rate:.1} images/s",
            loss.item_f64()?,
            t_bwd - t_fwd,
            dt - t_bwd
        );
        if step >= warmup {
            rates.push(rate);
        }
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "ResNet-18 (CIFAR) training, batch {batch}: median {median:.1} images/s over {} steps \
         (PyTorch: bench/pytorch_resnet.py)",
        rates.len()
    );
    Ok(())
}
