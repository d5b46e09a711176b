//! Host emulation (see `host_emulation.rs`) of the indexing, pooling, im2col/col2im and
//! optimizer kernels, against small reference implementations written here from the PyTorch
//! definitions (the CPU backend's versions of these were still being written).

use super::host_emulation::{lib, ptr};
use crate::lay::Lay;
use libloading::Symbol;
use mlfw_core::{CpuStorage, Layout};

fn f32s(s: &CpuStorage) -> &[f32] {
    s.as_slice::<f32>().unwrap()
}

fn rnd(n: usize, seed: u64) -> Vec<f32> {
    (0..n as u64)
        .map(|i| mlfw_core::random::normal_at(seed, i) as f32)
        .collect()
}

fn close(what: &str, want: &[f32], got: &[f32], tol: f32) {
    assert_eq!(want.len(), got.len(), "{what}");
    for (i, (a, b)) in want.iter().zip(got).enumerate() {
        assert!(
            (a - b).abs() <= tol * (1.0 + a.abs()),
            "{what}: element {i}: want {a}, kernel {b}"
        );
    }
}

#[test]
fn index_kernels() {
    let Some(l) = lib("index", Some(mlfw_core::DType::F32)) else {
        return;
    };
    // x [3, 4, 5]
    let x = CpuStorage::F32(rnd(60, 1));
    let xv = f32s(&x).to_vec();
    let ids = CpuStorage::I64(vec![3, 0, 3]);
    // index_select along dim 1 -> [3, 3, 5]
    let f: Symbol<unsafe extern "C" fn(u64, u64, u64, u64, u64, u64, u64)> =
        unsafe { l.get(b"index_select") }.unwrap();
    let got = CpuStorage::F32(vec![0.0; 45]);
    unsafe { f(45, 4, 3, 5, ptr(&x), ptr(&ids), ptr(&got)) };
    let want: Vec<f32> = (0..3)
        .flat_map(|p| {
            [3usize, 0, 3]
                .into_iter()
                .flat_map(move |j| (0..5).map(move |q| (p, j, q)))
        })
        .map(|(p, j, q)| xv[(p * 4 + j) * 5 + q])
        .collect();
    close("index_select", &want, f32s(&got), 0.0);
    // gather along dim 2 of a transposed view: xt [3, 5, 4] (x permuted 0,2,1), ids [3, 2, 4]
    let xt = Layout::contiguous([3, 4, 5]).permute(&[0, 2, 1]).unwrap();
    let g_ids: Vec<i64> = (0..24).map(|i| (i * 3 % 4) as i64).collect();
    let gl = Layout::contiguous([3, 2, 4]);
    let gid = CpuStorage::I64(g_ids.clone());
    let f: Symbol<unsafe extern "C" fn(u64, i32, u64, Lay, u64, Lay, u64)> =
        unsafe { l.get(b"gather") }.unwrap();
    let got = CpuStorage::F32(vec![0.0; 24]);
    unsafe {
        f(
            24,
            2,
            ptr(&x),
            Lay::exact(&xt).unwrap(),
            ptr(&gid),
            Lay::exact(&gl).unwrap(),
            ptr(&got),
        )
    };
    let mut want = vec![0f32; 24];
    for a in 0..3 {
        for b in 0..2 {
            for c in 0..4 {
                let k = g_ids[(a * 2 + b) * 4 + c] as usize; // xt[a][b][k] = x[a][k][b]
                want[(a * 2 + b) * 4 + c] = xv[(a * 4 + k) * 5 + b];
            }
        }
    }
    close("gather", &want, f32s(&got), 0.0);
    // scatter_add into a copy of x along dim 1 with ids [3, 2, 5], src [3, 2, 5]
    let s_ids: Vec<i64> = (0..30).map(|i| (i * 7 % 4) as i64).collect();
    let src = CpuStorage::F32(rnd(30, 2));
    let out = CpuStorage::F32(xv.clone());
    let lo = Lay::exact(&Layout::contiguous([3, 4, 5])).unwrap();
    let ls = Lay::exact(&Layout::contiguous([3, 2, 5])).unwrap();
    let sid = CpuStorage::I64(s_ids.clone());
    let f: Symbol<unsafe extern "C" fn(u64, i32, u64, Lay, u64, Lay, u64, Lay)> =
        unsafe { l.get(b"scatter_add") }.unwrap();
    unsafe { f(30, 1, ptr(&out), lo, ptr(&sid), ls, ptr(&src), ls) };
    let mut want = xv.clone();
    for a in 0..3 {
        for b in 0..2 {
            for c in 0..5 {
                let k = s_ids[(a * 2 + b) * 5 + c] as usize;
                want[(a * 4 + k) * 5 + c] += f32s(&src)[(a * 2 + b) * 5 + c];
            }
        }
    }
    close("scatter_add", &want, f32s(&out), 1e-6);
    // index_add along dim 2: src [3, 4, 3], ids [4, 4, 1]
    let src = CpuStorage::F32(rnd(36, 3));
    let ids = CpuStorage::I64(vec![4, 4, 1]);
    let out = CpuStorage::F32(xv.clone());
    let f: Symbol<unsafe extern "C" fn(u64, u64, u64, u64, u64, u64, u64)> =
        unsafe { l.get(b"index_add") }.unwrap();
    unsafe { f(36, 5, 3, 1, ptr(&out), ptr(&ids), ptr(&src)) };
    let mut want = xv;
    for p in 0..12 {
        for (j, k) in [4usize, 4, 1].into_iter().enumerate() {
            want[p * 5 + k] += f32s(&src)[p * 3 + j];
        }
    }
    close("index_add", &want, f32s(&out), 1e-6);
}

