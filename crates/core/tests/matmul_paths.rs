//! The CPU matmul's work splits (issue 23): a skinny product with a large transposed right
//! operand (a linear layer's forward at a small batch) computed column-major, and few-row
//! products split by columns over the pool, checked against an f64 reference.

use mlfw_core::{Device, Tensor};

const D: Device = Device::Cpu;

/// Deterministic values in [-1, 1).
fn vals(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect()
}

/// `a [m, k]` times `b [k, n]` (both row-major) in f64.
fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0f64; m * n];
    for r in 0..m {
        for p in 0..k {
            let x = a[r * k + p] as f64;
            for c in 0..n {
                out[r * n + c] += x * b[p * n + c] as f64;
            }
        }
    }
    out
}

fn assert_close(got: &[f32], want: &[f64], k: usize) {
    assert_eq!(got.len(), want.len());
    // Each output sums k products of values below 1: f32 rounding grows about like sqrt(k).
    let tol = 1e-6 * (k as f64).sqrt() * 4.0;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (*g as f64 - w).abs() <= tol * (1.0 + w.abs()),
            "element {i}: {g} vs {w}"
        );
    }
}

#[test]
fn skinny_product_with_transposed_weight_matches_reference() {
    // x [m, k] · Wᵀ with W [n, k]: k·n over 1 M elements, so the column-major path runs;
    // n not a multiple of 16 so the last column block is partial.
    let (m, k, n) = (7, 1100, 1000);
    let x = vals(m * k, 1);
    let w = vals(n * k, 2);
    let mut wt = vec![0f32; k * n];
    for j in 0..n {
        for p in 0..k {
            wt[p * n + j] = w[j * k + p];
        }
    }
    let want = reference(&x, &wt, m, k, n);
    let xt = Tensor::from_vec(x, [m, k], &D).unwrap();
    let wt_view = Tensor::from_vec(w, [n, k], &D).unwrap().t().unwrap();
    let got = xt.matmul(&wt_view).unwrap();
    assert_eq!(got.dims(), &[m, n]);
    assert_close(&got.to_vec::<f32>().unwrap(), &want, k);
    // Batched, the weight broadcast over the batch (stride 0 on the batch dim).
    let xb = xt.unsqueeze(0).unwrap().expand([2, m, k]).unwrap();
    let gotb = xb.matmul(&wt_view).unwrap();
    assert_eq!(gotb.dims(), &[2, m, n]);
    let v = gotb.to_vec::<f32>().unwrap();
    assert_close(&v[..m * n], &want, k);
    assert_close(&v[m * n..], &want, k);
}

#[test]
fn few_row_product_split_by_columns_matches_reference() {
    // m < n and large enough to be split over the pool: by columns (the input gradient of a
    // linear layer, dY · W); and m > n, split by rows.
    for (m, k, n) in [(20, 300, 515), (515, 300, 20)] {
        let a = vals(m * k, 3);
        let b = vals(k * n, 4);
        let want = reference(&a, &b, m, k, n);
        let at = Tensor::from_vec(a, [m, k], &D).unwrap();
        let bt = Tensor::from_vec(b, [k, n], &D).unwrap();
        let got = at.matmul(&bt).unwrap().to_vec::<f32>().unwrap();
        assert_close(&got, &want, k);
    }
}
