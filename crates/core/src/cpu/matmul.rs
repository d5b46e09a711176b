//! Batched matmul on the `gemm` crate, which takes arbitrary row/column strides: transposed
//! and sliced inputs are read in place, never copied. Half types compute in f32.

use super::map::gather;
use crate::parallel::{for_each_chunk_mut, num_threads};
use crate::params::MatmulDims;
use crate::{CpuStorage, Error, Layout, Result};
use gemm::Parallelism;

/// Work (m·n·k) under which one matmul stays on one thread.
const PAR_FLOPS: usize = 48 * 48 * 48;

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

fn matmul_t<T: Copy + Send + Sync + Default + 'static>(
    a: &[T],
    al: &Layout,
    b: &[T],
    bl: &Layout,
    d: MatmulDims,
    one: T,
    zero: T,
) -> Vec<T> {
    let MatmulDims { b: batch, m, n, k } = d;
    let mut out = vec![T::default(); batch * m * n];
    if out.is_empty() {
        return out;
    }
    let (a, sa, oa) = strides3(a, al);
    let (b, sb, ob) = strides3(b, bl);
    let work = m * n * k;
    // Rows `r0..` of product `i` into `o` (whole rows of the output).
    let run = |i: usize, r0: usize, o: &mut [T]| {
        let rows = o.len() / n;
        if k == 0 || rows == 0 {
            return; // already zeros
        }
        // SAFETY: the layouts were validated by the tensor layer, so every index
        // offset + i*s0 + r*s1 + c*s2 with r < m, c < cols lies inside the buffers, and
        // r0 + rows <= m; `o` is a distinct rows×n row-major block.
        unsafe {
            gemm::gemm(
                rows,
                n,
                k,
                o.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr().add(oa + i * sa[0] + r0 * sa[1]),
                sa[2] as isize,
                sa[1] as isize,
                b.as_ptr().add(ob + i * sb[0]),
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
    let threads = num_threads();
    if batch * work < PAR_FLOPS || threads == 1 {
        out.chunks_mut(m * n)
            .enumerate()
            .for_each(|(i, o)| run(i, 0, o));
    } else if batch >= 2 * threads || work < PAR_FLOPS {
        for_each_chunk_mut(&mut out, m * n, |i, o| run(i, 0, o));
    } else {
        // Few large products: split each one's rows (in multiples of gemm's 16-row tiles).
        let rb = m.div_ceil(threads).next_multiple_of(16).min(m);
        for (i, o) in out.chunks_mut(m * n).enumerate() {
            for_each_chunk_mut(o, rb * n, |t, o| run(i, t * rb, o));
        }
    }
    out
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
