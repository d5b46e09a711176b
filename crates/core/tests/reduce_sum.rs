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

#[test]
fn sums_around_a_kept_middle_run_match_naive() {
    // (dims, reduced): NCHW over [0, 2, 3], a kept run of two dims, and large planes.
    let cases: [(&[usize], &[usize]); 4] = [
        (&[4, 5, 6, 7], &[0, 2, 3]),
        (&[3, 4, 5, 6], &[0, 3]),
        (&[2, 3, 4], &[2]),
        (&[3, 2, 200, 300], &[0, 2, 3]),
    ];
    for (dims, red) in cases {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1009) as f32 * 1e-3 - 0.5)
            .collect();
        let t = Tensor::from_vec(v.clone(), dims.to_vec(), &Device::Cpu).unwrap();
        let red_i: Vec<isize> = red.iter().map(|&d| d as isize).collect();
        let got = t.sum(&red_i, false).unwrap().to_vec::<f32>().unwrap();
        // Naive: walk every element, accumulate into the index of its kept dims.
        let kept: Vec<usize> = (0..dims.len()).filter(|d| !red.contains(d)).collect();
        let out_n: usize = kept.iter().map(|&d| dims[d]).product();
        let mut want = vec![0f64; out_n];
        for (flat, &x) in v.iter().enumerate() {
            let (mut rem, mut idx) = (flat, vec![0; dims.len()]);
            for d in (0..dims.len()).rev() {
                idx[d] = rem % dims[d];
                rem /= dims[d];
            }
            let o = kept.iter().fold(0, |acc, &d| acc * dims[d] + idx[d]);
            want[o] += x as f64;
        }
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (*g as f64 - w).abs() <= 1e-5 * w.abs().max(1.0),
                "{dims:?} over {red:?}: {g} vs {w}"
            );
        }
    }
}
