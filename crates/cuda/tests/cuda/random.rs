//! Random tensors: the GPU draws the same numbers as the CPU for the same generator state.

use mlfw_core::{DType, Device, Generator, Result, Tensor};

#[test]
fn uniform_and_normal_match_the_cpu() -> Result<()> {
    let Some(gpu) = crate::common::cuda() else {
        return Ok(());
    };
    for dt in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        for (seed, n) in [(0u64, 1usize), (7, 1000), (123, 100_003)] {
            let mut gc = Generator::new(seed);
            let mut gg = Generator::new(seed);
            let c = Tensor::rand_with(-2.0, 3.0, [n], dt, &Device::Cpu, &mut gc)?;
            let g = Tensor::rand_with(-2.0, 3.0, [n], dt, &gpu, &mut gg)?;
            // Uniform numbers use only integer ops and one rounding: bit-identical.
            crate::common::assert_close(&format!("rand {dt} {seed}"), &c, &g, 0.0, 0.0)?;
            let c = Tensor::randn_with(0.5, 2.0, [n], dt, &Device::Cpu, &mut gc)?;
            let g = Tensor::randn_with(0.5, 2.0, [n], dt, &gpu, &mut gg)?;
            // Normals go through log/cos, whose last bit may differ between libm and CUDA.
            let tol = if dt == DType::F64 { 1e-13 } else { 1e-2 };
            crate::common::assert_close(&format!("randn {dt} {seed}"), &c, &g, tol, tol)?;
            assert_eq!(gc.state(), gg.state());
        }
    }
    Ok(())
}
