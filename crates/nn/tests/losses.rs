//! Losses against hand-computed values (PyTorch's formulas).

use mlfw_autograd::Backward;
use mlfw_core::{DType, Device, Tensor};
use mlfw_nn::functional as F;
use mlfw_nn::{CrossEntropyLoss, CrossEntropyOptions, Reduction};

fn t(v: Vec<f32>, s: &[usize]) -> Tensor {
    Tensor::from_vec(v, s.to_vec(), &Device::Cpu).unwrap()
}
fn idx(v: Vec<i64>) -> Tensor {
    let n = v.len();
    Tensor::from_vec(v, [n], &Device::Cpu).unwrap()
}
fn val(x: &Tensor) -> f64 {
    x.item_f64().unwrap()
}
fn lse(r: &[f64]) -> f64 {
    r.iter().map(|v| v.exp()).sum::<f64>().ln()
}

const X: [f32; 6] = [1.0, 2.0, 0.5, -1.0, 0.0, 3.0];

#[test]
fn cross_entropy_weights_ignore_smoothing() {
    let x = t(X.to_vec(), &[2, 3]);
    let r0 = [1.0, 2.0, 0.5];
    let r1 = [-1.0, 0.0, 3.0];
    let (l0, l1) = (lse(&r0) - 2.0, lse(&r1) - (-1.0));
    let y = idx(vec![1, 0]);
    assert!((val(&F::cross_entropy(&x, &y).unwrap()) - (l0 + l1) / 2.0).abs() < 1e-6);
    let w = t(vec![1.0, 3.0, 1.0], &[3]);
    let o = CrossEntropyOptions {
        weight: Some(w.clone()),
        ..Default::default()
    };
    let got = val(&F::cross_entropy_with(&x, &y, &o).unwrap());
    assert!(
        (got - (3.0 * l0 + 1.0 * l1) / 4.0).abs() < 1e-6,
        "weighted mean divides by Σw[t]"
    );
    let ign = idx(vec![1, -100]);
    assert!((val(&F::cross_entropy(&x, &ign).unwrap()) - l0).abs() < 1e-6);
    let none = CrossEntropyLoss::new()
        .reduction(Reduction::None)
        .forward(&x, &y)
        .unwrap();
    assert_eq!(none.dims(), &[2]);
    let eps = 0.2;
    let s0: f64 = r0.iter().map(|v| lse(&r0) - v).sum();
    let s1: f64 = r1.iter().map(|v| lse(&r1) - v).sum();
    let expect = (1.0 - eps) * (l0 + l1) / 2.0 + eps / 3.0 * (s0 + s1) / 2.0;
    let got = val(&CrossEntropyLoss::new()
        .label_smoothing(eps)
        .forward(&x, &y)
        .unwrap());
    assert!((got - expect).abs() < 1e-6);
    // weighted smoothing: smooth term Σ_c w_c·(-logp_c), normalised by Σ w[t]
    let o = CrossEntropyOptions {
        weight: Some(w),
        label_smoothing: eps,
        ..Default::default()
    };
    let sw0: f64 = r0
        .iter()
        .zip([1.0, 3.0, 1.0])
        .map(|(v, w)| w * (lse(&r0) - v))
        .sum();
    let sw1: f64 = r1
        .iter()
        .zip([1.0, 3.0, 1.0])
        .map(|(v, w)| w * (lse(&r1) - v))
        .sum();
    let expect = (1.0 - eps) * (3.0 * l0 + l1) / 4.0 + eps / 3.0 * (sw0 + sw1) / 4.0;
    assert!((val(&F::cross_entropy_with(&x, &y, &o).unwrap()) - expect).abs() < 1e-6);
    // probability targets
    let p = t(vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0], &[2, 3]);
    assert!((val(&F::cross_entropy(&x, &p).unwrap()) - (l0 + l1) / 2.0).abs() < 1e-6);
}