#[repr(C)]
#[derive(Clone, Copy)]
struct PoolGeo {
    h: u64,
    w: u64,
    oh: u64,
    ow: u64,
    k: [i32; 8],
    cip: i32,
    pad: i32,
}

#[test]
fn pooling_kernels() {
    let Some(l) = lib("pool", Some(mlfw_core::DType::F32)) else {
        return;
    };
    let (h, w) = (7usize, 8usize);
    let mut xv = rnd(2 * h * w, 4);
    xv[5] = f32::NAN;
    let x = CpuStorage::F32(xv.clone());
    // kernel 3, stride 2, padding 1, dilation 1, ceil_mode: out = ceil((7+2-3)/2)+1 = 4, (8+2-3)/2 -> ceil 4 + 1 = 5 (last starts at 8 >= 8+1? no)
    let (oh, ow) = (4usize, 5usize);
    let g = PoolGeo {
        h: h as u64,
        w: w as u64,
        oh: oh as u64,
        ow: ow as u64,
        k: [3, 3, 2, 2, 1, 1, 1, 1],
        cip: 0,
        pad: 0,
    };
    let f: Symbol<unsafe extern "C" fn(u64, PoolGeo, u64, u64, u64)> =
        unsafe { l.get(b"max_pool_fwd") }.unwrap();
    let y = CpuStorage::F32(vec![0.0; 2 * oh * ow]);
    let idx = CpuStorage::I64(vec![0; 2 * oh * ow]);
    unsafe { f((2 * oh * ow) as u64, g, ptr(&x), ptr(&y), ptr(&idx)) };
    let fa: Symbol<unsafe extern "C" fn(u64, PoolGeo, u64, u64)> =
        unsafe { l.get(b"avg_pool_fwd") }.unwrap();
    let ya = CpuStorage::F32(vec![0.0; 2 * oh * ow]);
    unsafe { fa((2 * oh * ow) as u64, g, ptr(&x), ptr(&ya)) };
    for pl in 0..2 {
        for i in 0..oh {
            for j in 0..ow {
                let (h0, w0) = (i as i64 * 2 - 1, j as i64 * 2 - 1);
                let (mut best, mut bi, mut sum, mut cnt) = (f32::NEG_INFINITY, -1i64, 0f32, 0);
                for a in h0.max(0)..(h0 + 3).min(h as i64) {
                    for b in w0.max(0)..(w0 + 3).min(w as i64) {
                        let v = xv[pl * h * w + (a as usize) * w + b as usize];
                        if v > best || v.is_nan() {
                            best = v;
                            bi = a * w as i64 + b;
                        }
                        sum += v;
                        cnt += 1;
                    }
                }
                let o = (pl * oh + i) * ow + j;
                let (gv, gi) = (f32s(&y)[o], idx.as_slice::<i64>().unwrap()[o]);
                assert!(
                    (gv == best || (gv.is_nan() && best.is_nan())) && gi == bi,
                    "max pool {o}: {best}@{bi} vs {gv}@{gi}"
                );
                let av = f32s(&ya)[o];
                let want = sum / cnt as f32;
                assert!(
                    (av - want).abs() < 1e-6 || (av.is_nan() && want.is_nan()),
                    "avg pool {o}: {want} vs {av}"
                );
            }
        }
    }
    // Adaptive average 7x8 -> 3x3, forward and backward (backward sums g / count).
    let fad: Symbol<unsafe extern "C" fn(u64, u64, u64, u64, u64, u64, u64)> =
        unsafe { l.get(b"adaptive_avg_fwd") }.unwrap();
    let fab: Symbol<unsafe extern "C" fn(u64, u64, u64, u64, u64, u64, u64)> =
        unsafe { l.get(b"adaptive_avg_bwd") }.unwrap();
    let x = CpuStorage::F32(rnd(h * w, 5));
    let y = CpuStorage::F32(vec![0.0; 9]);
    unsafe { fad(9, h as u64, w as u64, 3, 3, ptr(&x), ptr(&y)) };
    let go = CpuStorage::F32(rnd(9, 6));
    let dx = CpuStorage::F32(vec![0.0; h * w]);
    unsafe { fab(9, h as u64, w as u64, 3, 3, ptr(&go), ptr(&dx)) };
    let mut want_dx = vec![0f32; h * w];
    for i in 0..3 {
        for j in 0..3 {
            let (hs, he) = (i * h / 3, ((i + 1) * h).div_ceil(3));
            let (ws, we) = (j * w / 3, ((j + 1) * w).div_ceil(3));
            let c = ((he - hs) * (we - ws)) as f32;
            let s: f32 = (hs..he)
                .flat_map(|a| (ws..we).map(move |b| (a, b)))
                .map(|(a, b)| f32s(&x)[a * w + b])
                .sum();
            assert!((s / c - f32s(&y)[i * 3 + j]).abs() < 1e-6, "adaptive fwd");
            for a in hs..he {
                for b in ws..we {
                    want_dx[a * w + b] += f32s(&go)[i * 3 + j] / c;
                }
            }
        }
    }
    close("adaptive bwd", &want_dx, f32s(&dx), 1e-6);
}

