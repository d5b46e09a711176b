//! Elementwise kernels over strided layouts: copy, cast, unary, binary, compare, where.
//!
//! Fast paths: contiguous inputs run as slice maps (split across threads when large);
//! other layouts run row by row over the last dim, with the inner loop specialised for
//! unit and zero (broadcast) strides.

use crate::parallel::{build_vec, chunk_len, PAR_THRESHOLD};
use crate::params::{BinaryOp, CmpOp, UnaryOp};
use crate::{CpuStorage, Error, FloatDType, Layout, Result, Shape, WithDType};
use std::mem::MaybeUninit;

/// Applies `f` to `src` into a new vec, in parallel chunks when large.
fn collect_map<T: Copy + Sync, U: Send>(src: &[T], f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let n = src.len();
    let chunk = chunk_len(n, PAR_THRESHOLD / 2);
    // SAFETY: each chunk writes all of its elements.
    unsafe {
        build_vec(n, chunk, |start, o: &mut [MaybeUninit<U>]| {
            for (o, &x) in o.iter_mut().zip(&src[start..]) {
                o.write(f(x));
            }
        })
    }
}

/// The view `l` of `data` as a new contiguous vec.
pub(crate) fn gather<T: Copy + Send + Sync>(data: &[T], l: &Layout) -> Vec<T> {
    if let Some((s, e)) = l.contiguous_range() {
        return data[s..e].to_vec();
    }
    let b = l.blocks();
    let mut out = Vec::with_capacity(l.elem_count());
    if l.elem_count() == 0 {
        return out;
    }
    if b.block_len == 1 {
        // Row by row over the coalesced dims, so a broadcast ([1, C, 1, 1] → [N, C, H, W])
        // fills runs of H·W and a transpose walks one stride, instead of an n-d index per element.
        let (cl, _) = coalesce(l, l);
        let r = cl.dims().len();
        let (row, st) = (cl.dims()[r - 1], cl.strides()[r - 1]);
        for start in row_starts(&cl) {
            if st == 0 {
                out.extend(std::iter::repeat_n(data[start], row));
            } else {
                out.extend((0..row).map(|j| data[start + j * st]));
            }
        }
    } else {
        for s in b.starts() {
            out.extend_from_slice(&data[s..s + b.block_len]);
        }
    }
    out
}

/// Contiguous input slice of `l` in `data`, or a gathered copy.
pub(crate) fn contiguous_cow<'a, T: Copy + Send + Sync>(
    data: &'a [T],
    l: &Layout,
) -> std::borrow::Cow<'a, [T]> {
    match l.contiguous_range() {
        Some((s, e)) => std::borrow::Cow::Borrowed(&data[s..e]),
        None => std::borrow::Cow::Owned(gather(data, l)),
    }
}

/// Maps every element of the view.
pub(crate) fn map1<T, U, F>(data: &[T], l: &Layout, f: F) -> Vec<U>
where
    T: Copy + Send + Sync,
    U: Copy + Send + Sync,
    F: Fn(T) -> U + Send + Sync,
{
    collect_map(&contiguous_cow(data, l), f)
}

/// Merges adjacent dims that are contiguous with each other in both layouts (and drops
/// size-1 dims), so `[64, 6, 28, 28] + [1, 6, 1, 1]` runs as 384 rows of 784 instead of
/// 10,752 rows of 28.
fn coalesce(a: &Layout, b: &Layout) -> (Layout, Layout) {
    let (d, sa, sb) = (a.dims(), a.strides(), b.strides());
    let (mut nd, mut na, mut nb): (Vec<usize>, Vec<usize>, Vec<usize>) = (vec![], vec![], vec![]);
    for i in 0..d.len() {
        if d[i] == 1 {
            continue;
        }
        if let (Some(&ld), Some(&la), Some(&lb)) = (nd.last(), na.last(), nb.last()) {
            if la == sa[i] * d[i] && lb == sb[i] * d[i] {
                let k = nd.len() - 1;
                nd[k] = ld * d[i];
                na[k] = sa[i];
                nb[k] = sb[i];
                continue;
            }
        }
        nd.push(d[i]);
        na.push(sa[i]);
        nb.push(sb[i]);
    }
    if nd.is_empty() {
        nd.push(1);
        na.push(1);
        nb.push(1);
    }
    let shape = Shape::new(nd);
    (
        Layout::from_parts(shape.clone(), na, a.offset()),
        Layout::from_parts(shape, nb, b.offset()),
    )
}

/// Row starts of a layout over all dims but the last.
fn row_starts(l: &Layout) -> Vec<usize> {
    let r = l.dims().len();
    let outer = Layout::from_parts(
        Shape::new(l.dims()[..r - 1].to_vec()),
        l.strides()[..r - 1].to_vec(),
        l.offset(),
    );
    outer.strided_index().collect()
}

