//! Pooling kernels: hand-checked values, NaN, non-contiguous inputs, dtypes, empty batches.

mod common;

use common::{assert_close, non_contiguous, randn};
use mlfw_core::{DType, Device, Pool2dParams, Shape, Tensor};

fn t(v: Vec<f32>, dims: [usize; 4]) -> Tensor {
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

#[test]
fn max_pool_values_and_indices() {
    let x = t((0..16).map(|v| v as f32).collect(), [1, 1, 4, 4]);
    let (v, i) = x.max_pool2d_with_indices(Pool2dParams::new(2)).unwrap();
    assert_eq!(v.to_vec::<f32>().unwrap(), vec![5., 7., 13., 15.]);
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![5, 7, 13, 15]);
    // ceil_mode adds a clipped last window; padding uses -inf.
    let x = t((0..25).map(|v| -(v as f32)).collect(), [1, 1, 5, 5]);
    let p = Pool2dParams {
        ceil_mode: true,
        ..Pool2dParams::new(2)
    };
    let (v, i) = x.max_pool2d_with_indices(p).unwrap();
    assert_eq!(v.dims(), &[1, 1, 3, 3]);
    assert_eq!(
        i.to_vec::<i64>().unwrap(),
        vec![0, 2, 4, 10, 12, 14, 20, 22, 24]
    );
    let p = Pool2dParams {
        padding: (1, 1),
        ..Pool2dParams::new(3)
    };
    let v = x.max_pool2d(p).unwrap();
    assert_eq!(v.to_vec::<f32>().unwrap()[0], 0.0);
    // Ties pick the first maximum; NaN wins.
    let x = t(vec![1., 1., 1., 1., 2., f32::NAN, 2., 0.], [1, 2, 2, 2]);
    let (v, i) = x.max_pool2d_with_indices(Pool2dParams::new(2)).unwrap();
    let v = v.to_vec::<f32>().unwrap();
    assert_eq!(v[0], 1.0);
    assert!(v[1].is_nan());
    assert_eq!(i.to_vec::<i64>().unwrap(), vec![0, 1]);
}

#[test]
fn max_pool_backward_accumulates_overlaps() {
    // Stride 1 windows overlap: the shared maximum collects every gradient.
    let mut v = vec![0f32; 9];
    v[4] = 9.0;
    let x = t(v, [1, 1, 3, 3]);
    let p = Pool2dParams {
        stride: (1, 1),
        ..Pool2dParams::new(2)
    };
    let (out, idx) = x.max_pool2d_with_indices(p).unwrap();
    assert_eq!(idx.to_vec::<i64>().unwrap(), vec![4; 4]);
    let g = out.ones_like().unwrap();
    let dx = g.max_pool2d_backward(&idx, x.shape()).unwrap();
    let mut want = vec![0f32; 9];
    want[4] = 4.0;
    assert_eq!(dx.to_vec::<f32>().unwrap(), want);
    // Out-of-plane indices are an error, not a panic.
    let bad = Tensor::from_vec(vec![9i64; 4], [1, 1, 2, 2], &Device::Cpu).unwrap();
    assert!(g.max_pool2d_backward(&bad, x.shape()).is_err());
}

#[test]
fn avg_pool_padding_rules() {
    let x = t(vec![1.0; 9], [1, 1, 3, 3]);
    let p = Pool2dParams {
        padding: (1, 1),
        stride: (2, 2),
        ..Pool2dParams::new(2)
    };
    // Each 2x2 window at the corner holds one real 1 and three pad cells.
    assert_eq!(
        x.avg_pool2d(p).unwrap().to_vec::<f32>().unwrap(),
        vec![0.25, 0.5, 0.5, 1.0]
    );
    let p2 = Pool2dParams {
        count_include_pad: false,
        ..p
    };
    assert_eq!(
        x.avg_pool2d(p2).unwrap().to_vec::<f32>().unwrap(),
        vec![1.0; 4]
    );
    // ceil_mode's overhanging window divides by the cells inside the padded input only.
    let x = t(vec![1.0; 25], [1, 1, 5, 5]);
    let p = Pool2dParams {
        ceil_mode: true,
        ..Pool2dParams::new(2)
    };
    let v = x.avg_pool2d(p).unwrap().to_vec::<f32>().unwrap();
    assert_eq!(v, vec![1.0; 9]);
    let g = Tensor::ones([1, 1, 3, 3], DType::F32, &Device::Cpu).unwrap();
    let dx = g
        .avg_pool2d_backward(p, x.shape())
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(dx[0], 0.25);
    assert_eq!(dx[24], 1.0);
    assert_eq!(dx[4], 0.5);
    let dil = Pool2dParams {
        dilation: (2, 2),
        ..Pool2dParams::new(2)
    };
    assert!(x.avg_pool2d(dil).is_err());
}

