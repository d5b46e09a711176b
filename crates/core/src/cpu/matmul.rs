//! Batched matmul on the `gemm` crate, which takes arbitrary row/column strides: transposed
//! and sliced inputs are read in place, never copied. Half types compute in f32.

use super::map::gather;
use crate::parallel::{for_each_chunk_mut, num_threads, run as run_tasks};
use crate::params::MatmulDims;
use crate::{CpuStorage, Error, Layout, Result};
use gemm::Parallelism;

/// Work (m·n·k) under which one matmul stays on one thread.
const PAR_FLOPS: usize = 48 * 48 * 48;

/// An output pointer the tasks of one product share; each writes a disjoint column block.
struct SharedPtr<T>(*mut T);
// SAFETY: only used to hand disjoint blocks of one output to the tasks of `run_tasks`.
unsafe impl<T: Send> Sync for SharedPtr<T> {}
impl<T> SharedPtr<T> {
    fn get(&self) -> *mut T {
        self.0
    }
}

/// Strides of a 3-D layout; a zero stride on a matrix dim (broadcast) is made real by copying.
fn strides3<'a, T: Copy + Send + Sync>(
    v: &'a [T],
    l: &Layout,
) -> (std::borrow::Cow<'a, [T]>, [usize; 3], usize) {
    let s = l.strides();
    let d = l.dims();
    let bad = (d[1] > 1 && s[1] == 0) || (d[2] > 1 && s[2] == 0);
    if bad {
        let c = gather(v, l);
        let st = [d[1] * d[2], d[2], 1];
        (std::borrow::Cow::Owned(c), st, 0)
    } else {
        (
            std::borrow::Cow::Borrowed(v),
            [s[0], s[1], s[2]],
            l.offset(),
        )
    }
}

/// Whether a product is "few rows times a large transposed matrix" (a linear layer's
/// forward at a small batch): `b` stored column by column (unit row stride) and over 1 M
/// elements, `m` within the rows `gemm` reads its right operand for in place (2 × 64).
fn skinny_transposed(m: usize, n: usize, k: usize, sb: [usize; 3]) -> bool {
    m <= 128 && n > 1 && k > 1 && k * n >= 1 << 20 && sb[1] == 1 && sb[2] != 1
}

fn matmul_t<T: Copy + Send + Sync + Default + 'static>(
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
    d: MatmulDims,
    one: T,
    zero: T,
) -> Vec<T> {
    let mut out = vec![T::default(); d.b * d.m * d.n];
    matmul_into_t(a, al, b, bl, d, one, zero, &mut out);
    out
}

