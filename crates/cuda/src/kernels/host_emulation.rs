//! Runs the grid-stride kernels on the host (g++ and `device/cuda_shim.h`, one thread,
//! reductions with `BS = 1`) and compares them with the CPU backend on the same inputs. This
//! checks the kernels' logic (op codes, layouts, conversions, NaN rules) without a GPU; it
//! cannot check NVRTC acceptance, block-level reductions, or atomics under contention.
//! Skipped, with a notice, when g++ is missing.

use super::{source, suffix, ALL};
use crate::lay::Lay;
use libloading::{Library, Symbol};
use mlfw_core::backend::BackendStorage;
use mlfw_core::params::{BinaryOp, CmpOp, ReduceOp, UnaryOp};
use mlfw_core::{CpuStorage, DType, Layout};
use std::collections::HashMap;
use std::sync::Mutex;

static LIBS: Mutex<Option<HashMap<String, &'static Library>>> = Mutex::new(None);

/// The module compiled for the host, or `None` (with a notice) when g++ is unavailable.
pub(super) fn lib(module: &str, dt: Option<DType>) -> Option<&'static Library> {
    let key = format!("{module}_{}", dt.map_or("all", suffix));
    let mut g = LIBS.lock().unwrap();
    let map = g.get_or_insert_with(HashMap::new);
    if let Some(l) = map.get(&key) {
        return Some(l);
    }
    let dir = std::env::temp_dir().join(format!("mlfw-cuda-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut src = source(module, dt).unwrap();
    src = src.replace(
        r#"asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));"#,
        "f = shim_h2f(h);",
    );
    src = src.replace(
        r#"asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));"#,
        "h = shim_f2h(f);",
    );
    if module == "reduce" {
        src = format!("#define BS 1\n{src}");
    }
    let cu = dir.join(format!("{key}.cpp"));
    let so = dir.join(format!("{key}.so"));
    std::fs::write(&cu, src).unwrap();
    let out = crate::host_build::compile_shared(&cu, &so);
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "g++ failed on {key}:\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => {
            println!("skipping host emulation: g++ not available ({e})");
            return None;
        }
    }
    // SAFETY: a library we just built from our own sources; it runs no constructors of note.
    let l: &'static Library = Box::leak(Box::new(unsafe { Library::new(&so) }.unwrap()));
    map.insert(key, l);
    Some(l)
}

pub(super) fn ptr(s: &CpuStorage) -> u64 {
    mlfw_core::with_cpu_vec!(s, v => v.as_ptr() as u64)
}

fn f64s(s: &CpuStorage) -> Vec<f64> {
    let l = Layout::contiguous(s.len());
    match BackendStorage::to_dtype(s, &l, DType::F64)
        .unwrap()
        .to_cpu()
        .unwrap()
    {
        CpuStorage::F64(v) => v,
        _ => unreachable!(),
    }
}

fn cpu(s: mlfw_core::Storage) -> CpuStorage {
    s.to_cpu().unwrap()
}

fn from_f64(v: &[f64], dt: DType) -> CpuStorage {
    cpu(BackendStorage::to_dtype(
        &CpuStorage::F64(v.to_vec()),
        &Layout::contiguous(v.len()),
        dt,
    )
    .unwrap())
}

fn assert_same(what: &str, want: &CpuStorage, got: &CpuStorage, tol: f64) {
    assert_eq!(want.dtype(), got.dtype(), "{what}: dtype");
    let (w, g) = (f64s(want), f64s(got));
    assert_eq!(w.len(), g.len(), "{what}: length");
    for (i, (a, b)) in w.iter().zip(&g).enumerate() {
        let ok = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= tol * (1.0 + a.abs());
        assert!(ok, "{what}: element {i}: cpu {a} vs kernel {b}");
    }
}

fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    (0..n as u64)
        .map(|i| scale * mlfw_core::random::normal_at(seed, i))
        .collect()
}

fn tol(dt: DType) -> f64 {
    match dt {
        DType::F16 => 2e-3,
        DType::BF16 => 1.6e-2,
        DType::F32 => 1e-6,
        _ => 1e-12,
    }
}