/// Maps pairs of elements of two views of the same shape.
pub(crate) fn map2<T, V, U, F>(a: &[T], al: &Layout, b: &[V], bl: &Layout, f: F) -> Vec<U>
where
    T: Copy + Send + Sync,
    V: Copy + Send + Sync,
    U: Copy + Send + Sync + Default,
    F: Fn(T, V) -> U + Send + Sync,
{
    let n = al.elem_count();
    if let (Some((sa, ea)), Some((sb, eb))) = (al.contiguous_range(), bl.contiguous_range()) {
        let (x, y) = (&a[sa..ea], &b[sb..eb]);
        // SAFETY: each chunk writes all of its elements.
        return unsafe {
            build_vec(n, chunk_len(n, PAR_THRESHOLD / 2), |start, o| {
                for ((o, &p), &q) in o.iter_mut().zip(&x[start..]).zip(&y[start..]) {
                    o.write(f(p, q));
                }
            })
        };
    }
    if n == 0 {
        return vec![];
    }
    if al.dims().is_empty() {
        return vec![f(a[al.offset()], b[bl.offset()])];
    }
    let (al, bl) = coalesce(al, bl);
    let (al, bl) = (&al, &bl);
    let r = al.dims().len();
    let row = al.dims()[r - 1];
    if row == 0 {
        return vec![];
    }
    let (sa, sb) = (al.strides()[r - 1], bl.strides()[r - 1]);
    let (ra, rb) = (row_starts(al), row_starts(bl));
    // Any chunk of the flat output is cut at row ends into fragments, each run with the
    // inner loop for its stride pattern.
    let frag = |rk: usize, j0: usize, o: &mut [MaybeUninit<U>]| {
        let len = o.len();
        let (pa, pb) = (ra[rk] + j0 * sa, rb[rk] + j0 * sb);
        match (sa, sb) {
            (1, 1) => o
                .iter_mut()
                .zip(&a[pa..pa + len])
                .zip(&b[pb..pb + len])
                .for_each(|((o, &p), &q)| {
                    o.write(f(p, q));
                }),
            (1, 0) => {
                let q = b[pb];
                o.iter_mut().zip(&a[pa..pa + len]).for_each(|(o, &p)| {
                    o.write(f(p, q));
                })
            }
            (0, 1) => {
                let p = a[pa];
                o.iter_mut().zip(&b[pb..pb + len]).for_each(|(o, &q)| {
                    o.write(f(p, q));
                })
            }
            _ => o.iter_mut().enumerate().for_each(|(j, o)| {
                o.write(f(a[pa + j * sa], b[pb + j * sb]));
            }),
        }
    };
    // SAFETY: the fragments of a chunk tile it exactly, and each fragment writes all of it.
    unsafe {
        build_vec(n, chunk_len(n, PAR_THRESHOLD / 2), |start, o| {
            let mut off = 0;
            while off < o.len() {
                let pos = start + off;
                let len = (row - pos % row).min(o.len() - off);
                frag(pos / row, pos % row, &mut o[off..off + len]);
                off += len;
            }
        })
    }
}

/// One operand of [`map3`]: a broadcast scalar (every stride 0) read once, or a contiguous run.
enum Operand<'a, T: Clone> {
    Scalar(T),
    Run(std::borrow::Cow<'a, [T]>),
}

impl<'a, T: Copy + Send + Sync> Operand<'a, T> {
    fn new(v: &'a [T], l: &Layout) -> Self {
        if l.elem_count() > 0 && l.strides().iter().all(|&s| s == 0) {
            Operand::Scalar(v[l.offset()])
        } else {
            Operand::Run(contiguous_cow(v, l))
        }
    }
    #[inline(always)]
    fn at(&self, i: usize) -> T {
        match self {
            Operand::Scalar(x) => *x,
            Operand::Run(r) => r[i],
        }
    }
}

/// Maps triples (for `where`), in parallel chunks when large; a broadcast scalar operand
/// (such as the zero of a masked gradient) is read once instead of being expanded.
pub(crate) fn map3<C, T, F>(
    c: &[C],
    cl: &Layout,
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
    f: F,
) -> Vec<T>
where
    C: Copy + Send + Sync,
    T: Copy + Send + Sync + Default,
    F: Fn(C, T, T) -> T + Send + Sync,
{
    let c = contiguous_cow(c, cl);
    let (a, b) = (Operand::new(a, al), Operand::new(b, bl));
    let n = c.len();
    // SAFETY: each chunk writes all of its elements.
    unsafe {
        build_vec(n, chunk_len(n, PAR_THRESHOLD / 2), |start, o| {
            let cs = &c[start..start + o.len()];
            match (&a, &b) {
                (Operand::Run(x), Operand::Run(y)) => {
                    for (((o, &c), &x), &y) in
                        o.iter_mut().zip(cs).zip(&x[start..]).zip(&y[start..])
                    {
                        o.write(f(c, x, y));
                    }
                }
                (Operand::Scalar(x), Operand::Run(y)) => {
                    for ((o, &c), &y) in o.iter_mut().zip(cs).zip(&y[start..]) {
                        o.write(f(c, *x, y));
                    }
                }
                _ => {
                    for (k, (o, &c)) in o.iter_mut().zip(cs).enumerate() {
                        o.write(f(c, a.at(start + k), b.at(start + k)));
                    }
                }
            }
        })
    }
}

