//! Uploads through the CUDA backend's staging area (page-locked buffer, copy stream, event)
//! give the same tensors as `to_device`, whatever the size order (the buffer grows and is
//! reused), layout or dtype, and ops queued after an upload read the uploaded data.

use mlfw_core::{DType, Device, Tensor};

#[test]
fn staged_uploads_equal_plain_copies() -> mlfw_core::Result<()> {
    let Some(gpu) = crate::common::cuda() else {
        return Ok(());
    };
    let mut staging = gpu.backend()?.staging()?;
    assert_eq!(staging.device(), gpu);
    // Small, large (the buffer grows), small again (reused), a transposed view, i64 labels.
    let big = crate::common::randn(&[64, 1, 28, 28], 1, &Device::Cpu)?;
    let small = crate::common::randn(&[3, 5], 2, &Device::Cpu)?;
    let labels = Tensor::from_vec((0..64i64).collect::<Vec<_>>(), [64], &Device::Cpu)?;
    let uploads = [
        small.clone(),
        big.clone(),
        small.t()?,
        labels.clone(),
        big.clone(),
    ];
    let mut staged = Vec::new();
    for x in &uploads {
        let s = x.to_device_staged(staging.as_mut())?;
        assert_eq!(s.device(), gpu);
        assert_eq!(s.dims(), x.dims());
        staged.push(s);
    }
    for (x, s) in uploads.iter().zip(&staged) {
        let back = s.to(&Device::Cpu)?;
        match x.dtype() {
            DType::I64 => assert_eq!(back.to_vec::<i64>()?, x.to_vec::<i64>()?),
            _ => assert_eq!(back.to_vec::<f32>()?, x.contiguous()?.to_vec::<f32>()?),
        }
    }
    // An op queued right after an upload sees its data (the device's stream waited for it).
    let doubled = big.to_device_staged(staging.as_mut())?.mul_scalar(2.0)?;
    assert_eq!(
        doubled.to(&Device::Cpu)?.to_vec::<f32>()?,
        big.mul_scalar(2.0)?.to_vec::<f32>()?
    );
    // Buffers uploaded on the copy stream are freed after the ops reading them.
    drop(staged);
    gpu.backend()?.synchronize()?;
    Ok(())
}