type Unary = unsafe extern "C" fn(u64, i32, f64, f64, u64, Lay, u64);
type Binary = unsafe extern "C" fn(u64, i32, u64, Lay, u64, Lay, u64);
type Where = unsafe extern "C" fn(u64, u64, Lay, u64, Lay, u64, Lay, u64);
type Copy = unsafe extern "C" fn(u64, u64, Lay, u64);
type Rows = unsafe extern "C" fn(u64, u64, i32, u64, Lay, u64);
type Sum = unsafe extern "C" fn(u64, u64, u64, Lay, u64);
type Rand = unsafe extern "C" fn(u64, f64, f64, u64, u64, u64);

#[test]
fn unary_kernels_match_cpu() {
    use UnaryOp::*;
    let ops = [
        (0, Neg),
        (1, Abs),
        (2, Exp),
        (6, Sin),
        (7, Cos),
        (8, Tanh),
        (9, Sigmoid),
        (10, Relu),
        (11, GeluErf),
        (12, GeluTanh),
        (13, Sign),
        (15, Square),
        (16, LeakyRelu(0.1)),
        (17, Powf(2.0)),
        (18, Clamp(-0.5, 0.7)),
        (19, Affine(1.5, -0.25)),
        (20, Erf),
        (3, Log),
        (4, Sqrt),
        (5, Rsqrt),
        (14, Recip),
        (17, Powf(1.7)),
    ];
    for dt in [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::I64,
        DType::U8,
    ] {
        let Some(l) = lib("elementwise", Some(dt)) else {
            return;
        };
        let f: Symbol<Unary> = unsafe { l.get(b"ew_unary") }.unwrap();
        let mut v = values(42, 1, 3.0);
        v[0] = f64::NAN;
        if dt.is_float() {
            v[1] = f64::INFINITY;
            v[2] = f64::NEG_INFINITY;
            v[3] = 0.0;
        }
        if dt == DType::U8 {
            v.iter_mut().for_each(|x| *x = (x.abs() * 40.0).floor());
        }
        let x = from_f64(&v, dt);
        let lay = Layout::contiguous([7, 6]).permute(&[1, 0]).unwrap();
        for (code, op) in ops {
            let Ok(want) = BackendStorage::unary(&x, &lay, op) else {
                continue;
            };
            let want = cpu(want);
            let p = match op {
                LeakyRelu(a) | Powf(a) => (a, 0.0),
                Clamp(a, b) | Affine(a, b) => (a, b),
                _ => (0.0, 0.0),
            };
            let got = CpuStorage::full(42, 0.0, dt);
            unsafe {
                f(
                    42,
                    code,
                    p.0,
                    p.1,
                    ptr(&x),
                    Lay::of(&lay).unwrap(),
                    ptr(&got),
                )
            };
            assert_same(&format!("unary {op:?} {dt}"), &want, &got, tol(dt));
        }
    }
}