/// [`matmul_t`] into `out` (`b·m·n` elements, any prior contents): every element is written
/// (`gemm` overwrites its destination; `k = 0` fills zeros), with the same blocks and
/// summation order as the allocating form, so the results are bit-identical.
#[allow(clippy::too_many_arguments)]
fn matmul_into_t<T: Copy + Send + Sync + Default + 'static>(
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
    d: MatmulDims,
    one: T,
    zero: T,
    out: &mut [T],
) {
    let MatmulDims { b: batch, m, n, k } = d;
    debug_assert_eq!(out.len(), batch * m * n);
    if out.is_empty() {
        return;
    }
    if k == 0 {
        out.fill(zero);
        return;
    }
    let (a, sa, oa) = strides3(a, al);
    let (b, sb, ob) = strides3(b, bl);
    let work = m * n * k;
    // The block of product `i` with rows `r0..r0 + rows` and columns `c0..c0 + cols`, written
    // at `dst` with column stride `dcs` and row stride `drs` (the product's row-major m×n
    // output: element (r0, c0), strides 1 and n).
    let block_at = |i: usize,
                    r0: usize,
                    rows: usize,
                    c0: usize,
                    cols: usize,
                    dst: *mut T,
                    dcs: isize,
                    drs: isize| {
        if rows == 0 || cols == 0 {
            return; // an empty block (k = 0 was filled above)
        }
        // SAFETY: the layouts were validated by the tensor layer, so every index
        // offset + i*s0 + r*s1 + c*s2 with r < m, c < cols lies inside the buffers, and
        // r0 + rows <= m, c0 + cols <= n; `dst` addresses a rows×cols block (strides
        // `dcs`, `drs`) that no other call writes.
        unsafe {
            gemm::gemm(
                rows,
                cols,
                k,
                dst,
                dcs,
                drs,
                false,
                a.as_ptr().add(oa + i * sa[0] + r0 * sa[1]),
                sa[2] as isize,
                sa[1] as isize,
                b.as_ptr().add(ob + i * sb[0] + c0 * sb[2]),
                sb[2] as isize,
                sb[1] as isize,
                zero,
                one,
                false,
                false,
                false,
                Parallelism::None,
            )
        }
    };
    let block = |i: usize, r0: usize, rows: usize, c0: usize, cols: usize, dst: *mut T| {
        block_at(i, r0, rows, c0, cols, dst, 1, n as isize)
    };
    let run = |i: usize, r0: usize, o: &mut [T]| block(i, r0, o.len() / n, 0, n, o.as_mut_ptr());
    let threads = num_threads();
    if skinny_transposed(m, n, k, sb) {
        // `gemm` computes a row-major product as its transpose (it wants a column-major
        // destination), which makes this large right operand its left one, read across its
        // rows: it would be repacked element by element, the largest cost of a linear
        // layer's forward (x · Wᵀ with W [4096, 25088]: 103 M strided loads). Computed
        // column-major into a small scratch instead, `gemm` reads it in place.
        let cb = n
            .div_ceil(if work < PAR_FLOPS { 1 } else { threads })
            .next_multiple_of(16)
            .min(n);
        for (i, o) in out.chunks_mut(m * n).enumerate() {
            let dst = SharedPtr(o.as_mut_ptr());
            run_tasks(n.div_ceil(cb), |t| {
                let (c0, cols) = (t * cb, cb.min(n - t * cb));
                let mut tmp = vec![zero; m * cols];
                // Column-major m×cols scratch: column stride m, row stride 1.
                block_at(i, 0, m, c0, cols, tmp.as_mut_ptr(), m as isize, 1);
                for r in 0..m {
                    // SAFETY: row r, columns c0..c0 + cols of this product's output, a
                    // range no other task writes.
                    let row =
                        unsafe { std::slice::from_raw_parts_mut(dst.get().add(r * n + c0), cols) };
                    for (j, d) in row.iter_mut().enumerate() {
                        *d = tmp[j * m + r];
                    }
                }
            });
        }
    } else if batch * work < PAR_FLOPS || threads == 1 {
        out.chunks_mut(m * n)
            .enumerate()
            .for_each(|(i, o)| run(i, 0, o));
    } else if batch >= 2 * threads || work < PAR_FLOPS {
        for_each_chunk_mut(out, m * n, |i, o| run(i, 0, o));
    } else if m < n {
        // Few large products with more columns than rows (a linear layer's forward and input
        // gradient at a small batch: m = 32, n = 4096, k = 25088): split the columns, so each
        // thread streams only its share of the large right operand. Split by rows, every
        // thread would read all of it.
        let cb = n.div_ceil(threads).next_multiple_of(16).min(n);
        let tasks = n.div_ceil(cb);
        for (i, o) in out.chunks_mut(m * n).enumerate() {
            let dst = SharedPtr(o.as_mut_ptr());
            run_tasks(tasks, |t| {
                let c0 = t * cb;
                // SAFETY: column block `c0..c0 + cb` of this product, inside `o`.
                block(i, 0, m, c0, cb.min(n - c0), unsafe { dst.get().add(c0) })
            });
        }
    } else {
        // Few large products: split each one's rows (in multiples of gemm's 16-row tiles).
        let rb = m.div_ceil(threads).next_multiple_of(16).min(m);
        for (i, o) in out.chunks_mut(m * n).enumerate() {
            for_each_chunk_mut(o, rb * n, |t, o| run(i, t * rb, o));
        }
    }
}

/// Batched matmul of `[b, m, k]` and `[b, k, n]` views.
pub(crate) fn matmul(
    a: &CpuStorage,
    al: &Layout,
    b: &CpuStorage,
    bl: &Layout,
    d: MatmulDims,
) -> Result<CpuStorage> {
    Ok(match (a, b) {
        (CpuStorage::F32(x), CpuStorage::F32(y)) => {
            CpuStorage::F32(matmul_t(x, al, y, bl, d, 1.0, 0.0))
        }
        (CpuStorage::F64(x), CpuStorage::F64(y)) => {
            CpuStorage::F64(matmul_t(x, al, y, bl, d, 1.0, 0.0))
        }
        (CpuStorage::F16(_), CpuStorage::F16(_)) | (CpuStorage::BF16(_), CpuStorage::BF16(_)) => {
            let dt = a.dtype();
            let x = super::map::to_dtype(a, al, crate::DType::F32);
            let y = super::map::to_dtype(b, bl, crate::DType::F32);
            let r = matmul(
                &x,
                &Layout::contiguous(al.shape().clone()),
                &y,
                &Layout::contiguous(bl.shape().clone()),
                d,
            )?;
            let rl = Layout::contiguous([d.b, d.m, d.n]);
            super::map::to_dtype(&r, &rl, dt)
        }
        (x, y) if x.dtype() == y.dtype() => {
            return Err(Error::UnsupportedDType {
                op: "matmul",
                dtype: x.dtype(),
            })
        }
        (x, y) => {
            return Err(Error::DTypeMismatch {
                op: "matmul",
                lhs: x.dtype(),
                rhs: y.dtype(),
            })
        }
    })
}

/// Batched f32 matmul of `[b, m, k]` and `[b, k, n]` views (any strides) into `out`, the
/// contiguous `[b, m, n]` result: bit-identical to [`matmul`], every element written.
///
/// # Errors
/// `out` not of `b·m·n` elements.
pub(crate) fn matmul_f32_into(
    a: &[f32],
    al: &Layout,
    b: &[f32],
    bl: &Layout,
    d: MatmulDims,
    out: &mut [f32],
) -> Result<()> {
    if out.len() != d.b * d.m * d.n {
        return Err(Error::msg(format!(
            "matmul into: output buffer of {} elements, the product [{}, {}, {}] needs {}",
            out.len(),
            d.b,
            d.m,
            d.n,
            d.b * d.m * d.n
        )));
    }
    matmul_into_t(a, al, b, bl, d, 1.0, 0.0, out);
    Ok(())
}
