//! The blocked direct kernels (`crates/core/src/cpu/conv/blocked.rs`: f32, stride 1, groups
//! 1, ≥ 32 output channels, more than 4096 weights, on AVX-512 CPUs) against a naive f64
//! reference: forward and both gradients, with channel counts that are not multiples of the
//! 32-channel register block, odd maps, batch 1, dilation, no padding and 5×5 kernels; and
//! the neighbouring shapes they must leave to the other paths (stride 2, 1×1). On CPUs
//! without AVX-512 (or with `MLFW_CONV_DIRECT=0`) the same cases check the gemm paths.

mod common;

use common::{assert_close, conv_ref, randn};
use mlfw_core::{Conv2dParams, Tensor};

fn params(s: usize, p: (usize, usize), d: (usize, usize)) -> Conv2dParams {
    Conv2dParams {
        stride: (s, s),
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
fn resnet_shapes_match_reference() {
    let p = params(1, (1, 1), (1, 1));
    // ResNet's 3×3 layers, small batches: 8×8 (separate borders: W > 8·pW is false, so
    // shared) and 4×4 maps, 64 and 96 channels (one and three register blocks).
    check(&[2, 64, 8, 8], &[64, 64, 3, 3], p, 1);
    check(&[3, 96, 4, 4], &[96, 96, 3, 3], p, 2);
    // A 16×16 map (separate borders) and more images than threads.
    check(&[5, 32, 16, 16], &[64, 32, 3, 3], p, 3);
    // VGG-11's last 3×3 layers at 32×32 input: 2×2 maps.
    check(&[2, 64, 2, 2], &[64, 64, 3, 3], p, 4);
}

#[test]
fn ragged_channels_odd_maps_batch_one() {
    let p = params(1, (1, 1), (1, 1));
    // Output channels not a multiple of 32 (or 16), input channels too.
    check(&[3, 20, 7, 5], &[40, 20, 3, 3], p, 10);
    check(&[1, 48, 4, 4], &[36, 48, 3, 3], p, 11);
    check(&[1, 33, 9, 13], &[70, 33, 3, 3], p, 12);
    // A 1-pixel-wide map and a tall one.
    check(&[2, 40, 11, 1], &[48, 40, 3, 3], p, 13);
}

#[test]
fn padding_dilation_and_kernel_sizes() {
    // No padding (the input gradient's transposed geometry has padding 2).
    check(
        &[2, 40, 6, 6],
        &[32, 40, 3, 3],
        params(1, (0, 0), (1, 1)),
        20,
    );
    // Uneven padding and dilation.
    check(
        &[2, 33, 10, 9],
        &[34, 33, 3, 3],
        params(1, (1, 2), (2, 1)),
        21,
    );
    // 5×5 kernels, padding 2; and a 3×1 kernel.
    check(
        &[2, 32, 9, 9],
        &[32, 32, 5, 5],
        params(1, (2, 2), (1, 1)),
        22,
    );
    check(
        &[2, 64, 6, 7],
        &[64, 64, 3, 1],
        params(1, (1, 0), (1, 1)),
        23,
    );
    // Padding larger than the dilated kernel reach: the input gradient cannot be a plain
    // stride-1 forward convolution and falls back to the gemm path.
    check(
        &[2, 64, 5, 5],
        &[64, 64, 3, 3],
        params(1, (3, 3), (1, 1)),
        24,
    );
}

#[test]
fn neighbouring_shapes_keep_their_paths() {
    // Stride 2 and 1×1 kernels (the im2col path) beside the blocked layers.
    check(
        &[2, 64, 8, 8],
        &[128, 64, 3, 3],
        params(2, (1, 1), (1, 1)),
        30,
    );
    check(
        &[2, 64, 8, 8],
        &[128, 64, 1, 1],
        params(2, (0, 0), (1, 1)),
        31,
    );
    check(
        &[2, 64, 5, 5],
        &[96, 64, 1, 1],
        params(1, (0, 0), (1, 1)),
        32,
    );
}

#[test]
fn threads_split_the_batch_and_the_channel_blocks() {
    // Big enough for the parallel paths: 9 images, 4 output-channel blocks.
    check(
        &[9, 64, 8, 8],
        &[128, 64, 3, 3],
        params(1, (1, 1), (1, 1)),
        40,
    );
    let x: Tensor = randn(&[1, 64, 32, 32], 41);
    let w: Tensor = randn(&[64, 64, 3, 3], 42);
    let p = params(1, (1, 1), (1, 1));
    // Same image twice gives the same rows twice, and batch sums double the weight gradient.
    let x2 = Tensor::cat(&[x.clone(), x.clone()], 0).unwrap();
    let y1 = x.conv2d(&w, None, p).unwrap();
    let y2 = x2.conv2d(&w, None, p).unwrap();
    assert_close(
        &y2.narrow(0, 1, 1).unwrap(),
        &y1,
        0.0,
        "batch of two, second image",
    );
    let g2 = y2.ones_like().unwrap();
    let dw1 = x
        .conv2d_backward_weight(&y1.ones_like().unwrap(), p, (3, 3))
        .unwrap();
    let dw2 = x2.conv2d_backward_weight(&g2, p, (3, 3)).unwrap();
    let twice = dw1.affine(2.0, 0.0).unwrap();
    assert_close(&dw2, &twice, 1e-6, "weight gradient of a doubled batch");
}
