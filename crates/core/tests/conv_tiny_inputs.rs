//! Convolutions whose kernel overhangs a tiny input (EfficientNet's 5×5 taps on 2×2 and 1×1
//! feature maps): every size, padding and stride against a direct sum.

use mlfw_core::{Conv2dParams, Device, Tensor};

/// The direct definition: `y[o][i][j] = Σ x[c][i·s + a − p][j·s + b − p] · w[o][c][a][b]`.
fn naive(
    x: &[f32],
    (c, h, w): (usize, usize, usize),
    wt: &[f32],
    o: usize,
    k: usize,
    s: usize,
    p: usize,
) -> Vec<f32> {
    let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
    let mut y = vec![0f32; o * oh * ow];
    for oc in 0..o {
        for i in 0..oh {
            for j in 0..ow {
                let mut acc = 0f32;
                for ic in 0..c {
                    for a in 0..k {
                        for b in 0..k {
                            let (r, q) = (
                                (i * s + a) as isize - p as isize,
                                (j * s + b) as isize - p as isize,
                            );
                            if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < w {
                                acc += x[(ic * h + r as usize) * w + q as usize]
                                    * wt[((oc * c + ic) * k + a) * k + b];
                            }
                        }
                    }
                }
                y[(oc * oh + i) * ow + j] = acc;
            }
        }
    }
    y
}

#[test]
fn kernels_larger_than_the_input_match_the_direct_sum() {
    let (c, o) = (2, 3);
    for side in 1..=3 {
        for (k, p) in [(3, 1), (5, 2), (5, 1), (3, 2)] {
            for s in [1, 2, 3] {
                if side + 2 * p < k {
                    continue;
                }
                let xv: Vec<f32> = (0..c * side * side)
                    .map(|i| (i as f32 * 0.7).sin())
                    .collect();
                let wv: Vec<f32> = (0..o * c * k * k).map(|i| (i as f32 * 0.3).cos()).collect();
                let x = Tensor::from_vec(xv.clone(), [1, c, side, side], &Device::Cpu).unwrap();
                let w = Tensor::from_vec(wv.clone(), [o, c, k, k], &Device::Cpu).unwrap();
                let prm = Conv2dParams {
                    padding: (p, p),
                    stride: (s, s),
                    ..Default::default()
                };
                let y = x.conv2d(&w, None, prm).unwrap().to_vec::<f32>().unwrap();
                let want = naive(&xv, (c, side, side), &wv, o, k, s, p);
                assert_eq!(y.len(), want.len());
                for (a, b) in y.iter().zip(&want) {
                    assert!(
                        (a - b).abs() < 1e-4,
                        "side {side} k {k} p {p} s {s}: {y:?} vs {want:?}"
                    );
                }
            }
        }
    }
}
