//! Elementwise ops on host storage: unary maths, binaries, comparisons and `where`, each a
//! closure over the strided maps of `map.rs`. Semantics (NaN rules, integer support) are the
//! reference the CUDA kernels are checked against.

use super::map::{contiguous_cow, map1, map2, map2_into, map3};
use crate::params::{BinaryOp, CmpOp, UnaryOp};
use crate::{CpuStorage, Error, FloatDType, Layout, Result, WithDType};
use std::mem::MaybeUninit;

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_C: f64 = 0.044_715;

#[inline]
fn sigmoid<T: FloatDType>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

fn unary_float<T: FloatDType>(v: &[T], l: &Layout, op: UnaryOp) -> Vec<T> {
    let c = |x: f64| T::from_f64(x);
    match op {
        UnaryOp::Neg => map1(v, l, |x| -x),
        UnaryOp::Abs => map1(v, l, |x| x.abs()),
        UnaryOp::Exp => map1(v, l, |x| x.exp()),
        UnaryOp::Log => map1(v, l, |x| x.ln()),
        UnaryOp::Sqrt => map1(v, l, |x| x.sqrt()),
        UnaryOp::Rsqrt => map1(v, l, |x| T::one() / x.sqrt()),
        UnaryOp::Sin => map1(v, l, |x| x.sin()),
        UnaryOp::Cos => map1(v, l, |x| x.cos()),
        UnaryOp::Tanh => map1(v, l, |x| x.tanh()),
        UnaryOp::Sigmoid => map1(v, l, sigmoid),
        // NaN passes through (PyTorch); `x > 0 || x is NaN` still compiles to a compare + blend.
        UnaryOp::Relu => map1(v, l, |x| {
            if x > T::zero() || x.is_nan() {
                x
            } else {
                T::zero()
            }
        }),
        UnaryOp::GeluErf => map1(v, l, |x| {
            let xf = x.to_f64();
            c(0.5 * xf * (1.0 + libm::erf(xf * std::f64::consts::FRAC_1_SQRT_2)))
        }),
        UnaryOp::GeluTanh => map1(v, l, |x| {
            let xf = x.to_f64();
            c(0.5 * xf * (1.0 + (SQRT_2_OVER_PI * (xf + GELU_C * xf * xf * xf)).tanh()))
        }),
        // libm's erf in f64 (the one GELU uses), rounded once to T.
        UnaryOp::Erf => map1(v, l, |x| c(libm::erf(x.to_f64()))),
        // sign(NaN) is NaN (NumPy/IEEE; PyTorch gives 0): see the README's list of differences.
        UnaryOp::Sign => map1(v, l, |x| {
            if x > T::zero() {
                T::one()
            } else if x < T::zero() {
                -T::one()
            } else {
                x * T::zero()
            }
        }),
        UnaryOp::Recip => map1(v, l, |x| T::one() / x),
        UnaryOp::Square => map1(v, l, |x| x * x),
        UnaryOp::LeakyRelu(s) => {
            let s = c(s);
            map1(v, l, move |x| if x > T::zero() { x } else { x * s })
        }
        UnaryOp::Powf(e) => {
            if e == 2.0 {
                map1(v, l, |x| x * x)
            } else {
                let ef = c(e);
                map1(v, l, move |x| x.powf(ef))
            }
        }
        UnaryOp::Clamp(lo, hi) => {
            let (lo, hi) = (c(lo), c(hi));
            map1(
                v,
                l,
                move |x| if x.is_nan() { x } else { x.max(lo).min(hi) },
            )
        }
        UnaryOp::Affine(m, a) => {
            let (m, a) = (c(m), c(a));
            map1(v, l, move |x| x * m + a)
        }
    }
}

fn unary_int<T: WithDType + std::ops::Neg<Output = T>>(
    v: &[T],
    l: &Layout,
    op: UnaryOp,
    dt: crate::DType,
) -> Result<Vec<T>> {
    let z = T::ZERO;
    Ok(match op {
        UnaryOp::Neg => map1(v, l, |x| -x),
        UnaryOp::Abs => map1(v, l, |x| if x < z { -x } else { x }),
        UnaryOp::Relu => map1(v, l, |x| if x > z { x } else { z }),
        UnaryOp::Sign => map1(v, l, |x| {
            if x > z {
                T::ONE
            } else if x < z {
                -T::ONE
            } else {
                z
            }
        }),
        UnaryOp::Clamp(lo, hi) => map1(v, l, move |x| T::from_f64(x.to_f64().max(lo).min(hi))),
        UnaryOp::Affine(m, a) => map1(v, l, move |x| T::from_f64(x.to_f64() * m + a)),
        UnaryOp::Square => map1(v, l, |x| T::from_f64(x.to_f64() * x.to_f64())),
        _ => {
            return Err(Error::UnsupportedDType {
                op: "unary",
                dtype: dt,
            })
        }
    })
}

