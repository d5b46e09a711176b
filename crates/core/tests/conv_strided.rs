//! Strided convolutions whose forward runs the blocked kernel on the stride phases of the
//! input (`crates/core/src/cpu/conv/phase.rs`: f32, equal strides 2–4, no dilation, groups
//! 1, padding smaller than the kernel, outputs of at most 16 positions, ≥ 32 output channels
//! and more than 4096 weights, on AVX-512 CPUs) against a naive f64 reference: forward and
//! both gradients (which take the im2col path), with ResNet's downsampling shapes, odd
//! maps, channels not a multiple of 32 (or 16), batch 1, uneven padding, 1×1, 2×2 and
//! stride 3; and shapes that stay on the im2col path (larger outputs, 5×5, dilation,
//! unequal strides, few channels). On CPUs without AVX-512 (or with `MLFW_CONV_DIRECT=0`)
//! the same cases check the gemm paths.

mod common;

use common::{assert_close, conv_ref, randn};
use mlfw_core::Conv2dParams;

fn params(s: (usize, usize), p: (usize, usize), d: (usize, usize)) -> Conv2dParams {
    Conv2dParams {
        stride: s,
        padding: p,
        dilation: d,
        groups: 1,
    }
}

/// Checks forward and both backward kernels of one case against the reference.
fn check(xd: &[usize], wd: &[usize], p: Conv2dParams, seed: u64) {
    let what = format!("x {xd:?} w {wd:?} {p:?}");
    let (x, w) = (randn(xd, seed), randn(wd, seed + 1));
    let out = x.conv2d(&w, None, p).unwrap();
    let gy = randn(out.dims(), seed + 2);
    let (want, grads) = conv_ref(&x, &w, Some(&gy), p);
    let (want_dx, want_dw) = grads.unwrap();
    assert_close(&out, &want, 1e-5, &format!("{what}: forward"));
    let dx = gy.conv2d_backward_input(&w, p, (xd[2], xd[3])).unwrap();
    assert_close(&dx, &want_dx, 1e-5, &format!("{what}: grad input"));
    let dw = x.conv2d_backward_weight(&gy, p, (wd[2], wd[3])).unwrap();
    assert_close(&dw, &want_dw, 1e-5, &format!("{what}: grad weight"));
}

#[test]
fn resnet_downsampling_shapes_match_reference() {
    let (s2, one) = ((2, 2), (1, 1));
    // 3×3 stride 2 padding 1 on 8×8 and 4×4 maps (4×4 and 2×2 outputs), 64 → 128 and 32 → 64.
    check(&[2, 64, 8, 8], &[128, 64, 3, 3], params(s2, one, one), 1);
    check(&[3, 32, 4, 4], &[64, 32, 3, 3], params(s2, one, one), 2);
    // The 1×1 stride-2 shortcut.
    check(&[2, 64, 8, 8], &[128, 64, 1, 1], params(s2, (0, 0), one), 3);
    check(&[1, 96, 6, 6], &[64, 96, 1, 1], params(s2, (0, 0), one), 4);
}

#[test]
fn odd_maps_ragged_channels_batch_one() {
    let (s2, one) = ((2, 2), (1, 1));
    // Odd input sizes (the last phase row and column partly padding), channels not a
    // multiple of 32 or 16, one image.
    check(&[1, 20, 7, 7], &[40, 20, 3, 3], params(s2, one, one), 10);
    check(&[2, 33, 7, 8], &[70, 33, 3, 3], params(s2, one, one), 11);
    check(&[1, 48, 8, 7], &[36, 48, 3, 3], params(s2, one, one), 12);
    // No padding, uneven padding.
    check(&[2, 40, 9, 9], &[48, 40, 3, 3], params(s2, (0, 0), one), 13);
    check(&[2, 40, 8, 9], &[48, 40, 3, 3], params(s2, (1, 0), one), 14);
}

#[test]
fn kernel_sizes_and_stride_three() {
    let one = (1, 1);
    // 3×3 stride 3, 2×2 stride 2.
    check(
        &[2, 32, 10, 10],
        &[40, 32, 3, 3],
        params((3, 3), one, one),
        21,
    );
    check(
        &[2, 40, 8, 8],
        &[64, 40, 2, 2],
        params((2, 2), (0, 0), one),
        22,
    );
}

#[test]
fn shapes_left_to_im2col() {
    // Larger outputs, 5×5 (too many garbage columns), dilation, unequal strides, padding
    // as large as the kernel, few channels: the im2col path, still correct.
    check(
        &[2, 64, 16, 16],
        &[64, 64, 3, 3],
        params((2, 2), (1, 1), (1, 1)),
        34,
    );
    check(
        &[1, 32, 20, 20],
        &[32, 32, 5, 5],
        params((2, 2), (2, 2), (1, 1)),
        35,
    );
    check(
        &[2, 32, 9, 9],
        &[64, 32, 3, 3],
        params((2, 2), (1, 1), (2, 2)),
        30,
    );
    check(
        &[2, 32, 9, 8],
        &[64, 32, 3, 3],
        params((2, 1), (1, 1), (1, 1)),
        31,
    );
    check(
        &[2, 32, 6, 6],
        &[64, 32, 1, 1],
        params((2, 2), (1, 1), (1, 1)),
        32,
    );
    check(
        &[2, 4, 9, 9],
        &[8, 4, 3, 3],
        params((2, 2), (1, 1), (1, 1)),
        33,
    );
}

#[test]
fn batch_split_over_threads_matches_one_image_at_a_time() {
    // Enough work for the parallel paths (16 images): each image's output equals its own
    // single-image convolution, and the weight gradient the sum of the per-image ones.
    let p = params((2, 2), (1, 1), (1, 1));
    let x = randn(&[16, 64, 8, 8], 40);
    let w = randn(&[128, 64, 3, 3], 41);
    let y = x.conv2d(&w, None, p).unwrap();
    let gy = randn(y.dims(), 42);
    let dw = x.conv2d_backward_weight(&gy, p, (3, 3)).unwrap();
    let mut dw_sum: Option<mlfw_core::Tensor> = None;
    for i in [0, 7, 15] {
        let xi = x.narrow(0, i, 1).unwrap();
        let yi = xi.conv2d(&w, None, p).unwrap();
        assert_close(
            &y.narrow(0, i, 1).unwrap(),
            &yi,
            1e-6,
            &format!("image {i}"),
        );
    }
    for i in 0..16 {
        let xi = x.narrow(0, i, 1).unwrap();
        let gi = gy.narrow(0, i, 1).unwrap();
        let d = xi.conv2d_backward_weight(&gi, p, (3, 3)).unwrap();
        dw_sum = Some(match dw_sum {
            None => d,
            Some(s) => s.add(&d).unwrap(),
        });
    }
    assert_close(
        &dw,
        &dw_sum.unwrap(),
        1e-4,
        "weight gradient, summed per image",
    );
}
