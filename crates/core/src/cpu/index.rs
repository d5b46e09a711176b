//! Indexing kernels: index_select, gather, scatter_add, index_add, for every dtype.
//!
//! Indices are i64 (range-checked by the tensor layer; checked again here, cheaply, so a
//! direct caller gets an error instead of a panic). `index_select` and `index_add` view the
//! data as `[outer, D, inner]` and move whole `inner` rows; `gather` and `scatter_add` walk the
//! index tensor with a strided iterator whose stride along `dim` is 0, so inputs of any layout
//! are read in place.

use super::map::{contiguous_cow, gather as gather_view};
use crate::parallel::{for_each_row_mut, PAR_THRESHOLD};
use crate::{CpuStorage, Error, Layout, Result, Shape};
use half::{bf16, f16};
use std::borrow::Cow;

/// Addition for every element type (wrapping for integers, `or` for bool).
trait AddElem: Copy + Send + Sync {
    fn add(self, o: Self) -> Self;
}

macro_rules! add_elem {
    ($($t:ty => $f:expr),*) => {
        $(impl AddElem for $t {
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                $f(self, o)
            }
        })*
    };
}
add_elem!(
    u8 => u8::wrapping_add,
    bool => |a: bool, b: bool| a | b,
    i64 => i64::wrapping_add,
    f16 => |a: f16, b: f16| a + b,
    bf16 => |a: bf16, b: bf16| a + b,
    f32 => |a: f32, b: f32| a + b,
    f64 => |a: f64, b: f64| a + b
);

/// The indices as a contiguous i64 slice, each checked to be in `0..size`.
fn ids_of<'a>(
    ids: &'a CpuStorage,
    il: &Layout,
    size: usize,
    op: &'static str,
) -> Result<Cow<'a, [i64]>> {
    let CpuStorage::I64(v) = ids else {
        return Err(Error::UnsupportedDType {
            op,
            dtype: ids.dtype(),
        });
    };
    let v = contiguous_cow(v, il);
    if let Some(&bad) = v.iter().find(|&&i| i < 0 || i as usize >= size) {
        return Err(Error::IndexOutOfRange {
            op,
            index: bad,
            size,
        });
    }
    Ok(v)
}

/// `(outer, size of dim, inner)` of `dims` split at `dim`.
fn split3(dims: &[usize], dim: usize) -> (usize, usize, usize) {
    let outer = dims[..dim].iter().product();
    let inner = dims[dim + 1..].iter().product();
    (outer, dims[dim], inner)
}

fn check_dim(l: &Layout, dim: usize, op: &'static str) -> Result<()> {
    if dim >= l.dims().len() {
        return Err(Error::DimOutOfRange {
            op,
            dim: dim as isize,
            rank: l.dims().len(),
        });
    }
    Ok(())
}

fn index_select_t<T: Copy + Send + Sync + Default>(
    x: &[T],
    l: &Layout,
    ids: &[i64],
    dim: usize,
) -> Vec<T> {
    let x = contiguous_cow(x, l);
    let (outer, d, inner) = split3(l.dims(), dim);
    let row = ids.len() * inner;
    if row == 0 || outer == 0 {
        return Vec::new();
    }
    let fill = |o: usize, dst: &mut [T]| {
        for (j, &i) in ids.iter().enumerate() {
            let s = (o * d + i as usize) * inner;
            dst[j * inner..(j + 1) * inner].copy_from_slice(&x[s..s + inner]);
        }
    };
    let mut out = vec![T::default(); outer * row];
    for_each_row_mut(&mut out, row, PAR_THRESHOLD / 2, fill);
    out
}

/// The layout `l` restricted to `shape` (each dim no larger) with stride 0 along `dim`.
fn walk(l: &Layout, shape: &Shape, dim: usize) -> Layout {
    let mut strides = l.strides().to_vec();
    strides[dim] = 0;
    Layout::from_parts(shape.clone(), strides, l.offset())
}

fn gather_t<T: Copy + Send + Sync>(
    x: &[T],
    l: &Layout,
    ids: &[i64],
    is: &Shape,
    dim: usize,
) -> Vec<T> {
    let sd = l.strides()[dim];
    walk(l, is, dim)
        .strided_index()
        .zip(ids)
        .map(|(base, &i)| x[base + i as usize * sd])
        .collect()
}

fn scatter_add_t<T: AddElem>(
    x: &[T],
    l: &Layout,
    ids: &[i64],
    is: &Shape,
    src: &[T],
    sl: &Layout,
    dim: usize,
) -> Vec<T> {
    let mut out = gather_view(x, l);
    let ol = Layout::contiguous(l.shape().clone());
    let sd = ol.strides()[dim];
    let src_walk = Layout::from_parts(is.clone(), sl.strides().to_vec(), sl.offset());
    for ((base, s), &i) in walk(&ol, is, dim)
        .strided_index()
        .zip(src_walk.strided_index())
        .zip(ids)
    {
        let o = &mut out[base + i as usize * sd];
        *o = o.add(src[s]);
    }
    out
}

