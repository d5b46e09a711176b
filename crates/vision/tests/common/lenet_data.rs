//! LeNet-5 built from a seed and a fixed synthetic MNIST-shaped data set, shared by the
//! compiled-step tests (`compiled_step.rs`, `compiled_split.rs`).

use mlfw_core::{manual_seed, DType, Device, Result, Tensor};
use mlfw_vision::models::LeNet5;

/// The global generator is shared by the tests running in parallel: seeding and building
/// happen under one lock, so the same seed gives the same weights.
static INIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// LeNet-5 (10 classes, 1 channel) initialised from `seed`.
pub fn lenet(seed: u64) -> Result<LeNet5> {
    let _g = INIT.lock().unwrap_or_else(|e| e.into_inner());
    manual_seed(seed);
    LeNet5::new(10, 1, &Device::Cpu)
}

/// Batch `i` of the data set numbered `set`: `n` images `[n, 1, 28, 28]` of N(0, 1) noise
/// and `n` random labels in 0..10, the same on every call.
pub fn batch_of(set: u64, i: u64, n: usize) -> Result<(Tensor, Tensor)> {
    let mut g = mlfw_core::Generator::new(set + i);
    let x = Tensor::randn_with(0.0, 1.0, [n, 1, 28, 28], DType::F32, &Device::Cpu, &mut g)?;
    let y = Tensor::randint_with(0, 10, [n], &Device::Cpu, &mut g)?;
    Ok((x, y))
}