#[test]
fn adaptive_windows() {
    let x = t((0..10).map(|v| v as f32).collect(), [1, 1, 1, 10]);
    // Windows for 10 -> 3: [0,4), [3,7), [6,10).
    let v = x
        .adaptive_avg_pool2d((1, 3))
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(v, vec![1.5, 4.5, 7.5]);
    let g = Tensor::ones([1, 1, 1, 3], DType::F32, &Device::Cpu).unwrap();
    let dx = g
        .adaptive_avg_pool2d_backward(x.shape())
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(dx[3], 0.5);
    assert_eq!(dx[0], 0.25);
    let one = x.adaptive_avg_pool2d((1, 1)).unwrap();
    assert_eq!(one.to_vec::<f32>().unwrap(), vec![4.5]);
}

#[test]
fn layouts_dtypes_and_empty() {
    let x = randn(&[3, 4, 9, 10], 1);
    let xn = non_contiguous(&x);
    let perm = x
        .permute(&[0, 2, 3, 1])
        .unwrap()
        .contiguous()
        .unwrap()
        .permute(&[0, 3, 1, 2])
        .unwrap();
    let p = Pool2dParams {
        padding: (1, 1),
        stride: (2, 2),
        ceil_mode: true,
        ..Pool2dParams::new(3)
    };
    for v in [&xn, &perm] {
        assert!(!v.is_contiguous());
        let (a, ia) = v.max_pool2d_with_indices(p).unwrap();
        let (b, ib) = x.max_pool2d_with_indices(p).unwrap();
        assert_close(&a, &b, 0.0, "max");
        assert_eq!(ia.to_vec::<i64>().unwrap(), ib.to_vec::<i64>().unwrap());
        assert_close(
            &v.avg_pool2d(p).unwrap(),
            &x.avg_pool2d(p).unwrap(),
            0.0,
            "avg",
        );
        let (ao, bo) = (
            v.adaptive_avg_pool2d((4, 3)).unwrap(),
            x.adaptive_avg_pool2d((4, 3)).unwrap(),
        );
        assert_close(&ao, &bo, 0.0, "adaptive");
        // Backward with a non-contiguous grad_out.
        let g = non_contiguous(&randn(a.dims(), 2));
        let gc = g.contiguous().unwrap();
        assert_close(
            &g.max_pool2d_backward(&ia, x.shape()).unwrap(),
            &gc.max_pool2d_backward(&ib, x.shape()).unwrap(),
            0.0,
            "max backward",
        );
        assert_close(
            &g.avg_pool2d_backward(p, x.shape()).unwrap(),
            &gc.avg_pool2d_backward(p, x.shape()).unwrap(),
            0.0,
            "avg backward",
        );
    }
    for dt in [DType::F64, DType::F16, DType::BF16] {
        let xh = x.to_dtype(dt).unwrap();
        let want = xh.to_dtype(DType::F32).unwrap();
        let (a, _) = xh.max_pool2d_with_indices(p).unwrap();
        assert_eq!(a.dtype(), dt);
        assert_close(&a, &want.max_pool2d(p).unwrap(), 0.0, "max dtype");
        let a = xh.avg_pool2d(p).unwrap();
        assert_close(&a, &want.avg_pool2d(p).unwrap(), 1e-2, "avg dtype");
        let a = xh.adaptive_avg_pool2d((2, 2)).unwrap();
        assert_close(
            &a,
            &want.adaptive_avg_pool2d((2, 2)).unwrap(),
            1e-2,
            "adaptive dtype",
        );
    }
    let e = randn(&[0, 4, 9, 10], 3);
    let (v, i) = e.max_pool2d_with_indices(p).unwrap();
    assert_eq!((v.dims(), i.dims()), (&[0, 4, 5, 6][..], &[0, 4, 5, 6][..]));
    assert_eq!(
        v.max_pool2d_backward(&i, e.shape()).unwrap().dims(),
        e.dims()
    );
    assert_eq!(e.avg_pool2d(p).unwrap().elem_count(), 0);
    assert_eq!(e.adaptive_avg_pool2d((2, 2)).unwrap().dims(), &[0, 4, 2, 2]);
    let s = Shape::new(vec![0, 4, 9, 10]);
    let g = Tensor::zeros([0, 4, 2, 2], DType::F32, &Device::Cpu).unwrap();
    assert_eq!(g.adaptive_avg_pool2d_backward(&s).unwrap().dims(), s.dims());
    assert!(x.to_dtype(DType::I64).unwrap().avg_pool2d(p).is_err());
}

