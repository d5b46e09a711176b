//! The strided maps the elementwise ops run on (`map1`/`map2`/`map3`), copies and casts; the
//! ops themselves (unary, binary, compare, where) are in `elementwise.rs`.
//!
//! Fast paths: contiguous inputs run as slice maps (split across threads when large);
//! other layouts run row by row over the last dim, with the inner loop specialised for
//! unit and zero (broadcast) strides.

use crate::parallel::{build_vec, chunk_len, for_each_chunk_mut, PAR_THRESHOLD};
use crate::{CpuStorage, Error, Layout, Result, Shape, WithDType};
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
    let mut out = Vec::with_capacity(n);
    map2_into(a, al, b, bl, f, &mut out.spare_capacity_mut()[..n]);
    // SAFETY: `map2_into` writes every element of the slice it is given.
    unsafe { out.set_len(n) };
    out
}

/// Calls `f(start, chunk)` for the chunks of `out` over the pool (as `build_vec` does).
fn fill_chunks<U: Send>(
    out: &mut [MaybeUninit<U>],
    chunk: usize,
    f: impl Fn(usize, &mut [MaybeUninit<U>]) + Sync,
) {
    let chunk = chunk.max(1);
    for_each_chunk_mut(out, chunk, |i, c| f(i * chunk, c));
}

/// [`map2`] into `out` (the views' element count), every element written.
pub(crate) fn map2_into<T, V, U, F>(
    a: &[T],
    al: &Layout,
    b: &[V],
    bl: &Layout,
    f: F,
    out: &mut [MaybeUninit<U>],
) where
    T: Copy + Send + Sync,
    V: Copy + Send + Sync,
    U: Copy + Send + Sync + Default,
    F: Fn(T, V) -> U + Send + Sync,
{
    let n = al.elem_count();
    debug_assert_eq!(out.len(), n);
    if let (Some((sa, ea)), Some((sb, eb))) = (al.contiguous_range(), bl.contiguous_range()) {
        let (x, y) = (&a[sa..ea], &b[sb..eb]);
        fill_chunks(out, chunk_len(n, PAR_THRESHOLD / 2), |start, o| {
            for ((o, &p), &q) in o.iter_mut().zip(&x[start..]).zip(&y[start..]) {
                o.write(f(p, q));
            }
        });
        return;
    }
    if n == 0 {
        return;
    }
    if al.dims().is_empty() {
        out[0].write(f(a[al.offset()], b[bl.offset()]));
        return;
    }
    let (al, bl) = coalesce(al, bl);
    let (al, bl) = (&al, &bl);
    let r = al.dims().len();
    let row = al.dims()[r - 1];
    if row == 0 {
        return;
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
    // The fragments of a chunk tile it exactly, and each fragment writes all of it.
    fill_chunks(out, chunk_len(n, PAR_THRESHOLD / 2), |start, o| {
        let mut off = 0;
        while off < o.len() {
            let pos = start + off;
            let len = (row - pos % row).min(o.len() - off);
            frag(pos / row, pos % row, &mut o[off..off + len]);
            off += len;
        }
    });
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