fn index_add_t<T: AddElem>(
    x: &[T],
    l: &Layout,
    ids: &[i64],
    src: &[T],
    sl: &Layout,
    dim: usize,
) -> Vec<T> {
    let mut out = gather_view(x, l);
    let src = contiguous_cow(src, sl);
    let (outer, d, inner) = split3(l.dims(), dim);
    if outer * d * inner == 0 {
        return out;
    }
    let body = |o: usize, dst: &mut [T]| {
        for (j, &i) in ids.iter().enumerate() {
            let s = &src[(o * ids.len() + j) * inner..(o * ids.len() + j + 1) * inner];
            let d = &mut dst[i as usize * inner..(i as usize + 1) * inner];
            d.iter_mut().zip(s).for_each(|(d, &s)| *d = d.add(s));
        }
    };
    for_each_row_mut(&mut out, d * inner, PAR_THRESHOLD / 2, body);
    out
}

/// Entries of `dim` picked by the 1-D indices: output dim `dim` has `ids.len()` entries.
pub(crate) fn index_select(
    x: &CpuStorage,
    l: &Layout,
    ids: &CpuStorage,
    il: &Layout,
    dim: usize,
) -> Result<CpuStorage> {
    let op = "index_select";
    check_dim(l, dim, op)?;
    let ids = ids_of(ids, il, l.dims()[dim], op)?;
    Ok(crate::map_cpu_vec!(x, v => index_select_t(v, l, &ids, dim)))
}

/// torch.gather: output has the indices' shape; `out[..i..] = x[..ids[..i..]..]` along `dim`.
pub(crate) fn gather(
    x: &CpuStorage,
    l: &Layout,
    ids: &CpuStorage,
    il: &Layout,
    dim: usize,
) -> Result<CpuStorage> {
    let op = "gather";
    check_dim(l, dim, op)?;
    fits(il.shape(), l.shape(), Some(dim), op)?;
    let v = ids_of(ids, il, l.dims()[dim], op)?;
    Ok(crate::map_cpu_vec!(x, x => gather_t(x, l, &v, il.shape(), dim)))
}

/// Errors unless `small` has the rank of `big` and no larger dims (except at `skip`).
fn fits(small: &Shape, big: &Shape, skip: Option<usize>, op: &'static str) -> Result<()> {
    let ok = small.dims().len() == big.dims().len()
        && small
            .dims()
            .iter()
            .zip(big.dims())
            .enumerate()
            .all(|(k, (a, b))| Some(k) == skip || a <= b);
    if ok {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            op,
            lhs: big.clone(),
            rhs: small.clone(),
        })
    }
}

/// Dispatches a kernel over two buffers of the same dtype.
macro_rules! same_dtype {
    ($op:expr, $a:expr, $b:expr, $x:ident, $y:ident => $body:expr) => {
        match ($a, $b) {
            (CpuStorage::U8($x), CpuStorage::U8($y)) => CpuStorage::U8($body),
            (CpuStorage::Bool($x), CpuStorage::Bool($y)) => CpuStorage::Bool($body),
            (CpuStorage::I64($x), CpuStorage::I64($y)) => CpuStorage::I64($body),
            (CpuStorage::F16($x), CpuStorage::F16($y)) => CpuStorage::F16($body),
            (CpuStorage::BF16($x), CpuStorage::BF16($y)) => CpuStorage::BF16($body),
            (CpuStorage::F32($x), CpuStorage::F32($y)) => CpuStorage::F32($body),
            (CpuStorage::F64($x), CpuStorage::F64($y)) => CpuStorage::F64($body),
            (a, b) => {
                return Err(Error::DTypeMismatch {
                    op: $op,
                    lhs: a.dtype(),
                    rhs: b.dtype(),
                })
            }
        }
    };
}

/// torch.scatter_add: a copy of `x` with `src[..i..]` added at `ids[..i..]` along `dim`.
pub(crate) fn scatter_add(
    x: &CpuStorage,
    l: &Layout,
    ids: &CpuStorage,
    il: &Layout,
    src: &CpuStorage,
    sl: &Layout,
    dim: usize,
) -> Result<CpuStorage> {
    let op = "scatter_add";
    check_dim(l, dim, op)?;
    fits(il.shape(), l.shape(), Some(dim), op)?;
    fits(il.shape(), sl.shape(), None, op)?;
    let v = ids_of(ids, il, l.dims()[dim], op)?;
    let is = il.shape();
    Ok(same_dtype!(op, x, src, a, b => scatter_add_t(a, l, &v, is, b, sl, dim)))
}

/// torch.index_add: a copy of `x` with slice `i` of `src` added to slice `ids[i]` along `dim`.
pub(crate) fn index_add(
    x: &CpuStorage,
    l: &Layout,
    ids: &CpuStorage,
    il: &Layout,
    src: &CpuStorage,
    sl: &Layout,
    dim: usize,
) -> Result<CpuStorage> {
    let op = "index_add";
    check_dim(l, dim, op)?;
    let v = ids_of(ids, il, l.dims()[dim], op)?;
    let mut want = l.dims().to_vec();
    want[dim] = v.len();
    if sl.dims() != want {
        return Err(Error::ShapeMismatch {
            op,
            lhs: Shape::new(want),
            rhs: sl.shape().clone(),
        });
    }
    Ok(same_dtype!(op, x, src, a, b => index_add_t(a, l, &v, b, sl, dim)))
}
