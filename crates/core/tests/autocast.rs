//! Autocast scopes: which ops run in 16 bits, which in f32, promotion, and scope nesting.

use mlfw_core::autocast::{autocast, autocast_dtype, disable_autocast};
use mlfw_core::{Conv2dParams, DType, Device, Tensor};

fn t(shape: &[usize]) -> Tensor {
    Tensor::randn(0.0, 1.0, shape, DType::F32, &Device::Cpu).unwrap()
}

#[test]
fn matmul_and_conv_run_in_16_bits_the_sensitive_ops_in_f32() {
    for lp in [DType::BF16, DType::F16] {
        let _amp = autocast(lp).unwrap();
        let y = t(&[4, 3]).matmul(&t(&[3, 5])).unwrap();
        assert_eq!(y.dtype(), lp);
        let c = t(&[1, 2, 6, 6])
            .conv2d(&t(&[3, 2, 3, 3]), Some(&t(&[3])), Conv2dParams::default())
            .unwrap();
        assert_eq!(c.dtype(), lp, "bias joins the convolution's dtype");
        assert_eq!(y.softmax(1).unwrap().dtype(), DType::F32);
        assert_eq!(y.log_softmax(1).unwrap().dtype(), DType::F32);
        assert_eq!(y.sum(&[1], false).unwrap().dtype(), DType::F32);
        assert_eq!(y.exp().unwrap().dtype(), DType::F32);
        assert_eq!(y.relu().unwrap().dtype(), lp, "relu stays in 16 bits");
        assert_eq!(
            y.add(&t(&[5])).unwrap().dtype(),
            DType::F32,
            "promotes to f32"
        );
    }
    assert_eq!(t(&[2, 2]).matmul(&t(&[2, 2])).unwrap().dtype(), DType::F32);
}

#[test]
fn scopes_nest_and_restore() {
    assert_eq!(autocast_dtype(), None);
    {
        let _a = autocast(DType::BF16).unwrap();
        {
            let _off = disable_autocast();
            assert_eq!(autocast_dtype(), None);
        }
        assert_eq!(autocast_dtype(), Some(DType::BF16));
    }
    assert_eq!(autocast_dtype(), None);
    assert!(autocast(DType::F32).is_err());
}

#[test]
fn float_dtypes_promote_outside_autocast_too() {
    let a = t(&[3]).to_dtype(DType::BF16).unwrap();
    let b = t(&[3]).to_dtype(DType::F16).unwrap();
    assert_eq!(a.add(&b).unwrap().dtype(), DType::F32);
    assert_eq!(
        a.mul(&t(&[3]).to_dtype(DType::F64).unwrap())
            .unwrap()
            .dtype(),
        DType::F64
    );
    let i = Tensor::from_vec(vec![1i64, 2, 3], [3], &Device::Cpu).unwrap();
    assert!(a.add(&i).is_err(), "integers do not promote");
}