#[repr(C)]
#[derive(Clone, Copy)]
struct ConvGeo {
    dims: [u64; 6],
    k: [i32; 8],
}

#[test]
fn im2col_conv_and_col2im_adjoint() {
    let Some(l) = lib("conv", Some(mlfw_core::DType::F32)) else {
        return;
    };
    let (n, c, h, w, kh, kw) = (2usize, 3usize, 6usize, 7usize, 3usize, 2usize);
    let (sh, sw, ph, pw, dh, dw) = (2usize, 1usize, 1usize, 2usize, 1usize, 2usize);
    let oh = (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1;
    let ow = (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
    let g = ConvGeo {
        dims: [n as u64, c as u64, h as u64, w as u64, oh as u64, ow as u64],
        k: [
            kh as i32, kw as i32, sh as i32, sw as i32, ph as i32, pw as i32, dh as i32, dw as i32,
        ],
    };
    let x = CpuStorage::F32(rnd(n * c * h * w, 7));
    let ncol = n * c * kh * kw * oh * ow;
    let col = CpuStorage::F32(vec![0.0; ncol]);
    let f: Symbol<unsafe extern "C" fn(u64, ConvGeo, u64, u64)> =
        unsafe { l.get(b"im2col") }.unwrap();
    unsafe { f(ncol as u64, g, ptr(&x), ptr(&col)) };
    // Reference im2col.
    let xv = f32s(&x);
    let mut want = vec![0f32; ncol];
    let mut i = 0;
    for b in 0..n {
        for ci in 0..c {
            for ki in 0..kh {
                for kj in 0..kw {
                    for oi in 0..oh {
                        for oj in 0..ow {
                            let hh = (oi * sh + ki * dh) as i64 - ph as i64;
                            let ww = (oj * sw + kj * dw) as i64 - pw as i64;
                            if hh >= 0 && hh < h as i64 && ww >= 0 && ww < w as i64 {
                                want[i] = xv[((b * c + ci) * h + hh as usize) * w + ww as usize];
                            }
                            i += 1;
                        }
                    }
                }
            }
        }
    }
    close("im2col", &want, f32s(&col), 0.0);
    // col2im is im2col's adjoint: <im2col(x), y> == <x, col2im(y)>.
    let y = CpuStorage::F32(rnd(ncol, 8));
    let dx = CpuStorage::F32(vec![0.0; n * c * h * w]);
    let f: Symbol<unsafe extern "C" fn(u64, ConvGeo, u64, u64)> =
        unsafe { l.get(b"col2im") }.unwrap();
    unsafe { f((n * c * h * w) as u64, g, ptr(&y), ptr(&dx)) };
    let lhs: f64 = want
        .iter()
        .zip(f32s(&y))
        .map(|(a, b)| *a as f64 * *b as f64)
        .sum();
    let rhs: f64 = xv
        .iter()
        .zip(f32s(&dx))
        .map(|(a, b)| *a as f64 * *b as f64)
        .sum();
    assert!(
        (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
        "adjoint: {lhs} vs {rhs}"
    );
}

#[test]
fn optimizer_kernels_follow_torch_formulas() {
    let Some(l) = lib("optim", Some(mlfw_core::DType::F32)) else {
        return;
    };
    let n = 50;
    let p0 = rnd(n, 9);
    let g = CpuStorage::F32(rnd(n, 10));
    let gv: Vec<f64> = f32s(&g).iter().map(|&x| x as f64).collect();
    // SGD with momentum 0.9, dampening 0.1, weight decay 0.01, nesterov; two steps.
    let p = CpuStorage::F32(p0.clone());
    let buf = CpuStorage::F32(vec![0.0; n]);
    let f: Symbol<unsafe extern "C" fn(u64, u64, u64, u64, f64, f64, f64, f64, i32, i32, i32)> =
        unsafe { l.get(b"sgd") }.unwrap();
    for first in [1, 0] {
        unsafe {
            f(
                n as u64,
                ptr(&p),
                ptr(&g),
                ptr(&buf),
                0.1,
                0.9,
                0.1,
                0.01,
                1,
                0,
                first,
            )
        };
    }
    let (mut pr, mut br): (Vec<f64>, Vec<f64>) =
        (p0.iter().map(|&x| x as f64).collect(), vec![0.0; n]);
    for first in [true, false] {
        for i in 0..n {
            let d = gv[i] + 0.01 * pr[i];
            br[i] = if first { d } else { br[i] * 0.9 + 0.9 * d };
            pr[i] -= 0.1 * (d + 0.9 * br[i]);
        }
    }
    close(
        "sgd",
        &pr.iter().map(|&x| x as f32).collect::<Vec<_>>(),
        f32s(&p),
        1e-5,
    );
    // AdamW with amsgrad, three steps.
    let p = CpuStorage::F32(p0.clone());
    let (m, v, vm) = (
        CpuStorage::F32(vec![0.0; n]),
        CpuStorage::F32(vec![0.0; n]),
        CpuStorage::F32(vec![0.0; n]),
    );
    type AdamFn = unsafe extern "C" fn(
        u64,
        u64,
        u64,
        u64,
        u64,
        u64,
        f64,
        f64,
        f64,
        f64,
        f64,
        i32,
        i32,
        i32,
        f64,
        f64,
    );
    let f: Symbol<AdamFn> = unsafe { l.get(b"adam") }.unwrap();
    let (lr, b1, b2, eps, wd) = (1e-2, 0.9, 0.999, 1e-8, 0.1);
    let mut pr: Vec<f64> = p0.iter().map(|&x| x as f64).collect();
    let (mut mr, mut vr, mut vmr) = (vec![0f64; n], vec![0f64; n], vec![0f64; n]);
    for step in 1..=3 {
        let (bc1, bc2) = (1.0 - f64::powi(b1, step), 1.0 - f64::powi(b2, step));
        unsafe {
            f(
                n as u64,
                ptr(&p),
                ptr(&g),
                ptr(&m),
                ptr(&v),
                ptr(&vm),
                lr,
                b1,
                b2,
                eps,
                wd,
                1,
                1,
                0,
                lr / bc1,
                bc2.sqrt(),
            )
        };
        for i in 0..n {
            pr[i] *= 1.0 - lr * wd;
            mr[i] = b1 * mr[i] + (1.0 - b1) * gv[i];
            vr[i] = b2 * vr[i] + (1.0 - b2) * gv[i] * gv[i];
            vmr[i] = vmr[i].max(vr[i]);
            pr[i] -= lr / bc1 * mr[i] / (vmr[i].sqrt() / bc2.sqrt() + eps);
        }
    }
    close(
        "adamw",
        &pr.iter().map(|&x| x as f32).collect::<Vec<_>>(),
        f32s(&p),
        1e-5,
    );
    // RMSprop centered with momentum; Adagrad.
    let p = CpuStorage::F32(p0.clone());
    let (sq, bf, ga) = (
        CpuStorage::F32(vec![0.0; n]),
        CpuStorage::F32(vec![0.0; n]),
        CpuStorage::F32(vec![0.0; n]),
    );
    type RmsFn =
        unsafe extern "C" fn(u64, u64, u64, u64, u64, u64, f64, f64, f64, f64, f64, i32, i32);
    let f: Symbol<RmsFn> = unsafe { l.get(b"rmsprop") }.unwrap();
    let mut pr: Vec<f64> = p0.iter().map(|&x| x as f64).collect();
    let (mut sr, mut brr, mut gr) = (vec![0f64; n], vec![0f64; n], vec![0f64; n]);
    for _ in 0..2 {
        unsafe {
            f(
                n as u64,
                ptr(&p),
                ptr(&g),
                ptr(&sq),
                ptr(&bf),
                ptr(&ga),
                1e-2,
                0.99,
                1e-8,
                0.0,
                0.5,
                1,
                0,
            )
        };
        for i in 0..n {
            sr[i] = 0.99 * sr[i] + 0.01 * gv[i] * gv[i];
            gr[i] = 0.99 * gr[i] + 0.01 * gv[i];
            let avg = (sr[i] - gr[i] * gr[i]).sqrt() + 1e-8;
            brr[i] = 0.5 * brr[i] + gv[i] / avg;
            pr[i] -= 1e-2 * brr[i];
        }
    }
    close(
        "rmsprop",
        &pr.iter().map(|&x| x as f32).collect::<Vec<_>>(),
        f32s(&p),
        1e-4,
    );
    let p = CpuStorage::F32(p0.clone());
    let s = CpuStorage::F32(vec![0.0; n]);
    let f: Symbol<unsafe extern "C" fn(u64, u64, u64, u64, f64, f64, f64, i32)> =
        unsafe { l.get(b"adagrad") }.unwrap();
    let mut pr: Vec<f64> = p0.iter().map(|&x| x as f64).collect();
    let mut srr = vec![0f64; n];
    for step in 1..=2u64 {
        let clr = 0.1 / (1.0 + (step - 1) as f64 * 0.01);
        unsafe { f(n as u64, ptr(&p), ptr(&g), ptr(&s), clr, 0.0, 1e-10, 0) };
        for i in 0..n {
            srr[i] += gv[i] * gv[i];
            pr[i] -= clr * gv[i] / (srr[i].sqrt() + 1e-10);
        }
    }
    close(
        "adagrad",
        &pr.iter().map(|&x| x as f32).collect::<Vec<_>>(),
        f32s(&p),
        1e-5,
    );
}