/// Casts the view to dtype `U`.
pub(crate) fn cast<T: WithDType, U: WithDType>(data: &[T], l: &Layout) -> Vec<U> {
    map1(data, l, |x| U::from_f64(x.to_f64()))
}

/// The view `l` of `s` converted to `dtype`.
pub(crate) fn to_dtype(s: &CpuStorage, l: &Layout, dtype: crate::DType) -> CpuStorage {
    use crate::DType as D;
    use half::{bf16, f16};
    // f32 <-> half conversions have direct instructions; everything else goes through f64.
    match (s, dtype) {
        (CpuStorage::F32(v), D::F16) => CpuStorage::F16(map1(v, l, f16::from_f32)),
        (CpuStorage::F32(v), D::BF16) => CpuStorage::BF16(map1(v, l, bf16::from_f32)),
        (CpuStorage::F16(v), D::F32) => CpuStorage::F32(map1(v, l, f16::to_f32)),
        (CpuStorage::BF16(v), D::F32) => CpuStorage::F32(map1(v, l, bf16::to_f32)),
        (CpuStorage::U8(v), D::F32) => CpuStorage::F32(map1(v, l, |x| x as f32)),
        (CpuStorage::I64(v), D::F32) => CpuStorage::F32(map1(v, l, |x| x as f32)),
        _ => crate::with_cpu_vec!(s, v => match dtype {
            D::U8 => CpuStorage::U8(cast(v, l)),
            D::Bool => CpuStorage::Bool(cast(v, l)),
            D::I64 => CpuStorage::I64(cast(v, l)),
            D::F16 => CpuStorage::F16(cast(v, l)),
            D::BF16 => CpuStorage::BF16(cast(v, l)),
            D::F32 => CpuStorage::F32(cast(v, l)),
            D::F64 => CpuStorage::F64(cast(v, l)),
        }),
    }
}

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
    match op {
        BinaryOp::Add => map2(a, al, b, bl, |x, y| x + y),
        BinaryOp::Sub => map2(a, al, b, bl, |x, y| x - y),
        BinaryOp::Mul => map2(a, al, b, bl, |x, y| x * y),
        BinaryOp::Div => map2(a, al, b, bl, |x, y| x / y),
        BinaryOp::Maximum => map2(a, al, b, bl, |x, y| if x.is_nan() || x > y { x } else { y }),
        BinaryOp::Minimum => map2(a, al, b, bl, |x, y| if x.is_nan() || x < y { x } else { y }),
        BinaryOp::Pow => map2(a, al, b, bl, |x, y| x.powf(y)),
    }
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

/// Writes the view `l` of `src` into the view `dl` of `dst`.
pub(crate) fn copy_into(
    src: &CpuStorage,
    l: &Layout,
    dst: &mut CpuStorage,
    dl: &Layout,
) -> Result<()> {
    macro_rules! go {
        ($($v:ident),*) => {
            match (src, dst) {
                $((CpuStorage::$v(s), CpuStorage::$v(d)) => copy_strided(s, l, d, dl),)*
                (s, d) => return Err(Error::DTypeMismatch { op: "copy", lhs: d.dtype(), rhs: s.dtype() }),
            }
        };
    }
    go!(U8, Bool, I64, F16, BF16, F32, F64);
    Ok(())
}

fn copy_strided<T: Copy + Send + Sync>(s: &[T], l: &Layout, d: &mut [T], dl: &Layout) {
    if let Some((ds, de)) = dl.contiguous_range() {
        match l.contiguous_range() {
            Some((ss, se)) => d[ds..de].copy_from_slice(&s[ss..se]),
            None => d[ds..de].copy_from_slice(&gather(s, l)),
        }
        return;
    }
    let src = contiguous_cow(s, l);
    let b = dl.blocks();
    if b.block_len == 1 {
        for (i, o) in dl.strided_index().enumerate() {
            d[o] = src[i];
        }
    } else {
        for (k, st) in b.starts().enumerate() {
            d[st..st + b.block_len].copy_from_slice(&src[k * b.block_len..(k + 1) * b.block_len]);
        }
    }
}
