//! Copies, casts, fills, unary/binary/compare/where launchers.

use super::{cfg_1d, launch};
use crate::buffer::CudaStorage;
use crate::error::Wrap;
use crate::lay::Lay;
use mlfw_core::params::{BinaryOp, CmpOp, UnaryOp};
use mlfw_core::{DType, Error, Layout, Result};

/// The view `l` as a new contiguous buffer (one device copy when the view is one run).
pub(crate) fn copy_layout(s: &CudaStorage, l: &Layout) -> Result<CudaStorage> {
    let n = l.elem_count();
    let out = CudaStorage::alloc(&s.dev, s.dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    if let Some((start, _)) = l.contiguous_range() {
        let bytes = n * s.dtype.size_in_bytes();
        s.dev.ctx.bind_to_thread().w("binding the context")?;
        // SAFETY: both ranges lie inside live buffers of this device; stream-ordered.
        unsafe {
            cudarc::driver::result::memcpy_dtod_async(
                out.ptr(),
                s.ptr_at(start),
                bytes,
                s.dev.stream.cu_stream(),
            )
        }
        .w("device copy")?;
        return Ok(out);
    }
    let f = s.dev.func("elementwise", Some(s.dtype), "ew_copy")?;
    launch!(s.dev, f, cfg_1d(n); n as u64, s.ptr(), Lay::of(l)?, out.ptr())?;
    Ok(out)
}

/// Writes the view `l` of `src` into the view `dl` of `dst` (same shape and dtype).
pub(crate) fn copy_into(
    src: &CudaStorage,
    l: &Layout,
    dst: &CudaStorage,
    dl: &Layout,
) -> Result<()> {
    if src.dtype != dst.dtype {
        return Err(Error::DTypeMismatch {
            op: "copy",
            lhs: dst.dtype,
            rhs: src.dtype,
        });
    }
    let n = l.elem_count();
    if n == 0 {
        return Ok(());
    }
    let lays = Lay::joint(&[l, dl])?;
    let f = src
        .dev
        .func("elementwise", Some(src.dtype), "ew_copy_into")?;
    launch!(src.dev, f, cfg_1d(n); n as u64, src.ptr(), lays[0], dst.ptr(), lays[1])
}

/// The view converted to `dtype` (the CPU's rounding and saturation rules).
pub(crate) fn to_dtype(s: &CudaStorage, l: &Layout, dtype: DType) -> Result<CudaStorage> {
    if dtype == s.dtype {
        return copy_layout(s, l);
    }
    let n = l.elem_count();
    let out = CudaStorage::alloc(&s.dev, dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let name = cast_name(s.dtype, dtype);
    let f = s.dev.func("cast", None, name)?;
    launch!(s.dev, f, cfg_1d(n); n as u64, s.ptr(), Lay::of(l)?, out.ptr())?;
    Ok(out)
}

fn cast_name(a: DType, b: DType) -> &'static str {
    use crate::kernels::suffix;
    // Kernel names must be 'static for the function cache; there are only 49 of them.
    static NAMES: std::sync::OnceLock<std::collections::HashMap<(DType, DType), &'static str>> =
        std::sync::OnceLock::new();
    let all = crate::kernels::ALL;
    NAMES.get_or_init(|| {
        let mut m = std::collections::HashMap::new();
        for x in all {
            for y in all {
                let s: &'static str =
                    Box::leak(format!("cast_{}_{}", suffix(x), suffix(y)).into_boxed_str());
                m.insert((x, y), s);
            }
        }
        m
    })[&(a, b)]
}

/// `n` elements equal to `value` converted to `dtype` (the host does the conversion, so the
/// bits equal the CPU's).
pub(crate) fn full(
    dev: &std::sync::Arc<crate::context::CudaDevice>,
    n: usize,
    value: f64,
    dtype: DType,
) -> Result<CudaStorage> {
    if value == 0.0 && !value.is_sign_negative() {
        return CudaStorage::zeros(dev, dtype, n);
    }
    let out = CudaStorage::alloc(dev, dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let one = mlfw_core::CpuStorage::full(1, value, dtype);
    let mut bits = [0u8; 8];
    let b = crate::buffer::host_bytes(&one);
    bits[..b.len()].copy_from_slice(b);
    let v = u64::from_le_bytes(bits);
    let cfg = cfg_1d(n);
    match dtype.size_in_bytes() {
        1 => launch!(dev, dev.func("fill", None, "fill1")?, cfg; n as u64, v as u8, out.ptr()),
        2 => launch!(dev, dev.func("fill", None, "fill2")?, cfg; n as u64, v as u16, out.ptr()),
        4 => launch!(dev, dev.func("fill", None, "fill4")?, cfg; n as u64, v as u32, out.ptr()),
        _ => launch!(dev, dev.func("fill", None, "fill8")?, cfg; n as u64, v, out.ptr()),
    }?;
    Ok(out)
}

/// Op code and parameters of a unary op (codes match `unary_op` in kernels/elementwise.rs).
fn unary_code(op: UnaryOp) -> (i32, f64, f64) {
    use UnaryOp::*;
    match op {
        Neg => (0, 0., 0.),
        Abs => (1, 0., 0.),
        Exp => (2, 0., 0.),
        Log => (3, 0., 0.),
        Sqrt => (4, 0., 0.),
        Rsqrt => (5, 0., 0.),
        Sin => (6, 0., 0.),
        Cos => (7, 0., 0.),
        Tanh => (8, 0., 0.),
        Sigmoid => (9, 0., 0.),
        Relu => (10, 0., 0.),
        GeluErf => (11, 0., 0.),
        GeluTanh => (12, 0., 0.),
        Sign => (13, 0., 0.),
        Recip => (14, 0., 0.),
        Square => (15, 0., 0.),
        LeakyRelu(s) => (16, s, 0.),
        Powf(e) => (17, e, 0.),
        Clamp(lo, hi) => (18, lo, hi),
        Affine(m, a) => (19, m, a),
        Erf => (20, 0., 0.),
    }
}

/// Elementwise op of one input; the dtypes each op supports are the CPU backend's.
pub(crate) fn unary(s: &CudaStorage, l: &Layout, op: UnaryOp) -> Result<CudaStorage> {
    use UnaryOp::*;
    let ok = match s.dtype {
        d if d.is_float() => true,
        DType::I64 => matches!(
            op,
            Neg | Abs | Relu | Sign | Clamp(..) | Affine(..) | Square
        ),
        DType::U8 => matches!(op, Relu | Abs | Clamp(..) | Affine(..)),
        _ => false,
    };
    if !ok {
        return Err(Error::UnsupportedDType {
            op: "unary",
            dtype: s.dtype,
        });
    }
    let n = l.elem_count();
    let out = CudaStorage::alloc(&s.dev, s.dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let (code, p0, p1) = unary_code(op);
    let f = s.dev.func("elementwise", Some(s.dtype), "ew_unary")?;
    launch!(s.dev, f, cfg_1d(n); n as u64, code, p0, p1, s.ptr(), Lay::of(l)?, out.ptr())?;
    Ok(out)
}

/// Elementwise op of two same-shaped views of the same dtype.
pub(crate) fn binary(
    a: &CudaStorage,
    al: &Layout,
    b: &CudaStorage,
    bl: &Layout,
    op: BinaryOp,
) -> Result<CudaStorage> {
    use BinaryOp::*;
    if a.dtype != b.dtype {
        return Err(Error::DTypeMismatch {
            op: "binary",
            lhs: a.dtype,
            rhs: b.dtype,
        });
    }
    let ok = match a.dtype {
        d if d.is_float() => true,
        DType::I64 | DType::U8 => matches!(op, Add | Sub | Mul | Maximum | Minimum),
        _ => matches!(op, Add | Mul | Maximum | Minimum),
    };
    if !ok {
        return Err(Error::UnsupportedDType {
            op: "binary",
            dtype: a.dtype,
        });
    }
    let code: i32 = match op {
        Add => 0,
        Sub => 1,
        Mul => 2,
        Div => 3,
        Maximum => 4,
        Minimum => 5,
        Pow => 6,
    };
    let n = al.elem_count();
    let out = CudaStorage::alloc(&a.dev, a.dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let lays = Lay::joint(&[al, bl])?;
    let f = a.dev.func("elementwise", Some(a.dtype), "ew_binary")?;
    launch!(a.dev, f, cfg_1d(n); n as u64, code, a.ptr(), lays[0], b.ptr(), lays[1], out.ptr())?;
    Ok(out)
}

/// Comparison of two same-shaped views to a bool mask.
pub(crate) fn cmp(
    a: &CudaStorage,
    al: &Layout,
    b: &CudaStorage,
    bl: &Layout,
    op: CmpOp,
) -> Result<CudaStorage> {
    if a.dtype != b.dtype {
        return Err(Error::DTypeMismatch {
            op: "compare",
            lhs: a.dtype,
            rhs: b.dtype,
        });
    }
    let code: i32 = match op {
        CmpOp::Eq => 0,
        CmpOp::Ne => 1,
        CmpOp::Lt => 2,
        CmpOp::Le => 3,
        CmpOp::Gt => 4,
        CmpOp::Ge => 5,
    };
    let n = al.elem_count();
    let out = CudaStorage::alloc(&a.dev, DType::Bool, n)?;
    if n == 0 {
        return Ok(out);
    }
    let lays = Lay::joint(&[al, bl])?;
    let f = a.dev.func("elementwise", Some(a.dtype), "ew_cmp")?;
    launch!(a.dev, f, cfg_1d(n); n as u64, code, a.ptr(), lays[0], b.ptr(), lays[1], out.ptr())?;
    Ok(out)
}

/// `t` where the bool/u8 mask `c` is nonzero, else `f`.
pub(crate) fn where_cond(
    c: &CudaStorage,
    cl: &Layout,
    t: &CudaStorage,
    tl: &Layout,
    f: &CudaStorage,
    fl: &Layout,
) -> Result<CudaStorage> {
    if !matches!(c.dtype, DType::Bool | DType::U8) {
        return Err(Error::UnsupportedDType {
            op: "where (condition)",
            dtype: c.dtype,
        });
    }
    if t.dtype != f.dtype {
        return Err(Error::DTypeMismatch {
            op: "where",
            lhs: t.dtype,
            rhs: f.dtype,
        });
    }
    let n = cl.elem_count();
    let out = CudaStorage::alloc(&t.dev, t.dtype, n)?;
    if n == 0 {
        return Ok(out);
    }
    let lays = Lay::joint(&[cl, tl, fl])?;
    let k = t.dev.func("elementwise", Some(t.dtype), "ew_where")?;
    launch!(t.dev, k, cfg_1d(n); n as u64, c.ptr(), lays[0], t.ptr(), lays[1], f.ptr(), lays[2], out.ptr())?;
    Ok(out)
}
