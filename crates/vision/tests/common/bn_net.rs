//! The small conv + batch-norm network, its batches and its state as bits, shared by the
//! compiled batch-norm tests (each in its own file: one of them sets `MLFW_FUSED`).

use mlfw_core::{manual_seed, DType, Device, Result, Tensor};
use mlfw_nn::{BatchNorm2d, Conv2d, Conv2dConfig, Flatten, Linear, Module, Relu, Sequential};

/// Conv 3→4 (3×3, padding 1) + BatchNorm2d + ReLU + Linear 256→3, initialised from `seed`.
pub fn net(seed: u64) -> Result<Sequential> {
    manual_seed(seed);
    let dev = Device::Cpu;
    Ok(Sequential::new()
        .append(Conv2d::new(
            3,
            4,
            3,
            Conv2dConfig::default().padding(1),
            &dev,
        )?)
        .append(BatchNorm2d::new_2d(4, &dev)?)
        .append(Relu)
        .append(Flatten::default())
        .append(Linear::new(4 * 8 * 8, 3, true, &dev)?))
}

/// Batch `i`: `n` random `[3, 8, 8]` inputs and labels in 0..3.
pub fn batch(i: u64, n: usize) -> Result<(Tensor, Tensor)> {
    let mut g = mlfw_core::Generator::new(77 + i);
    let x = Tensor::randn_with(0.0, 1.0, [n, 3, 8, 8], DType::F32, &Device::Cpu, &mut g)?;
    let y = Tensor::randint_with(0, 3, [n], &Device::Cpu, &mut g)?;
    Ok((x, y))
}

/// Every parameter and buffer (running mean and variance, batches tracked) as bits.
pub fn state_bits(m: &dyn Module) -> Result<Vec<(String, Vec<u64>)>> {
    let mut all = m.named_parameters();
    all.extend(m.named_buffers());
    all.into_iter()
        .map(|(n, t)| {
            let v = t.to_dtype(DType::F64)?.to_vec::<f64>()?;
            Ok((n, v.iter().map(|x| x.to_bits()).collect()))
        })
        .collect()
}
