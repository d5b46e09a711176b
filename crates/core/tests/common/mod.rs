//! Helpers shared by the kernel tests: random tensors, naive reference kernels, comparisons.
#![allow(dead_code)]

use mlfw_core::{Conv2dParams, DType, Device, Generator, Tensor};

/// A `[dims]` f32 tensor of normal numbers from a fixed seed.
pub fn randn(dims: &[usize], seed: u64) -> Tensor {
    let mut g = Generator::new(seed);
    Tensor::randn_with(0.0, 1.0, dims.to_vec(), DType::F32, &Device::Cpu, &mut g).unwrap()
}

/// The same values behind a non-contiguous layout: stored as `[.., W, H]` and transposed back.
pub fn non_contiguous(t: &Tensor) -> Tensor {
    let r = t.rank();
    let nc = t
        .transpose(-1, -2)
        .unwrap()
        .contiguous()
        .unwrap()
        .transpose(-1, -2)
        .unwrap();
    assert!(r < 2 || t.dims()[r - 1] <= 1 || t.dims()[r - 2] <= 1 || !nc.is_contiguous());
    nc
}

/// max|a−b| / (max|b| + 1e-6), the fixture tolerance measure.
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f64::max);
    diff / (scale + 1e-6)
}

/// Asserts same shape and relative error ≤ `tol`.
pub fn assert_close(a: &Tensor, b: &Tensor, tol: f64, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shape");
    let e = rel_err(&a.to_f64_vec().unwrap(), &b.to_f64_vec().unwrap());
    assert!(e <= tol, "{what}: relative error {e:e} > {tol:e}");
}

/// Naive f64 convolution: returns (out, d input, d weight) for upstream gradient `gy`.
pub fn conv_ref(
    x: &Tensor,
    w: &Tensor,
    gy: Option<&Tensor>,
    p: Conv2dParams,
) -> (Tensor, Option<(Tensor, Tensor)>) {
    let [n, c, h, wd] = *x.dims() else { panic!() };
    let [o, cg, kh, kw] = *w.dims() else { panic!() };
    let (oh, ow) = p.out_hw((h, wd), (kh, kw)).unwrap();
    let xv = x.to_f64_vec().unwrap();
    let wv = w.to_f64_vec().unwrap();
    let gv = gy.map(|g| g.to_f64_vec().unwrap());
    let og = o / p.groups;
    let mut out = vec![0f64; n * o * oh * ow];
    let mut dx = vec![0f64; xv.len()];
    let mut dw = vec![0f64; wv.len()];
    for b in 0..n {
        for oc in 0..o {
            let grp = oc / og;
            for y in 0..oh {
                for xx in 0..ow {
                    let oi = ((b * o + oc) * oh + y) * ow + xx;
                    let mut s = 0.0;
                    for ci in 0..cg {
                        let ch = grp * cg + ci;
                        for i in 0..kh {
                            let ih =
                                (y * p.stride.0 + i * p.dilation.0) as isize - p.padding.0 as isize;
                            if ih < 0 || ih >= h as isize {
                                continue;
                            }
                            for j in 0..kw {
                                let iw = (xx * p.stride.1 + j * p.dilation.1) as isize
                                    - p.padding.1 as isize;
                                if iw < 0 || iw >= wd as isize {
                                    continue;
                                }
                                let xi = ((b * c + ch) * h + ih as usize) * wd + iw as usize;
                                let wi = ((oc * cg + ci) * kh + i) * kw + j;
                                s += xv[xi] * wv[wi];
                                if let Some(g) = &gv {
                                    dx[xi] += g[oi] * wv[wi];
                                    dw[wi] += g[oi] * xv[xi];
                                }
                            }
                        }
                    }
                    out[oi] = s;
                }
            }
        }
    }
    let d = Device::Cpu;
    let out = Tensor::from_vec(out, [n, o, oh, ow], &d).unwrap();
    let grads = gv.map(|_| {
        (
            Tensor::from_vec(dx, x.dims().to_vec(), &d).unwrap(),
            Tensor::from_vec(dw, w.dims().to_vec(), &d).unwrap(),
        )
    });
    (out, grads)
}