#[test]
fn binary_cmp_where_copy_kernels_match_cpu() {
    use BinaryOp::*;
    for dt in ALL {
        let Some(l) = lib("elementwise", Some(dt)) else {
            return;
        };
        let fb: Symbol<Binary> = unsafe { l.get(b"ew_binary") }.unwrap();
        let fc: Symbol<Binary> = unsafe { l.get(b"ew_cmp") }.unwrap();
        let fw: Symbol<Where> = unsafe { l.get(b"ew_where") }.unwrap();
        let fcp: Symbol<Copy> = unsafe { l.get(b"ew_copy") }.unwrap();
        let mut av: Vec<f64> = values(120, 2, 4.0).iter().map(|x| x.round()).collect();
        if dt.is_float() {
            av[0] = f64::NAN;
            av[17] = f64::NAN;
        }
        let a = from_f64(&av, dt);
        let mut bv: Vec<f64> = values(5, 3, 4.0).iter().map(|x| x.round()).collect();
        if dt.is_float() {
            // NaN on either side of maximum/minimum propagates (and compares false).
            bv[1] = f64::NAN;
        }
        let b = from_f64(&bv, dt);
        let la = Layout::contiguous([4, 5, 6]);
        let lb = Layout::contiguous([5, 1])
            .broadcast_as(&[4, 5, 6].into())
            .unwrap();
        let lc = Layout::contiguous([6, 5, 4]).permute(&[2, 1, 0]).unwrap();
        let lays = Lay::joint(&[&la, &lb]).unwrap();
        for (code, op) in [
            (0, Add),
            (1, Sub),
            (2, Mul),
            (3, Div),
            (4, Maximum),
            (5, Minimum),
            (6, Pow),
        ] {
            let Ok(want) = BackendStorage::binary(&a, &la, &b, &lb, op) else {
                continue;
            };
            let got = CpuStorage::full(120, 0.0, dt);
            unsafe { fb(120, code, ptr(&a), lays[0], ptr(&b), lays[1], ptr(&got)) };
            assert_same(&format!("binary {op:?} {dt}"), &cpu(want), &got, tol(dt));
        }
        let lays = Lay::joint(&[&lc, &lb]).unwrap();
        for (code, op) in [
            (0, CmpOp::Eq),
            (1, CmpOp::Ne),
            (2, CmpOp::Lt),
            (3, CmpOp::Le),
            (4, CmpOp::Gt),
            (5, CmpOp::Ge),
        ] {
            let want = cpu(BackendStorage::cmp(&a, &lc, &b, &lb, op).unwrap());
            let got = CpuStorage::full(120, 0.0, DType::Bool);
            unsafe { fc(120, code, ptr(&a), lays[0], ptr(&b), lays[1], ptr(&got)) };
            assert_same(&format!("cmp {op:?} {dt}"), &want, &got, 0.0);
            let lays3 = Lay::joint(&[&la, &lc, &lb]).unwrap();
            let wantw = cpu(BackendStorage::where_cond(&want, &la, &a, &lc, &b, &lb).unwrap());
            let gotw = CpuStorage::full(120, 0.0, dt);
            unsafe {
                fw(
                    120,
                    ptr(&got),
                    lays3[0],
                    ptr(&a),
                    lays3[1],
                    ptr(&b),
                    lays3[2],
                    ptr(&gotw),
                )
            };
            assert_same(&format!("where {dt}"), &wantw, &gotw, 0.0);
        }
        let want = cpu(BackendStorage::copy_layout(&a, &lc).unwrap());
        let got = CpuStorage::full(120, 0.0, dt);
        unsafe { fcp(120, ptr(&a), Lay::of(&lc).unwrap(), ptr(&got)) };
        assert_same(&format!("copy {dt}"), &want, &got, 0.0);
    }
}

#[test]
fn casts_match_cpu_exactly() {
    let Some(l) = lib("cast", None) else { return };
    let mut v = vec![
        -1e30,
        -70000.0,
        -300.5,
        -2.5,
        -1.0,
        -0.4,
        -0.0,
        0.0,
        0.3,
        0.5,
        1.5,
        2.5,
        65519.0,
        65520.0,
        70000.0,
        1e30,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1.0 / 3.0,
        254.9,
        255.5,
        9.3e18,
        -9.3e18,
        1e-8,
        3.0e38,
        3.4e38,
        1.0000000596046448,
        1.00390625,
        1.0 + 2f64.powi(-9) + 2f64.powi(-30),
    ];
    v.extend(values(50, 4, 1e3));
    let n = v.len();
    let lay = Layout::contiguous(n);
    for a in ALL {
        let x = from_f64(&v, a);
        for b in ALL {
            let name = format!("cast_{}_{}", suffix(a), suffix(b));
            let f: Symbol<Copy> = unsafe { l.get(name.as_bytes()) }.unwrap();
            let want = cpu(BackendStorage::to_dtype(&x, &lay, b).unwrap());
            let got = CpuStorage::full(n, 0.0, b);
            unsafe { f(n as u64, ptr(&x), Lay::of(&lay).unwrap(), ptr(&got)) };
            assert_eq!(
                format!("{:?}", want),
                format!("{:?}", got),
                "{name} (inputs {:?})",
                f64s(&x)
            );
        }
    }
}