#[test]
fn large_tensors_match_small_path() {
    // Big enough to be split across threads; compare plane by plane with small calls.
    let x = randn(&[16, 8, 24, 24], 4);
    let p = Pool2dParams::new(2);
    let (v, i) = x.max_pool2d_with_indices(p).unwrap();
    let a = x.avg_pool2d(p).unwrap();
    for k in [0usize, 7, 15] {
        let xs = x.narrow(0, k, 1).unwrap();
        let (vs, is) = xs.max_pool2d_with_indices(p).unwrap();
        assert_close(&v.narrow(0, k, 1).unwrap(), &vs, 0.0, "max plane");
        assert_eq!(
            i.narrow(0, k, 1).unwrap().to_vec::<i64>().unwrap(),
            is.to_vec::<i64>().unwrap()
        );
        assert_close(
            &a.narrow(0, k, 1).unwrap(),
            &xs.avg_pool2d(p).unwrap(),
            0.0,
            "avg plane",
        );
    }
}

/// Sequential reference for tiled windows: a tap replaces the best when larger or NaN.
fn tiled_reference(x: &[f32], (h, w): (usize, usize), (kh, kw): (usize, usize)) -> Vec<(u32, i64)> {
    let (oh, ow) = (h / kh, w / kw);
    let mut out = Vec::new();
    for plane in x.chunks(h * w) {
        for r in 0..oh {
            for c in 0..ow {
                let at0 = r * kh * w + c * kw;
                let (mut best, mut at) = (plane[at0], at0);
                for i in 0..kh {
                    for j in 0..kw {
                        let k = (r * kh + i) * w + c * kw + j;
                        if plane[k] > best || plane[k].is_nan() {
                            (best, at) = (plane[k], k);
                        }
                    }
                }
                out.push((best.to_bits(), at as i64));
            }
        }
    }
    out
}

#[test]
fn tiled_fast_paths_match_sequential_rule() {
    // Few distinct values (ties, ±0) and NaNs, on widths around the SIMD block size.
    let vals = [0.0, -0.0, 1.0, -1.0, 2.0, f32::NAN];
    let mut seed = 12345u64;
    for (h, w) in [(4, 4), (5, 7), (6, 17), (9, 33), (28, 28), (10, 10), (2, 2)] {
        for k in [(2, 2), (3, 3), (2, 3)] {
            if h < k.0 || w < k.1 {
                continue;
            }
            let x: Vec<f32> = (0..3 * h * w)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    vals[(seed >> 33) as usize % vals.len()]
                })
                .collect();
            let p = Pool2dParams {
                kernel: k,
                stride: k,
                ..Pool2dParams::new(2)
            };
            let (v, i) = t(x.clone(), [1, 3, h, w])
                .max_pool2d_with_indices(p)
                .unwrap();
            let got: Vec<(u32, i64)> = v
                .to_vec::<f32>()
                .unwrap()
                .iter()
                .zip(i.to_vec::<i64>().unwrap())
                .map(|(v, i)| (v.to_bits(), i))
                .collect();
            assert_eq!(got, tiled_reference(&x, (h, w), k), "{h}x{w} kernel {k:?}");
        }
    }
}
