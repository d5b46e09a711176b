//! The matrix products of the im2col paths ([`super::im2col`], [`super::wide`]): every
//! convolution kernel as one gemm per group, operands read through strides.

use super::geom::{Geom, PAR_WORK};
use crate::parallel::{self, num_threads};
use crate::WithDType;
use gemm::Parallelism;

/// One matrix operand: a slice and its (row, column) strides in elements.
pub(super) struct Mat<'a, T> {
    pub(super) data: &'a [T],
    pub(super) rs: usize,
    pub(super) cs: usize,
}

/// `dst[m, n] = (acc ? dst : 0) + lhs[m, k] · rhs[k, n]`, all through strides, on this
/// thread (callers spread images or tile blocks over the pool).
pub(super) fn matmul_into<T: WithDType>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    (dst_rs, dst_cs): (usize, usize),
    lhs: Mat<T>,
    rhs: Mat<T>,
    acc: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !acc {
            for r in 0..m {
                for c in 0..n {
                    dst[r * dst_rs + c * dst_cs] = T::ZERO;
                }
            }
        }
        return;
    }
    let last = |rs: usize, cs: usize, r: usize, c: usize| (r - 1) * rs + (c - 1) * cs;
    // Bounds are checked once here so that the unsafe call below cannot read or write out of range.
    assert!(
        last(dst_rs, dst_cs, m, n) < dst.len()
            && last(lhs.rs, lhs.cs, m, k) < lhs.data.len()
            && last(rhs.rs, rhs.cs, k, n) < rhs.data.len(),
        "conv: gemm operand out of bounds"
    );
    // SAFETY: the assert above shows every index `r*rs + c*cs` gemm touches (r < rows, c < cols)
    // lies inside its slice; `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            acc,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

/// Forward product of every group: `out[O, n] = W[O, K] · col[K, n]`, computed as
/// `outᵀ = colᵀ · Wᵀ` so that gemm's long side is the `n` positions; `n` is the row length of
/// both `col` and `out`.
pub(super) fn fwd_product<T: WithDType>(g: &Geom, w: &[T], col: &[T], n: usize, out: &mut [T]) {
    let (k, og) = (g.k(), g.og());
    for grp in 0..g.groups {
        matmul_into(
            (n, og, k),
            &mut out[grp * og * n..],
            (1, n),
            Mat {
                data: &col[grp * k * n..],
                rs: 1,
                cs: n,
            },
            Mat {
                data: &w[grp * og * k..],
                rs: 1,
                cs: k,
            },
            false,
        );
    }
}

/// Input-gradient product of every group: `dcol[K, n] = Wᵀ · dy[O, n]` (as
/// `dcolᵀ = dyᵀ · W`); `n` is the row length of both `dy` and `dcol`.
pub(super) fn bwd_input_product<T: WithDType>(
    g: &Geom,
    w: &[T],
    dy: &[T],
    n: usize,
    dcol: &mut [T],
) {
    let (k, og) = (g.k(), g.og());
    for grp in 0..g.groups {
        matmul_into(
            (n, k, og),
            &mut dcol[grp * k * n..],
            (1, n),
            Mat {
                data: &dy[grp * og * n..],
                rs: 1,
                cs: n,
            },
            Mat {
                data: &w[grp * og * k..],
                rs: k,
                cs: 1,
            },
            false,
        );
    }
}

/// Weight-gradient product of every group, accumulated: `dWᵀ[K, O] += col[K, n] · dyᵀ[n, O]`
/// into `acc` (`[O, K]`); `n` is the row length of both `col` and `dy`.
pub(super) fn bwd_weight_product<T: WithDType>(
    g: &Geom,
    col: &[T],
    dy: &[T],
    n: usize,
    acc: &mut [T],
) {
    let (k, og) = (g.k(), g.og());
    for grp in 0..g.groups {
        matmul_into(
            (k, og, n),
            &mut acc[grp * og * k..],
            (1, k),
            Mat {
                data: &col[grp * k * n..],
                rs: n,
                cs: 1,
            },
            Mat {
                data: &dy[grp * og * n..],
                rs: 1,
                cs: n,
            },
            true,
        );
    }
}

/// Target size (elements) of one weight-gradient chunk's `col` scratch.
const CHUNK_ELEMS: usize = 1 << 17;

/// Weight gradient `[O, C/g, kH, kW]` summed over chunks of images, `chunk(i0..i1, acc)`
/// adding one chunk's product into `acc`: one partial sum per thread when the work is big
/// enough, summed at the end.
pub(super) fn bwd_weight_chunked<T, F>(g: &Geom, chunk: F) -> Vec<T>
where
    T: WithDType + std::ops::Add<Output = T>,
    F: Fn((usize, usize), &mut [T]) + Sync,
{
    let out_len = g.o * g.k();
    if g.n == 0 || g.np() == 0 || out_len == 0 {
        return vec![T::ZERO; out_len];
    }
    let threads = num_threads();
    let per = (CHUNK_ELEMS / (g.rows() * g.np()).max(1)).clamp(1, g.n.div_ceil(threads));
    let chunks = g.n.div_ceil(per);
    let parallel = threads > 1 && chunks > 1 && g.work() >= PAR_WORK;
    let init = || vec![T::ZERO; out_len];
    let step = |mut acc: Vec<T>, ci: usize| {
        chunk((ci * per, ((ci + 1) * per).min(g.n)), &mut acc);
        acc
    };
    if parallel {
        let tasks = threads.min(chunks);
        let parts = parallel::map(tasks, |t| (t..chunks).step_by(tasks).fold(init(), step));
        let mut it = parts.into_iter();
        let first = it.next().unwrap_or_else(init);
        it.fold(first, |mut a, b| {
            a.iter_mut().zip(b).for_each(|(a, b)| *a = *a + b);
            a
        })
    } else {
        (0..chunks).fold(init(), step)
    }
}
