//! Opening the device: a clean error without CUDA (this runs everywhere), and device
//! mismatches / out-of-memory reported as errors on a GPU.

use mlfw_core::backend::BackendStorage;
use mlfw_core::{DType, Device, Layout, Tensor};

#[test]
fn device_is_an_error_not_a_panic_without_cuda() {
    match mlfw_cuda::device(0) {
        Ok(d) => {
            assert_eq!(d, Device::Cuda(0));
            assert!(mlfw_cuda::is_available());
            println!("{}", mlfw_cuda::device_info(0).unwrap());
        }
        Err(e) => {
            let m = e.to_string();
            println!("device(0) -> {m}");
            assert!(m.starts_with("CUDA is not available"), "{m}");
            assert!(!m.contains('\n'), "one line: {m}");
            assert!(!mlfw_cuda::is_available());
            // The device stays unusable through core, with an error too.
            assert!(Tensor::zeros([2], DType::F32, &Device::Cuda(0)).is_err());
        }
    }
}

#[test]
fn mixing_devices_is_an_error_naming_both() -> mlfw_core::Result<()> {
    let Some(gpu) = crate::common::cuda() else {
        return Ok(());
    };
    let a = Tensor::ones([3], DType::F32, &gpu)?;
    let b = Tensor::ones([3], DType::F32, &Device::Cpu)?;
    let e = a.add(&b).unwrap_err().to_string();
    assert!(e.contains("cuda:0") && e.contains("cpu"), "{e}");
    // The storage level checks too (another backend's buffer is refused).
    let l = Layout::contiguous([3]);
    let host = mlfw_core::CpuStorage::F32(vec![1.0; 3]);
    let e = a
        .storage()
        .binary(
            &l,
            &host as &dyn BackendStorage,
            &l,
            mlfw_core::BinaryOp::Add,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("cuda:0") && e.contains("cpu"), "{e}");
    Ok(())
}

#[test]
fn out_of_memory_is_an_error_with_the_size() -> mlfw_core::Result<()> {
    let Some(gpu) = crate::common::cuda() else {
        return Ok(());
    };
    let e = Tensor::zeros([1usize << 40], DType::F32, &gpu)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("out of memory") && e.contains("4398046511104 bytes"),
        "{e}"
    );
    // The device still works afterwards.
    let x = Tensor::ones([4], DType::F32, &gpu)?
        .sum_all()?
        .item::<f32>()?;
    assert_eq!(x, 4.0);
    Ok(())
}

#[test]
fn round_trip_every_dtype() -> mlfw_core::Result<()> {
    let Some(gpu) = crate::common::cuda() else {
        return Ok(());
    };
    let t = Tensor::arange(-3.0, 5.0, 1.0, DType::F64, &Device::Cpu)?;
    for dt in [
        DType::U8,
        DType::Bool,
        DType::I64,
        DType::F16,
        DType::BF16,
        DType::F32,
        DType::F64,
    ] {
        let c = t.to_dtype(dt)?;
        let back = c.to(&gpu)?.to(&Device::Cpu)?;
        assert_eq!(c.to_f64_vec()?, back.to_f64_vec()?, "{dt}");
        let full = Tensor::full(-2.5, [5], dt, &gpu)?;
        assert_eq!(
            full.to(&Device::Cpu)?.to_f64_vec()?,
            Tensor::full(-2.5, [5], dt, &Device::Cpu)?.to_f64_vec()?,
            "{dt}"
        );
    }
    Ok(())
}
