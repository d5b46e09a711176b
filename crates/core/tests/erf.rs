//! `Tensor::erf` against `torch.erf` (PyTorch 2.15, CPU) on every float dtype, the
//! special values (±0, ±inf, NaN), strided input, and the error for integer dtypes.

use mlfw_core::{DType, Device, Error, Tensor};

/// Inputs; the expected values below are `torch.erf` of these, per dtype.
const X: [f64; 16] = [
    -6.0,
    -3.0,
    -1.5,
    -0.7,
    -1e-3,
    0.0,
    1e-8,
    0.25,
    0.5,
    1.0,
    1.234,
    2.0,
    3.5,
    5.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
];

/// `torch.erf(torch.tensor(X, dtype=torch.float64))`.
const WANT_F64: [f64; 16] = [
    -1.0,
    -0.9999779095030014,
    -0.9661051464753108,
    -0.6778011938374184,
    -0.0011283787909692365,
    0.0,
    1.1283791670955126e-08,
    0.27632639016823696,
    0.5204998778130465,
    0.8427007929497149,
    0.9190394169576684,
    0.9953222650189527,
    0.9999992569016276,
    0.9999999999984626,
    1.0,
    -1.0,
];

/// `torch.erf(x.float())`.
const WANT_F32: [f32; 16] = [
    -1.0,
    -0.999_977_9,
    -0.966_105_2,
    -0.677_801_2,
    -0.001_128_378_8,
    0.0,
    1.128_379_2e-8,
    0.276_326_4,
    0.520_499_9,
    0.842_700_8,
    0.919_039_4,
    0.995_322_3,
    0.999_999_3,
    1.0,
    1.0,
    -1.0,
];

/// `torch.erf(x.half())` and `torch.erf(x.bfloat16())`, widened (exactly) to f64.
const WANT_F16: [f64; 16] = [
    -1.0,
    -1.0,
    -0.96630859375,
    -0.677734375,
    -0.001129150390625,
    0.0,
    0.0,
    0.2763671875,
    0.5205078125,
    0.8427734375,
    0.9189453125,
    0.9951171875,
    1.0,
    1.0,
    1.0,
    -1.0,
];
const WANT_BF16: [f64; 16] = [
    -1.0,
    -1.0,
    -0.96484375,
    -0.67578125,
    -0.001129150390625,
    0.0,
    0.0,
    0.275390625,
    0.51953125,
    0.84375,
    0.91796875,
    0.99609375,
    1.0,
    1.0,
    1.0,
    -1.0,
];

fn input(dtype: DType) -> Tensor {
    Tensor::from_vec(X.to_vec(), [16], &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

#[test]
fn erf_f64_matches_torch() {
    let got = input(DType::F64).erf().unwrap().to_vec::<f64>().unwrap();
    for (i, (g, w)) in got.iter().zip(WANT_F64).enumerate() {
        assert!((g - w).abs() <= 2e-16 * w.abs(), "x = {}: {g} vs {w}", X[i]);
    }
}

#[test]
fn erf_f32_matches_torch() {
    let got = input(DType::F32).erf().unwrap().to_vec::<f32>().unwrap();
    for (i, (g, w)) in got.iter().zip(WANT_F32).enumerate() {
        // PyTorch's f32 kernel is within an ulp or two; mlfw rounds libm's f64 result once.
        assert!(
            (g - w).abs() <= 2.5e-7 * w.abs(),
            "x = {}: {g} vs {w}",
            X[i]
        );
    }
}

#[test]
fn erf_half_dtypes_match_torch() {
    for (dt, want, ulp) in [
        (DType::F16, WANT_F16, 2f64.powi(-10)),
        (DType::BF16, WANT_BF16, 2f64.powi(-7)),
    ] {
        let got = input(dt).erf().unwrap();
        assert_eq!(got.dtype(), dt);
        let got = got.to_f64_vec().unwrap();
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            // One rounding to the dtype each: equal, or one ulp apart at most. PyTorch's bf16
            // kernel has an absolute error of ~1e-8 near 0 (it gives erf(1e-8) = 0), so allow that.
            let tol = ulp * w.abs() + 2e-8;
            assert!((g - w).abs() <= tol, "{dt} x = {}: {g} vs {w}", X[i]);
        }
    }
}

#[test]
fn erf_keeps_signed_zero_nan_and_strided_views() {
    let x = Tensor::from_vec(
        vec![-0.0f32, f32::NAN, 0.5, -2.0, 1.0, 3.0],
        [2, 3],
        &Device::Cpu,
    )
    .unwrap();
    let y = x.t().unwrap().erf().unwrap();
    assert_eq!(y.dims(), [3, 2]);
    let v = y.to_vec::<f32>().unwrap();
    let dense = x.t().unwrap().contiguous().unwrap().erf().unwrap();
    let dense = dense.to_vec::<f32>().unwrap();
    // Transposed: [[-0, -2], [nan, 1], [0.5, 3]].
    assert!(v[0] == 0.0 && v[0].is_sign_negative());
    assert!(v[2].is_nan());
    for i in [1, 3, 4, 5] {
        assert_eq!(v[i].to_bits(), dense[i].to_bits());
    }
    assert!((v[1] + 0.995_322_3).abs() < 1e-7 && (v[4] - 0.520_499_9).abs() < 1e-7);
}

#[test]
fn erf_of_integers_is_an_error() {
    let x = Tensor::from_vec(vec![1i64, -2, 3], [3], &Device::Cpu).unwrap();
    match x.erf() {
        Err(Error::UnsupportedDType { dtype, .. }) => assert_eq!(dtype, DType::I64),
        other => panic!("expected UnsupportedDType, got {other:?}"),
    }
}