#[test]
fn reductions_and_softmax_match_cpu() {
    for dt in [
        DType::F32,
        DType::F64,
        DType::F16,
        DType::BF16,
        DType::I64,
        DType::U8,
    ] {
        let Some(l) = lib("reduce", Some(dt)) else {
            return;
        };
        let fs: Symbol<Sum> = unsafe { l.get(b"reduce_sum") }.unwrap();
        let fm: Symbol<Rows> = unsafe { l.get(b"reduce_maxmin") }.unwrap();
        let fa: Symbol<Rows> = unsafe { l.get(b"reduce_arg") }.unwrap();
        let mut v: Vec<f64> = values(60, 5, 5.0).iter().map(|x| x.round()).collect();
        if dt.is_float() {
            v[7] = f64::NAN;
            v[13] = f64::NAN;
        }
        if dt == DType::U8 {
            v.iter_mut().for_each(|x| *x = x.abs());
        }
        let x = from_f64(&v, dt);
        let lx = Layout::contiguous([3, 4, 5]);
        for dims in [vec![0usize], vec![1], vec![2], vec![0, 2]] {
            let rows: usize = (0..3)
                .filter(|d| !dims.contains(d))
                .map(|d| lx.dims()[d])
                .product();
            let inner = 60 / rows;
            let mut perm: Vec<usize> = (0..3).filter(|d| !dims.contains(d)).collect();
            perm.extend(&dims);
            let pl = Lay::of(&lx.permute(&perm).unwrap()).unwrap();
            if dt != DType::U8 {
                let want = cpu(BackendStorage::reduce(&x, &lx, ReduceOp::Sum, &dims).unwrap());
                let got = CpuStorage::full(rows, 0.0, dt);
                unsafe { fs(rows as u64, inner as u64, ptr(&x), pl, ptr(&got)) };
                assert_same(&format!("sum {dims:?} {dt}"), &want, &got, tol(dt));
            }
            for (is_min, op) in [(0, ReduceOp::Max), (1, ReduceOp::Min)] {
                let want = cpu(BackendStorage::reduce(&x, &lx, op, &dims).unwrap());
                let got = CpuStorage::full(rows, 0.0, dt);
                unsafe { fm(rows as u64, inner as u64, is_min, ptr(&x), pl, ptr(&got)) };
                assert_same(&format!("{op:?} {dims:?} {dt}"), &want, &got, 0.0);
            }
            if dims.len() == 1 {
                for (is_min, op) in [(0, ReduceOp::ArgMax), (1, ReduceOp::ArgMin)] {
                    let want = cpu(BackendStorage::reduce(&x, &lx, op, &dims).unwrap());
                    let got = CpuStorage::full(rows, 0.0, DType::I64);
                    unsafe { fa(rows as u64, inner as u64, is_min, ptr(&x), pl, ptr(&got)) };
                    assert_same(&format!("{op:?} {dims:?} {dt}"), &want, &got, 0.0);
                }
            }
        }
        if dt.is_float() {
            let fsm: Symbol<unsafe extern "C" fn(u64, u64, i32, u64, Lay, u64)> =
                unsafe { l.get(b"softmax_rows") }.unwrap();
            let mut yv = values(60, 6, 3.0);
            // Rows are y[j*12 + r]: row 0 has a +inf (all NaN out), row 1 is all -inf (NaN),
            // row 2 has a -inf (0 there), row 3 a NaN (all NaN).
            yv[12] = f64::INFINITY;
            (0..5).for_each(|j| yv[j * 12 + 1] = f64::NEG_INFINITY);
            yv[24 + 2] = f64::NEG_INFINITY;
            yv[36 + 3] = f64::NAN;
            let y = from_f64(&yv, dt);
            let ly = Layout::contiguous([5, 12]).permute(&[1, 0]).unwrap(); // rows of 5, strided
            for log in [false, true] {
                let want = cpu(BackendStorage::softmax(&y, &ly, log).unwrap());
                let got = CpuStorage::full(60, 0.0, dt);
                unsafe { fsm(12, 5, log as i32, ptr(&y), Lay::of(&ly).unwrap(), ptr(&got)) };
                assert_same(
                    &format!("softmax log={log} {dt}"),
                    &want,
                    &got,
                    2.0 * tol(dt),
                );
            }
        }
    }
}

#[test]
fn random_matches_cpu() {
    let cpu_b = mlfw_core::cpu::cpu_backend();
    for dt in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let Some(l) = lib("random", Some(dt)) else {
            return;
        };
        let fu: Symbol<Rand> = unsafe { l.get(b"rand_uniform") }.unwrap();
        let fnrm: Symbol<Rand> = unsafe { l.get(b"rand_normal") }.unwrap();
        let want = cpu(cpu_b.rand_uniform(1000, -2.0, 3.0, dt, 42, 17).unwrap());
        let got = CpuStorage::full(1000, 0.0, dt);
        unsafe { fu(1000, -2.0, 3.0, 42, 17, ptr(&got)) };
        assert_same(&format!("uniform {dt}"), &want, &got, 0.0);
        let want = cpu(cpu_b.randn(1000, 0.5, 2.0, dt, 42, 9).unwrap());
        let got = CpuStorage::full(1000, 0.0, dt);
        unsafe { fnrm(1000, 0.5, 2.0, 42, 9, ptr(&got)) };
        assert_same(&format!("normal {dt}"), &want, &got, 0.0);
    }
}
