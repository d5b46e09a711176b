//! conv2d and its backward kernels against a naive f64 reference, over many geometries.

mod common;

use common::{assert_close, conv_ref, non_contiguous, randn};
use mlfw_core::{Conv2dParams, DType, Tensor};

fn params(s: (usize, usize), p: (usize, usize), d: (usize, usize), g: usize) -> Conv2dParams {
    Conv2dParams {
        stride: s,
        padding: p,
        dilation: d,
        groups: g,
    }
}

/// Checks forward and both backward kernels of one case against the reference.
fn check(x: &Tensor, w: &Tensor, p: Conv2dParams, what: &str) {
    let out = x.conv2d(w, None, p).unwrap();
    let gy = randn(out.dims(), 99);
    let (want, grads) = conv_ref(x, w, Some(&gy), p);
    let (want_dx, want_dw) = grads.unwrap();
    let tol = if x.dtype() == DType::F64 { 1e-12 } else { 1e-5 };
    assert_close(&out, &want, tol, &format!("{what}: forward"));
    let (h, wd) = (x.dims()[2], x.dims()[3]);
    let gy = gy.to_dtype(x.dtype()).unwrap();
    let dx = gy.conv2d_backward_input(w, p, (h, wd)).unwrap();
    assert_close(&dx, &want_dx, tol, &format!("{what}: grad input"));
    let dw = x
        .conv2d_backward_weight(&gy, p, (w.dims()[2], w.dims()[3]))
        .unwrap();
    assert_close(&dw, &want_dw, tol, &format!("{what}: grad weight"));
}

#[test]
fn geometries_match_reference() {
    // (input dims, weight dims, params)
    let cases = [
        (
            [2, 3, 9, 7],
            [4, 3, 3, 3],
            params((1, 1), (1, 1), (1, 1), 1),
        ),
        (
            [2, 3, 9, 7],
            [4, 3, 3, 2],
            params((2, 1), (0, 1), (1, 1), 1),
        ),
        (
            [1, 2, 11, 10],
            [3, 2, 3, 3],
            params((2, 3), (2, 1), (2, 3), 1),
        ),
        (
            [2, 4, 8, 8],
            [6, 2, 3, 3],
            params((1, 1), (1, 1), (1, 1), 2),
        ),
        (
            [2, 4, 8, 8],
            [4, 1, 5, 5],
            params((1, 1), (2, 2), (1, 1), 4),
        ),
        (
            [3, 6, 5, 5],
            [4, 6, 1, 1],
            params((1, 1), (0, 0), (1, 1), 1),
        ),
        (
            [3, 6, 5, 5],
            [6, 3, 1, 1],
            params((1, 1), (0, 0), (1, 1), 2),
        ),
        (
            [2, 3, 10, 8],
            [6, 3, 1, 1],
            params((2, 2), (0, 0), (1, 1), 1),
        ),
        (
            [2, 2, 4, 4],
            [2, 2, 4, 4],
            params((1, 1), (0, 0), (1, 1), 1),
        ),
        (
            [1, 1, 3, 3],
            [1, 1, 3, 3],
            params((5, 5), (3, 3), (1, 1), 1),
        ),
        // Stride 1 with dilation and uneven padding (the wide im2col path).
        (
            [2, 3, 12, 11],
            [4, 3, 3, 2],
            params((1, 1), (2, 1), (2, 2), 1),
        ),
        // Channel and tap counts that leave the direct kernels' register blocks part-full.
        (
            [3, 2, 6, 13],
            [5, 2, 3, 1],
            params((1, 1), (1, 0), (1, 1), 1),
        ),
        // LeNet-5 shapes.
        (
            [4, 1, 28, 28],
            [6, 1, 5, 5],
            params((1, 1), (2, 2), (1, 1), 1),
        ),
        (
            [4, 6, 14, 14],
            [16, 6, 5, 5],
            params((1, 1), (0, 0), (1, 1), 1),
        ),
    ];
    for (k, (xd, wd, p)) in cases.iter().enumerate() {
        let x = randn(xd, 10 + k as u64);
        let w = randn(wd, 50 + k as u64);
        check(&x, &w, *p, &format!("case {k} {xd:?} {wd:?} {p:?}"));
    }
}

