//! Reductions over any set of dims, and row-wise (log-)softmax.
//!
//! The view is permuted so that reduced dims come last; each output element then reduces
//! one contiguous run. Floats accumulate sums in f64.

use super::f32_view::as_f32_mut;
use super::map::{contiguous_cow, gather};
use crate::parallel::{self, chunk_len, for_each_chunk_mut, for_each_row_mut, PAR_THRESHOLD};
use crate::params::ReduceOp;
use crate::{CpuStorage, Error, FloatDType, Layout, Result, WithDType};
use std::mem::MaybeUninit;

/// Input rearranged as `[outer, inner]` rows (inner = reduced elements), contiguous.
fn rows<'a, T: Copy + Send + Sync>(
    v: &'a [T],
    l: &Layout,
    dims: &[usize],
) -> (std::borrow::Cow<'a, [T]>, usize) {
    let rank = l.dims().len();
    let mut perm: Vec<usize> = (0..rank).filter(|d| !dims.contains(d)).collect();
    perm.extend_from_slice(dims);
    let inner: usize = dims.iter().map(|&d| l.dims()[d]).product();
    let pl = l.permute(&perm).expect("valid permutation");
    (contiguous_cow(v, &pl), inner)
}

/// f64 sum of a run: 8 independent lanes (so it vectorises), split over threads when long.
fn sum_f64<T: WithDType>(r: &[T]) -> f64 {
    const BLOCK: usize = 1 << 16;
    let lanes = |r: &[T]| {
        let mut acc = [0f64; 8];
        let mut it = r.chunks_exact(8);
        for c in &mut it {
            for (a, &b) in acc.iter_mut().zip(c) {
                *a += b.to_f64();
            }
        }
        let tail: f64 = it.remainder().iter().map(|x| x.to_f64()).sum();
        acc.iter().sum::<f64>() + tail
    };
    if r.len() >= 2 * BLOCK {
        let blocks = r.len().div_ceil(BLOCK);
        parallel::map(blocks, |i| {
            lanes(&r[i * BLOCK..((i + 1) * BLOCK).min(r.len())])
        })
        .into_iter()
        .sum()
    } else {
        lanes(r)
    }
}

fn is_nan<T: PartialOrd>(x: T) -> bool {
    x.partial_cmp(&x).is_none()
}

/// Output elements of reducing `dims` of `l`.
fn out_len(l: &Layout, dims: &[usize]) -> usize {
    l.dims()
        .iter()
        .enumerate()
        .filter(|(i, _)| !dims.contains(i))
        .map(|(_, &d)| d)
        .product()
}

fn reduce_t<T: WithDType>(
    v: &[T],
    l: &Layout,
    op: ReduceOp,
    dims: &[usize],
    sum_out: fn(f64) -> T,
) -> Vec<T> {
    let n = out_len(l, dims);
    let mut out = Vec::with_capacity(n);
    reduce_into_t(v, l, op, dims, sum_out, &mut out.spare_capacity_mut()[..n]);
    // SAFETY: `reduce_into_t` writes every element of the slice it is given.
    unsafe { out.set_len(n) };
    out
}