/// Elementwise op of one input.
pub(crate) fn unary(s: &CpuStorage, l: &Layout, op: UnaryOp) -> Result<CpuStorage> {
    Ok(match s {
        CpuStorage::F32(v) if op == UnaryOp::Exp => {
            CpuStorage::F32(super::vexp::exp_f32(&contiguous_cow(v, l)))
        }
        CpuStorage::F32(v) => CpuStorage::F32(unary_float(v, l, op)),
        CpuStorage::F64(v) => CpuStorage::F64(unary_float(v, l, op)),
        CpuStorage::F16(v) => CpuStorage::F16(unary_float(v, l, op)),
        CpuStorage::BF16(v) => CpuStorage::BF16(unary_float(v, l, op)),
        CpuStorage::I64(v) => CpuStorage::I64(unary_int(v, l, op, s.dtype())?),
        CpuStorage::U8(v) => match op {
            UnaryOp::Relu | UnaryOp::Abs => CpuStorage::U8(map1(v, l, |x| x)),
            UnaryOp::Clamp(lo, hi) => {
                CpuStorage::U8(map1(v, l, move |x| (x as f64).max(lo).min(hi) as u8))
            }
            UnaryOp::Affine(m, a) => CpuStorage::U8(map1(v, l, move |x| (x as f64 * m + a) as u8)),
            _ => {
                return Err(Error::UnsupportedDType {
                    op: "unary",
                    dtype: s.dtype(),
                })
            }
        },
        CpuStorage::Bool(_) => {
            return Err(Error::UnsupportedDType {
                op: "unary",
                dtype: s.dtype(),
            })
        }
    })
}

fn binary_float<T: FloatDType>(a: &[T], al: &Layout, b: &[T], bl: &Layout, op: BinaryOp) -> Vec<T> {
    let n = al.elem_count();
    let mut out = Vec::with_capacity(n);
    binary_float_into(a, al, b, bl, op, &mut out.spare_capacity_mut()[..n]);
    // SAFETY: `binary_float_into` writes every element of the slice it is given.
    unsafe { out.set_len(n) };
    out
}

/// [`binary_float`] into `o` (the views' element count), every element written.
fn binary_float_into<T: FloatDType>(
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
    op: BinaryOp,
    o: &mut [MaybeUninit<T>],
) {
    match op {
        BinaryOp::Add => map2_into(a, al, b, bl, |x, y| x + y, o),
        BinaryOp::Sub => map2_into(a, al, b, bl, |x, y| x - y, o),
        BinaryOp::Mul => map2_into(a, al, b, bl, |x, y| x * y, o),
        BinaryOp::Div => map2_into(a, al, b, bl, |x, y| x / y, o),
        BinaryOp::Maximum => map2_into(
            a,
            al,
            b,
            bl,
            |x, y| if x.is_nan() || x > y { x } else { y },
            o,
        ),
        BinaryOp::Minimum => map2_into(
            a,
            al,
            b,
            bl,
            |x, y| if x.is_nan() || x < y { x } else { y },
            o,
        ),
        BinaryOp::Pow => map2_into(a, al, b, bl, |x, y| x.powf(y), o),
    }
}

/// [`binary`] of two same-shaped f32 views into `out` (contiguous, the views' element count,
/// any prior contents, every element written): the same closures over the same strided
/// walk, so bit-identical to [`binary`].
///
/// # Errors
/// Views of different shapes; `out` of the wrong length.
pub(crate) fn binary_f32_into(
    a: &[f32],
    al: &Layout,
    b: &[f32],
    bl: &Layout,
    op: BinaryOp,
    out: &mut [f32],
) -> Result<()> {
    if al.dims() != bl.dims() {
        return Err(Error::msg(format!(
            "binary into: views of shapes {} and {} differ",
            al.shape(),
            bl.shape()
        )));
    }
    if out.len() != al.elem_count() {
        return Err(Error::msg(format!(
            "binary into: output buffer of {} elements, the result needs {}",
            out.len(),
            al.elem_count()
        )));
    }
    // SAFETY: same layout; only initialised f32 values are written through it.
    let o = unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) };
    binary_float_into(a, al, b, bl, op, o);
    Ok(())
}

fn binary_int<T>(
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
    op: BinaryOp,
    dt: crate::DType,
) -> Result<Vec<T>>
where
    T: WithDType + num_traits::WrappingAdd + num_traits::WrappingSub + num_traits::WrappingMul,
{
    Ok(match op {
        BinaryOp::Add => map2(a, al, b, bl, |x: T, y: T| x.wrapping_add(&y)),
        BinaryOp::Sub => map2(a, al, b, bl, |x: T, y: T| x.wrapping_sub(&y)),
        BinaryOp::Mul => map2(a, al, b, bl, |x: T, y: T| x.wrapping_mul(&y)),
        BinaryOp::Maximum => map2(a, al, b, bl, |x, y| if x > y { x } else { y }),
        BinaryOp::Minimum => map2(a, al, b, bl, |x, y| if x < y { x } else { y }),
        _ => {
            return Err(Error::UnsupportedDType {
                op: "binary",
                dtype: dt,
            })
        }
    })
}

