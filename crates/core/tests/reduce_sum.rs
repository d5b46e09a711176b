//! The lane-split, threaded full sum agrees with an exact sequential sum.

use mlfw_core::{DType, Device, Tensor};

#[test]
fn long_sums_match_sequential() {
    for n in [7usize, 8, 1000, (1 << 17) + 3, 1 << 20] {
        let v: Vec<f32> = (0..n).map(|i| ((i % 97) as f32) * 0.01 - 0.3).collect();
        let want: f64 = v.iter().map(|&x| x as f64).sum();
        let t = Tensor::from_vec(v, [n], &Device::Cpu).unwrap();
        let got = t.sum_all().unwrap().item::<f32>().unwrap() as f64;
        assert!(
            (got - want).abs() <= 1e-6 * want.abs().max(1.0),
            "n={n}: {got} vs {want}"
        );
    }
    let ones = Tensor::ones([3, 1 << 18], DType::F64, &Device::Cpu).unwrap();
    let rows = ones.sum(&[1], false).unwrap().to_vec::<f64>().unwrap();
    assert_eq!(rows, vec![(1 << 18) as f64; 3]);
}