/// [`reduce_t`] into `out` (the output's `out_len` elements), every element written.
fn reduce_into_t<T: WithDType>(
    v: &[T],
    l: &Layout,
    op: ReduceOp,
    dims: &[usize],
    sum_out: fn(f64) -> T,
    out: &mut [MaybeUninit<T>],
) {
    let out_n = out.len();
    debug_assert_eq!(out_n, out_len(l, dims));
    let inner: usize = dims.iter().map(|&d| l.dims()[d]).product();
    if inner == 0 {
        let fill = match op {
            ReduceOp::Sum => T::ZERO,
            _ => T::from_f64(f64::NAN),
        };
        out.iter_mut().for_each(|o| {
            o.write(fill);
        });
        return;
    }
    // Summing leading dims of a contiguous view: accumulate whole rows (vectorises).
    let lead = dims.iter().enumerate().all(|(i, &d)| i == d);
    if op == ReduceOp::Sum && lead && l.is_contiguous() && out_n > 1 {
        let x = &v[l.offset()..l.offset() + l.elem_count()];
        let mut acc = vec![0f64; out_n];
        for r in x.chunks_exact(out_n) {
            acc.iter_mut().zip(r).for_each(|(a, &b)| *a += b.to_f64());
        }
        out.iter_mut().zip(acc).for_each(|(o, a)| {
            o.write(sum_out(a));
        });
        return;
    }
    // Summing leading and trailing dims of a contiguous view around a kept middle run (NCHW
    // over [0, 2, 3]: batch-norm statistics, bias gradients): each kept index adds up `outer`
    // contiguous runs of `inner` elements in place, with no permuted copy.
    if op == ReduceOp::Sum && l.is_contiguous() && out_n > 1 {
        let rank = l.dims().len();
        let kept: Vec<usize> = (0..rank).filter(|d| !dims.contains(d)).collect();
        let (a, r) = (kept[0], kept[kept.len() - 1] + 1);
        if kept.len() == r - a && r < rank {
            let inner: usize = l.dims()[r..].iter().product();
            let outer: usize = l.dims()[..a].iter().product();
            let x = &v[l.offset()..l.offset() + l.elem_count()];
            let min = PAR_THRESHOLD.div_ceil(2 * inner * outer);
            let chunk = chunk_len(out_n, min).max(1);
            for_each_chunk_mut(out, chunk, |ci, o| {
                let start = ci * chunk;
                for (k, o) in o.iter_mut().enumerate() {
                    let m = start + k;
                    let s: f64 = (0..outer)
                        .map(|j| sum_f64(&x[(j * out_n + m) * inner..(j * out_n + m + 1) * inner]))
                        .sum();
                    o.write(sum_out(s));
                }
            });
            return;
        }
    }
    let (x, inner) = rows(v, l, dims);
    let f = |r: &[T]| -> T {
        match op {
            ReduceOp::Sum => sum_out(sum_f64(r)),
            ReduceOp::Max => r.iter().copied().fold(r[0], |a, b| {
                if is_nan(a) || (!is_nan(b) && a >= b) {
                    a
                } else {
                    b
                }
            }),
            ReduceOp::Min => r.iter().copied().fold(r[0], |a, b| {
                if is_nan(a) || (!is_nan(b) && a <= b) {
                    a
                } else {
                    b
                }
            }),
            _ => unreachable!("arg reductions handled separately"),
        }
    };
    let n = x.len() / inner;
    debug_assert_eq!(n, out_n);
    let chunk = chunk_len(n, PAR_THRESHOLD.div_ceil(2 * inner)).max(1);
    for_each_chunk_mut(out, chunk, |ci, o| {
        let start = ci * chunk;
        for (k, o) in o.iter_mut().enumerate() {
            o.write(f(&x[(start + k) * inner..(start + k + 1) * inner]));
        }
    });
}

fn arg_reduce<T: WithDType>(v: &[T], l: &Layout, op: ReduceOp, dim: usize) -> Vec<i64> {
    let (x, inner) = rows(v, l, &[dim]);
    if inner == 0 {
        return vec![];
    }
    x.chunks(inner)
        .map(|r| {
            let mut best = 0;
            for (i, &y) in r.iter().enumerate().skip(1) {
                let b = r[best];
                if is_nan(b) {
                    break;
                }
                let better = match op {
                    ReduceOp::ArgMax => y > b,
                    _ => y < b,
                };
                if better || is_nan(y) {
                    best = i;
                }
            }
            best as i64
        })
        .collect()
}

/// Reduces `dims` (sorted) of the view; reduced dims kept with size 1.
pub(crate) fn reduce(
    s: &CpuStorage,
    l: &Layout,
    op: ReduceOp,
    dims: &[usize],
) -> Result<CpuStorage> {
    if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) {
        if dims.len() != 1 {
            return Err(Error::msg("argmax/argmin: exactly one dim expected"));
        }
        if l.dims()[dims[0]] == 0 {
            return Err(Error::msg(
                "argmax/argmin: cannot reduce an empty dimension",
            ));
        }
        return Ok(CpuStorage::I64(
            crate::with_cpu_vec!(s, v => arg_reduce(v, l, op, dims[0])),
        ));
    }
    if matches!(op, ReduceOp::Max | ReduceOp::Min) && dims.iter().any(|&d| l.dims()[d] == 0) {
        return Err(Error::msg(format!(
            "max/min: cannot reduce an empty dimension of shape {}",
            l.shape()
        )));
    }
    Ok(match s {
        CpuStorage::F32(v) => CpuStorage::F32(reduce_t(v, l, op, dims, |x| x as f32)),
        CpuStorage::F64(v) => CpuStorage::F64(reduce_t(v, l, op, dims, |x| x)),
        CpuStorage::F16(v) => CpuStorage::F16(reduce_t(v, l, op, dims, half::f16::from_f64)),
        CpuStorage::BF16(v) => CpuStorage::BF16(reduce_t(v, l, op, dims, half::bf16::from_f64)),
        CpuStorage::I64(v) => CpuStorage::I64(reduce_t(v, l, op, dims, |x| x as i64)),
        CpuStorage::U8(v) if op != ReduceOp::Sum => {
            CpuStorage::U8(reduce_t(v, l, op, dims, |x| x as u8))
        }
        CpuStorage::Bool(v) if op != ReduceOp::Sum => {
            CpuStorage::Bool(reduce_t(v, l, op, dims, |x| x != 0.0))
        }
        // Sums of bytes and bools count in i64, as in PyTorch.
        other => {
            let wide = super::map::to_dtype(other, l, crate::DType::I64);
            let wl = Layout::contiguous(l.shape().clone());
            return reduce(&wide, &wl, op, dims);
        }
    })
}