#[test]
fn large_batches_use_threads_and_agree() {
    // Big enough to take the parallel paths (batch split, chunked weight gradient).
    let p = params((1, 1), (2, 2), (1, 1), 1);
    check(
        &randn(&[37, 1, 28, 28], 1),
        &randn(&[6, 1, 5, 5], 2),
        p,
        "conv1 b37",
    );
    let p = params((1, 1), (0, 0), (1, 1), 2);
    check(
        &randn(&[19, 6, 14, 14], 3),
        &randn(&[16, 3, 5, 5], 4),
        p,
        "grouped b19",
    );
    // One big image: the batch cannot be split.
    let p = params((1, 1), (1, 1), (1, 1), 1);
    check(
        &randn(&[1, 16, 40, 40], 5),
        &randn(&[32, 16, 3, 3], 6),
        p,
        "single image",
    );
}

#[test]
fn non_contiguous_inputs() {
    let p = params((1, 2), (1, 0), (1, 1), 1);
    let x = randn(&[2, 3, 7, 9], 7);
    let w = randn(&[5, 3, 3, 3], 8);
    let (xn, wn) = (non_contiguous(&x), non_contiguous(&w));
    assert!(!xn.is_contiguous() && !wn.is_contiguous());
    check(&xn, &wn, p, "transposed storage");
    // A permuted NHWC buffer viewed as NCHW, and a channel slice.
    let nhwc = randn(&[2, 7, 9, 3], 9);
    let xp = nhwc.permute(&[0, 3, 1, 2]).unwrap();
    check(&xp, &w, p, "permuted NHWC");
    let wide = randn(&[2, 5, 7, 9], 11);
    check(&wide.narrow(1, 1, 3).unwrap(), &w, p, "narrowed channels");
    // Broadcast (stride-0) input.
    let one = randn(&[1, 3, 7, 9], 12);
    check(&one.expand([4, 3, 7, 9]).unwrap(), &w, p, "expanded batch");
    // Non-contiguous grad_out.
    let out = x.conv2d(&w, None, p).unwrap();
    let gy = non_contiguous(&randn(out.dims(), 13));
    let a = gy.conv2d_backward_input(&w, p, (7, 9)).unwrap();
    let b = gy
        .contiguous()
        .unwrap()
        .conv2d_backward_input(&w, p, (7, 9))
        .unwrap();
    assert_close(&a, &b, 0.0, "non-contiguous grad_out (input)");
    let a = x.conv2d_backward_weight(&gy, p, (3, 3)).unwrap();
    let b = x
        .conv2d_backward_weight(&gy.contiguous().unwrap(), p, (3, 3))
        .unwrap();
    assert_close(&a, &b, 0.0, "non-contiguous grad_out (weight)");
}

#[test]
fn zero_batch_and_dtypes() {
    let p = params((1, 1), (1, 1), (1, 1), 1);
    let x = randn(&[0, 3, 6, 6], 1);
    let w = randn(&[4, 3, 3, 3], 2);
    let out = x.conv2d(&w, None, p).unwrap();
    assert_eq!(out.dims(), &[0, 4, 6, 6]);
    let dx = out.conv2d_backward_input(&w, p, (6, 6)).unwrap();
    assert_eq!(dx.dims(), &[0, 3, 6, 6]);
    let dw = x.conv2d_backward_weight(&out, p, (3, 3)).unwrap();
    assert_eq!(dw.to_vec::<f32>().unwrap(), vec![0.0; 4 * 27]);

    let x = randn(&[2, 3, 6, 5], 3);
    check(
        &x.to_dtype(DType::F64).unwrap(),
        &w.to_dtype(DType::F64).unwrap(),
        p,
        "f64",
    );
    for dt in [DType::F16, DType::BF16] {
        let (xh, wh) = (x.to_dtype(dt).unwrap(), w.to_dtype(dt).unwrap());
        let out = xh.conv2d(&wh, None, p).unwrap();
        assert_eq!(out.dtype(), dt);
        let want = conv_ref(&xh, &wh, None, p).0;
        assert_close(&out, &want, 1e-2, &format!("{dt} forward"));
        let dx = out.conv2d_backward_input(&wh, p, (6, 5)).unwrap();
        assert_eq!(dx.dtype(), dt);
        let dw = xh.conv2d_backward_weight(&out, p, (3, 3)).unwrap();
        assert_eq!(dw.dtype(), dt);
    }
}