#[test]
fn cross_entropy_spatial_and_errors() {
    let x = Tensor::randn(0.0, 1.0, [2, 3, 4], DType::F32, &Device::Cpu).unwrap();
    let y = Tensor::from_vec(vec![0i64, 1, 2, 0, 1, 1, 2, 0], [2, 4], &Device::Cpu).unwrap();
    let flat = x.permute(&[0, 2, 1]).unwrap().reshape([8, 3]).unwrap();
    let a = val(&F::cross_entropy(&x, &y).unwrap());
    let b = val(&F::cross_entropy(&flat, &y.reshape([8]).unwrap()).unwrap());
    assert!((a - b).abs() < 1e-6);
    let e = F::cross_entropy(&t(X.to_vec(), &[2, 3]), &idx(vec![1, 3])).unwrap_err();
    assert!(e.to_string().contains("out of bounds"), "{e}");
    let e = F::cross_entropy(&t(X.to_vec(), &[2, 3]), &idx(vec![1, 0, 2])).unwrap_err();
    assert!(
        e.to_string().contains("[2, 3]") && e.to_string().contains("[3]"),
        "{e}"
    );
}

#[test]
fn nll_and_regression_losses() {
    let lp = t(X.to_vec(), &[2, 3]);
    assert!((val(&F::nll_loss(&lp, &idx(vec![2, 1])).unwrap()) + 0.25).abs() < 1e-7);
    let a = t(vec![0.0, 2.0, -1.0], &[3]);
    let b = t(vec![0.5, 0.0, -1.0], &[3]);
    assert!((val(&F::mse_loss(&a, &b, Reduction::Mean).unwrap()) - 4.25 / 3.0).abs() < 1e-6);
    assert!((val(&F::l1_loss(&a, &b, Reduction::Sum).unwrap()) - 2.5).abs() < 1e-6);
    // |d| = 0.5 < 1: 0.5*0.25 = 0.125; |d| = 2: 2 - 0.5 = 1.5
    assert!((val(&F::smooth_l1_loss(&a, &b, 1.0, Reduction::Sum).unwrap()) - 1.625).abs() < 1e-6);
    assert!(F::mse_loss(&a, &t(vec![1.0, 2.0], &[2]), Reduction::Mean).is_err());
}

#[test]
fn binary_cross_entropies() {
    let p = t(vec![0.8, 0.1], &[2]);
    let y = t(vec![1.0, 0.0], &[2]);
    let expect = -((0.8f64).ln() + (0.9f64).ln()) / 2.0;
    assert!(
        (val(&F::binary_cross_entropy(&p, &y, None, Reduction::Mean).unwrap()) - expect).abs()
            < 1e-6
    );
    let zero = t(vec![0.0], &[1]);
    let one = t(vec![1.0], &[1]);
    assert!(
        (val(&F::binary_cross_entropy(&zero, &one, None, Reduction::Sum).unwrap()) - 100.0).abs()
            < 1e-4
    );
    let x = t(vec![2.0, -1.0, 50.0], &[3]);
    let y = t(vec![1.0, 0.0, 0.0], &[3]);
    let sp = |v: f64| (1.0 + v.exp()).ln();
    let e = [sp(-2.0), sp(-1.0), 50.0];
    let got = F::binary_cross_entropy_with_logits(&x, &y, None, None, Reduction::None)
        .unwrap()
        .to_f64_vec()
        .unwrap();
    for (g, w) in got.iter().zip(e) {
        assert!((g - w).abs() < 1e-5, "{got:?}");
    }
    let pw = t(vec![3.0, 3.0, 3.0], &[3]);
    let got = F::binary_cross_entropy_with_logits(&x, &y, None, Some(&pw), Reduction::None)
        .unwrap()
        .to_f64_vec()
        .unwrap();
    assert!((got[0] - 3.0 * sp(-2.0)).abs() < 1e-5);
}

#[test]
fn losses_are_differentiable_and_checked() {
    let x = t(X.to_vec(), &[2, 3]).requires_grad_(true).unwrap();
    let loss = F::cross_entropy(&x, &idx(vec![1, 0])).unwrap();
    loss.backward().unwrap();
    let g = x
        .grad()
        .unwrap()
        .sum(&[1], false)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert!(
        g.iter().all(|v| v.abs() < 1e-6),
        "softmax - onehot rows sum to 0"
    );
    assert!(F::check_finite(&loss, "step 1").is_ok());
    let bad = t(vec![f32::NAN], &[1]);
    let e = F::check_finite(&bad, "epoch 3 step 7").unwrap_err();
    assert!(
        e.to_string().contains("epoch 3 step 7") && e.to_string().contains("NaN"),
        "{e}"
    );
}