fn softmax_t<T: FloatDType>(v: &[T], l: &Layout, log: bool) -> Vec<T> {
    let mut out = gather(v, l);
    softmax_rows(&mut out, l, log);
    out
}

/// (Log-)softmax of each last-dim row of `out`, which holds the view `l` contiguously.
fn softmax_rows<T: FloatDType>(out: &mut [T], l: &Layout, log: bool) {
    let n = l.elem_count();
    let row = *l.dims().last().unwrap_or(&1);
    if n == 0 || row == 0 {
        return;
    }
    let f = |r: &mut [T]| {
        // The row's max is subtracted whatever it is (a +inf max makes the row NaN, as in
        // PyTorch); only an all -inf (or all NaN) row shifts by 0, giving NaN from 0/0.
        let m = r.iter().copied().fold(T::neg_infinity(), |a, b| a.max(b));
        let m = if m == T::neg_infinity() { T::zero() } else { m };
        if let Some(rf) = as_f32_mut(r) {
            softmax_row_f32(rf, m.to_f64() as f32, log);
            return;
        }
        if log {
            let s: f64 = r.iter().map(|&x| (x - m).exp().to_f64()).sum();
            let ls = T::from_f64(s.ln());
            r.iter_mut().for_each(|x| *x = *x - m - ls);
        } else {
            let mut s = 0f64;
            r.iter_mut().for_each(|x| {
                *x = (*x - m).exp();
                s += x.to_f64();
            });
            let inv = T::from_f64(1.0 / s);
            r.iter_mut().for_each(|x| *x = *x * inv);
        }
    };
    for_each_row_mut(out, row, PAR_THRESHOLD / 2, |_, r| f(r));
}

/// One f32 (log-)softmax row with the vectorised exp; `m` is the row's max (or 0).
fn softmax_row_f32(r: &mut [f32], m: f32, log: bool) {
    if log {
        thread_local! {
            static TMP: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let s = TMP.with(|t| {
            let mut t = t.borrow_mut();
            t.clear();
            t.extend_from_slice(r);
            super::vexp::exp_shifted_sum(&mut t, m)
        });
        let ls = s.ln() as f32;
        r.iter_mut().for_each(|x| *x = *x - m - ls);
    } else {
        let inv = (1.0 / super::vexp::exp_shifted_sum(r, m)) as f32;
        r.iter_mut().for_each(|x| *x *= inv);
    }
}

/// (Log-)softmax over the last dim.
pub(crate) fn softmax(s: &CpuStorage, l: &Layout, log: bool) -> Result<CpuStorage> {
    Ok(crate::map_cpu_float!(s, "softmax", v => softmax_t(v, l, log)))
}

/// Checks that a caller's output buffer holds exactly `want` elements.
fn check_out(op: &str, got: usize, want: usize) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(Error::msg(format!(
        "{op} into: output buffer of {got} elements, the result needs {want}"
    )))
}

/// [`reduce`] of an f32 view by `Sum`, `Max` or `Min` over `dims` (sorted, distinct) into
/// `out` (the result's elements, contiguous, any prior contents, every element written):
/// the same kernel and summation order, so bit-identical to [`reduce`].
///
/// # Errors
/// An arg reduction; max/min over an empty dim; `out` of the wrong length.
pub(crate) fn reduce_f32_into(
    v: &[f32],
    l: &Layout,
    op: ReduceOp,
    dims: &[usize],
    out: &mut [f32],
) -> Result<()> {
    if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) {
        return Err(Error::msg("reduce into: arg reductions give i64 indices"));
    }
    if dims.iter().any(|&d| d >= l.dims().len()) {
        return Err(Error::msg(format!(
            "reduce into: dims {dims:?} out of range for shape {}",
            l.shape()
        )));
    }
    if op != ReduceOp::Sum && dims.iter().any(|&d| l.dims()[d] == 0) {
        return Err(Error::msg(format!(
            "max/min: cannot reduce an empty dimension of shape {}",
            l.shape()
        )));
    }
    check_out("reduce", out.len(), out_len(l, dims))?;
    // SAFETY: same layout; only initialised f32 values are written through it.
    let o = unsafe { &mut *(out as *mut [f32] as *mut [MaybeUninit<f32>]) };
    reduce_into_t(v, l, op, dims, |x| x as f32, o);
    Ok(())
}

/// [`softmax`] of an f32 view over its last dim into `out` (contiguous, of the view's
/// element count, any prior contents, every element written), bit-identical to it.
///
/// # Errors
/// `out` of the wrong length.
pub(crate) fn softmax_f32_into(v: &[f32], l: &Layout, log: bool, out: &mut [f32]) -> Result<()> {
    check_out("softmax", out.len(), l.elem_count())?;
    out.copy_from_slice(&contiguous_cow(v, l));
    softmax_rows(out, l, log);
    Ok(())
}
