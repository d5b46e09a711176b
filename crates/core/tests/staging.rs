//! The staging hook of the backend trait: `Tensor::to_device_staged` hands the staging area
//! the tensor's elements in logical order (views made contiguous), once per tensor, and
//! keeps shape and values; a tensor already on the staging's device is not copied. The
//! default staging of a backend is its plain `from_cpu` copy.

use mlfw_core::backend::Storage;
use mlfw_core::{CpuStorage, DType, Device, Result, Staging, Tensor};

/// A staging area that pretends to target `cuda:7`: it records every upload and keeps the
/// data on the CPU.
struct Recording {
    uploads: Vec<Vec<f32>>,
}

impl Staging for Recording {
    fn device(&self) -> Device {
        Device::Cuda(7)
    }
    fn upload(&mut self, data: CpuStorage) -> Result<Storage> {
        let t = Tensor::from_cpu_storage(data.clone(), [data.len()], &Device::Cpu)?;
        self.uploads.push(t.to_vec::<f32>()?);
        Device::Cpu.backend()?.from_cpu(data)
    }
}

#[test]
fn staged_upload_passes_contiguous_elements_once() -> Result<()> {
    let x = Tensor::from_vec(
        (0..6).map(|v| v as f32).collect::<Vec<_>>(),
        [2, 3],
        &Device::Cpu,
    )?;
    let view = x.t()?; // [3, 2], strided
    let mut st = Recording { uploads: vec![] };
    let y = view.to_device_staged(&mut st)?;
    assert_eq!(st.uploads, vec![vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]]);
    assert_eq!(y.dims(), &[3, 2]);
    assert_eq!(y.to_vec::<f32>()?, view.contiguous()?.to_vec::<f32>()?);
    Ok(())
}

#[test]
fn a_tensor_on_the_staging_device_is_not_copied() -> Result<()> {
    let x = Tensor::zeros([4], DType::F32, &Device::Cpu)?;
    let mut st = Device::Cpu.backend()?.staging()?;
    assert_eq!(st.device(), Device::Cpu);
    let y = x.to_device_staged(st.as_mut())?;
    assert_eq!(y.to_vec::<f32>()?, vec![0.0; 4]);
    Ok(())
}