/// Elementwise op of two same-shaped views of the same dtype.
pub(crate) fn binary(
    a: &CpuStorage,
    al: &Layout,
    b: &CpuStorage,
    bl: &Layout,
    op: BinaryOp,
) -> Result<CpuStorage> {
    Ok(match (a, b) {
        (CpuStorage::F32(x), CpuStorage::F32(y)) => CpuStorage::F32(binary_float(x, al, y, bl, op)),
        (CpuStorage::F64(x), CpuStorage::F64(y)) => CpuStorage::F64(binary_float(x, al, y, bl, op)),
        (CpuStorage::F16(x), CpuStorage::F16(y)) => CpuStorage::F16(binary_float(x, al, y, bl, op)),
        (CpuStorage::BF16(x), CpuStorage::BF16(y)) => {
            CpuStorage::BF16(binary_float(x, al, y, bl, op))
        }
        (CpuStorage::I64(x), CpuStorage::I64(y)) => {
            CpuStorage::I64(binary_int(x, al, y, bl, op, a.dtype())?)
        }
        (CpuStorage::U8(x), CpuStorage::U8(y)) => {
            CpuStorage::U8(binary_int(x, al, y, bl, op, a.dtype())?)
        }
        (CpuStorage::Bool(x), CpuStorage::Bool(y)) => CpuStorage::Bool(match op {
            BinaryOp::Mul | BinaryOp::Minimum => map2(x, al, y, bl, |p, q| p && q),
            BinaryOp::Add | BinaryOp::Maximum => map2(x, al, y, bl, |p, q| p || q),
            _ => {
                return Err(Error::UnsupportedDType {
                    op: "binary",
                    dtype: a.dtype(),
                })
            }
        }),
        _ => {
            return Err(Error::DTypeMismatch {
                op: "binary",
                lhs: a.dtype(),
                rhs: b.dtype(),
            })
        }
    })
}

fn cmp_t<T: WithDType>(a: &[T], al: &Layout, b: &[T], bl: &Layout, op: CmpOp) -> Vec<bool> {
    match op {
        CmpOp::Eq => map2(a, al, b, bl, |x, y| x == y),
        CmpOp::Ne => map2(a, al, b, bl, |x, y| x != y),
        CmpOp::Lt => map2(a, al, b, bl, |x, y| x < y),
        CmpOp::Le => map2(a, al, b, bl, |x, y| x <= y),
        CmpOp::Gt => map2(a, al, b, bl, |x, y| x > y),
        CmpOp::Ge => map2(a, al, b, bl, |x, y| x >= y),
    }
}

/// Comparison of two same-shaped views to a bool mask.
pub(crate) fn cmp(
    a: &CpuStorage,
    al: &Layout,
    b: &CpuStorage,
    bl: &Layout,
    op: CmpOp,
) -> Result<CpuStorage> {
    Ok(CpuStorage::Bool(match (a, b) {
        (CpuStorage::F32(x), CpuStorage::F32(y)) => cmp_t(x, al, y, bl, op),
        (CpuStorage::F64(x), CpuStorage::F64(y)) => cmp_t(x, al, y, bl, op),
        (CpuStorage::F16(x), CpuStorage::F16(y)) => cmp_t(x, al, y, bl, op),
        (CpuStorage::BF16(x), CpuStorage::BF16(y)) => cmp_t(x, al, y, bl, op),
        (CpuStorage::I64(x), CpuStorage::I64(y)) => cmp_t(x, al, y, bl, op),
        (CpuStorage::U8(x), CpuStorage::U8(y)) => cmp_t(x, al, y, bl, op),
        (CpuStorage::Bool(x), CpuStorage::Bool(y)) => cmp_t(x, al, y, bl, op),
        _ => {
            return Err(Error::DTypeMismatch {
                op: "compare",
                lhs: a.dtype(),
                rhs: b.dtype(),
            })
        }
    }))
}

/// `t` where `c` else `f`.
pub(crate) fn where_cond(
    c: &CpuStorage,
    cl: &Layout,
    t: &CpuStorage,
    tl: &Layout,
    f: &CpuStorage,
    fl: &Layout,
) -> Result<CpuStorage> {
    let cond: std::borrow::Cow<[bool]> = match c {
        CpuStorage::Bool(v) => contiguous_cow(v, cl),
        CpuStorage::U8(v) => std::borrow::Cow::Owned(map1(v, cl, |x| x != 0)),
        other => {
            return Err(Error::UnsupportedDType {
                op: "where (condition)",
                dtype: other.dtype(),
            })
        }
    };
    let cl = Layout::contiguous(cl.shape().clone());
    macro_rules! pick {
        ($($v:ident),*) => {
            match (t, f) {
                $((CpuStorage::$v(x), CpuStorage::$v(y)) => CpuStorage::$v(map3(&cond, &cl, x, tl, y, fl, |c, x, y| if c { x } else { y })),)*
                _ => return Err(Error::DTypeMismatch { op: "where", lhs: t.dtype(), rhs: f.dtype() }),
            }
        };
    }
    Ok(pick!(U8, Bool, I64, F16, BF16, F32, F64))
}