#[test]
fn bad_geometry_is_an_error() {
    let p = params((1, 1), (0, 0), (1, 1), 1);
    let w = randn(&[4, 3, 3, 3], 2);
    let gy = randn(&[2, 4, 5, 5], 3);
    // grad_out 5x5 does not come from a 6x6 input with a 3x3 kernel.
    assert!(gy.conv2d_backward_input(&w, p, (6, 6)).is_err());
    let x = randn(&[2, 3, 6, 6], 4);
    assert!(x.conv2d_backward_weight(&gy, p, (3, 3)).is_err());
    assert!(x
        .to_dtype(DType::I64)
        .unwrap()
        .conv2d(&w.to_dtype(DType::I64).unwrap(), None, p)
        .is_err());
    let bad_groups = Conv2dParams { groups: 2, ..p };
    assert!(x
        .conv2d_backward_weight(&randn(&[2, 4, 4, 4], 5), bad_groups, (3, 3))
        .is_err());
}

#[test]
fn random_stride_one_geometries_match_reference() {
    // A small deterministic generator (xorshift) picks 40 stride-1 geometries: the direct
    // (f32) and wide (f64) paths over odd sizes, wide kernels, large padding and dilation.
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = |lo: usize, hi: usize| {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        lo + (s % (hi - lo + 1) as u64) as usize
    };
    for case in 0..40 {
        let (kh, kw) = (next(1, 5), next(1, 5));
        let (dh, dw) = (next(1, 2), next(1, 2));
        let (ph, pw) = (next(0, 3), next(0, 3));
        let h = (dh * (kh - 1) + 1).saturating_sub(2 * ph).max(1) + next(0, 6);
        let w = (dw * (kw - 1) + 1).saturating_sub(2 * pw).max(1) + next(0, 6);
        let (n, c, o) = (next(1, 5), next(1, 4), next(1, 9));
        let p = params((1, 1), (ph, pw), (dh, dw), 1);
        let x = randn(&[n, c, h, w], 1000 + case);
        let wt = randn(&[o, c, kh, kw], 2000 + case);
        let what =
            format!("random case {case}: x [{n}, {c}, {h}, {w}], w [{o}, {c}, {kh}, {kw}], {p:?}");
        check(&x, &wt, p, &what);
        check(
            &x.to_dtype(DType::F64).unwrap(),
            &wt.to_dtype(DType::F64).unwrap(),
            p,
            &format!("{what} (f64)"),
        );
    }
}

#[test]
fn resnet_like_shapes_with_shared_row_borders_match_reference() {
    // Many channels (not multiples of 16) on small maps: the wide layout's rows share one
    // padding border, so taps past a row's end read the next row's leading zeros. Also
    // over-padding (padding wider than the kernel reach), 1×1 with padding, stride 2.
    let cases = [
        (
            [2, 20, 4, 4],
            [33, 20, 3, 3],
            params((1, 1), (1, 1), (1, 1), 1),
        ),
        (
            [3, 17, 5, 7],
            [18, 17, 3, 3],
            params((1, 1), (1, 1), (1, 1), 1),
        ),
        (
            [2, 9, 8, 8],
            [70, 9, 3, 3],
            params((1, 1), (1, 1), (1, 1), 1),
        ),
        (
            [2, 5, 6, 5],
            [7, 5, 3, 3],
            params((1, 1), (2, 3), (1, 1), 1),
        ),
        (
            [2, 6, 4, 4],
            [5, 6, 1, 1],
            params((1, 1), (1, 1), (1, 1), 1),
        ),
        (
            [2, 4, 7, 6],
            [6, 4, 3, 3],
            params((1, 1), (2, 2), (2, 2), 1),
        ),
        (
            [2, 19, 9, 9],
            [21, 19, 3, 3],
            params((2, 2), (1, 1), (1, 1), 1),
        ),
        (
            [2, 19, 8, 8],
            [21, 19, 1, 1],
            params((2, 2), (0, 0), (1, 1), 1),
        ),
    ];
    for (i, (xd, wd, p)) in cases.into_iter().enumerate() {
        let x = randn(&xd, 300 + i as u64);
        let w = randn(&wd, 400 + i as u64);
        let what = format!("case {i}: x {xd:?}, w {wd:?}, {p:?}");
        check(&x, &w, p, &what);
        let (x64, w64) = (
            x.to_dtype(DType::F64).unwrap(),
            w.to_dtype(DType::F64).unwrap(),
        );
        check(&x64, &w64, p, &format!("{what} (f64)"));
    }
}
