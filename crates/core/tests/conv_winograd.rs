//! The Winograd F(2×2, 3×3) kernels (`crates/core/src/cpu/conv/winograd.rs`: f32, 3×3,
//! stride 1, dilation 1, groups 1, padding ≤ 2, ≥ 32 channels in and out, AVX-512 CPUs)
//! against a naive f64 reference: forward and input gradient (the weight gradient stays on
//! the blocked kernels and is checked too) on odd maps (7×7, 5×5, 1×1), channel counts that
//! are not multiples of 16, batch 1, padding 0, 1 and 2 and unequal paddings; the forward
//! and input-gradient pair is checked to be adjoint. Without AVX-512 (or with
//! `MLFW_CONV_WINOGRAD=0`) the same cases check whichever path those shapes take.
//!
//! The worst relative error measured (max|Δ| / max|ref|, printed with `--nocapture`) is
//! about 1e-6 on this machine; the bound asserted is the 1e-5 of the other conv tests.

mod common;

use common::{assert_close, conv_ref, randn, rel_err};
use mlfw_core::{Conv2dParams, Tensor};

fn params(p: (usize, usize)) -> Conv2dParams {
    Conv2dParams {
        stride: (1, 1),
        padding: p,
        dilation: (1, 1),
        groups: 1,
    }
}

/// Checks forward and both gradients of one case; returns the worst relative error.
fn check(xd: &[usize], wd: &[usize], p: Conv2dParams, seed: u64) -> f64 {
    let what = format!("x {xd:?} w {wd:?} {p:?}");
    let (x, w) = (randn(xd, seed), randn(wd, seed + 1));
    let out = x.conv2d(&w, None, p).unwrap();
    let gy = randn(out.dims(), seed + 2);
    let (want, grads) = conv_ref(&x, &w, Some(&gy), p);
    let (want_dx, want_dw) = grads.unwrap();
    let dx = gy.conv2d_backward_input(&w, p, (xd[2], xd[3])).unwrap();
    let dw = x.conv2d_backward_weight(&gy, p, (3, 3)).unwrap();
    assert_close(&out, &want, 1e-5, &format!("{what}: forward"));
    assert_close(&dx, &want_dx, 1e-5, &format!("{what}: grad input"));
    assert_close(&dw, &want_dw, 1e-5, &format!("{what}: grad weight"));
    let e = |a: &Tensor, b: &Tensor| rel_err(&a.to_f64_vec().unwrap(), &b.to_f64_vec().unwrap());
    let (ef, ei) = (e(&out, &want), e(&dx, &want_dx));
    println!("{what}: forward {ef:.2e}, grad input {ei:.2e}");
    ef.max(ei)
}

/// Σ a·b in f64.
fn dot(a: &Tensor, b: &Tensor) -> f64 {
    let (a, b) = (a.to_f64_vec().unwrap(), b.to_f64_vec().unwrap());
    a.iter().zip(&b).map(|(x, y)| x * y).sum()
}

#[test]
fn resnet_and_vgg_shapes_match_reference() {
    let p = params((1, 1));
    let mut worst = 0f64;
    // ResNet-18's stride-1 3×3 layers at small batches: 32×32 down to 4×4 maps; VGG's 2×2.
    worst = worst.max(check(&[2, 64, 32, 32], &[64, 64, 3, 3], p, 1));
    worst = worst.max(check(&[3, 128, 16, 16], &[128, 128, 3, 3], p, 2));
    worst = worst.max(check(&[2, 256, 8, 8], &[256, 256, 3, 3], p, 3));
    worst = worst.max(check(&[4, 96, 4, 4], &[128, 96, 3, 3], p, 4));
    worst = worst.max(check(&[2, 64, 2, 2], &[64, 64, 3, 3], p, 5));
    println!("worst relative error {worst:.2e}");
}

#[test]
fn odd_maps_ragged_channels_batch_one() {
    let p = params((1, 1));
    // Odd maps (a half tile on the right and bottom), channels not a multiple of 16.
    check(&[1, 33, 7, 7], &[40, 33, 3, 3], p, 10);
    check(&[3, 48, 5, 5], &[35, 48, 3, 3], p, 11);
    check(&[2, 37, 1, 1], &[50, 37, 3, 3], p, 12);
    check(&[1, 40, 9, 13], &[70, 40, 3, 3], p, 13);
    check(&[2, 32, 11, 1], &[32, 32, 3, 3], p, 14);
}

#[test]
fn padding_zero_two_and_unequal() {
    // No padding (the input gradient then pads by 2), padding 2 (input gradient unpadded),
    // and different paddings per side.
    check(&[2, 40, 7, 7], &[36, 40, 3, 3], params((0, 0)), 20);
    check(&[1, 32, 6, 9], &[48, 32, 3, 3], params((0, 0)), 21);
    check(&[2, 36, 5, 6], &[40, 36, 3, 3], params((2, 2)), 22);
    check(&[1, 32, 8, 7], &[33, 32, 3, 3], params((0, 2)), 23);
    check(&[2, 34, 3, 5], &[32, 34, 3, 3], params((2, 1)), 24);
}

#[test]
fn forward_and_input_gradient_are_adjoint() {
    // ⟨conv(x), gy⟩ = ⟨x, conv_backward_input(gy)⟩ for any x, gy: the pair is a linear map
    // and its transpose.
    for (i, (xd, wd, p)) in [
        ([2, 64, 8, 8], [64, 64, 3, 3], (1, 1)),
        ([1, 40, 7, 5], [48, 40, 3, 3], (0, 0)),
        ([3, 32, 5, 5], [36, 32, 3, 3], (2, 1)),
    ]
    .into_iter()
    .enumerate()
    {
        let p = params(p);
        let seed = 30 + 3 * i as u64;
        let (x, w) = (randn(&xd, seed), randn(&wd, seed + 1));
        let y = x.conv2d(&w, None, p).unwrap();
        let gy = randn(y.dims(), seed + 2);
        let dx = gy.conv2d_backward_input(&w, p, (xd[2], xd[3])).unwrap();
        let (l, r) = (dot(&y, &gy), dot(&x, &dx));
        let scale = y.to_f64_vec().unwrap().len() as f64;
        assert!(
            (l - r).abs() <= 1e-5 * scale.sqrt() * l.abs().max(r.abs()).max(1.0).sqrt(),
            "case {i}: ⟨conv x, gy⟩ = {l} but ⟨x, conv_backward_input gy⟩ = {r}"
        );
    }
}

#[test]
fn matches_fixed_small_case_exactly_enough() {
    // A hand-checkable case: all-ones input and weights, padding 1, 32 channels. Each output
    // is 32 × (number of in-map taps): 9 inside, 6 on edges, 4 in corners.
    let (c, h) = (32, 5);
    let x = Tensor::ones([1, c, h, h], mlfw_core::DType::F32, &mlfw_core::Device::Cpu).unwrap();
    let w = Tensor::ones(
        [32, c, 3, 3],
        mlfw_core::DType::F32,
        &mlfw_core::Device::Cpu,
    )
    .unwrap();
    let y = x.conv2d(&w, None, params((1, 1))).unwrap();
    let v = y.to_f64_vec().unwrap();
    for o in 0..32 {
        for r in 0..h {
            for q in 0..h {
                let taps = |i: usize| if i == 0 || i == h - 1 { 2.0 } else { 3.0 };
                let want = c as f64 * taps(r) * taps(q);
                let got = v[(o * h + r) * h + q];
                assert!(
                    (got - want).abs() <= 1e-4,
                    "out[{o}, {r}, {q}] = {got}, want {want}"
                );
            }
        }
    }
}
