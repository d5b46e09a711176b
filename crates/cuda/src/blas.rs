//! Matmul on cuBLAS (`cublasGemmStridedBatchedEx`). Transposed and sliced operands are read
//! in place by choosing the op flag and leading dimension from their strides; only operands
//! whose strides cuBLAS cannot express (e.g. a broadcast matrix dim) are copied first.

use crate::buffer::CudaStorage;
use crate::context::CudaDevice;
use crate::error::Wrap;
use cudarc::cublas::{result as cublas, sys, CudaBlas};
use mlfw_core::params::MatmulDims;
use mlfw_core::{DType, Error, Layout, Result};
use std::sync::atomic::{AtomicBool, Ordering};

static ALLOW_TF32: AtomicBool = AtomicBool::new(false);

/// Lets f32 matmuls use TF32 tensor cores (about 8x faster on an H100, ~1e-3 relative error).
/// Off by default, like `torch.backends.cuda.matmul.allow_tf32`.
pub fn set_allow_tf32(on: bool) {
    ALLOW_TF32.store(on, Ordering::Relaxed);
}

/// Whether f32 matmuls may use TF32 (see [`set_allow_tf32`]).
pub fn allow_tf32() -> bool {
    ALLOW_TF32.load(Ordering::Relaxed)
}

/// A row-major matrix operand: address, row stride, column stride, batch stride (elements).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mat {
    pub ptr: u64,
    pub rs: usize,
    pub cs: usize,
    pub bs: usize,
}

/// cuBLAS's view of a `rows x cols` row-major operand: (transposed?, leading dim), or `None`
/// when its strides are not expressible.
fn as_cublas(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<(bool, usize)> {
    // Row-major with unit column stride is column-major transposed: op N on the swapped product.
    if cs == 1 || cols == 1 {
        let ld = if rows == 1 { cols.max(1) } else { rs };
        if ld >= cols.max(1) {
            return Some((false, ld));
        }
    }
    if rs == 1 || rows == 1 {
        let ld = if cols == 1 { rows.max(1) } else { cs };
        if ld >= rows.max(1) {
            return Some((true, ld));
        }
    }
    None
}

fn types(dt: DType) -> Result<(sys::cudaDataType, sys::cublasComputeType_t)> {
    use sys::cublasComputeType_t::*;
    use sys::cudaDataType::*;
    Ok(match dt {
        DType::F32 if allow_tf32() => (CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32),
        DType::F32 => (CUDA_R_32F, CUBLAS_COMPUTE_32F),
        DType::F64 => (CUDA_R_64F, CUBLAS_COMPUTE_64F),
        DType::F16 => (CUDA_R_16F, CUBLAS_COMPUTE_32F),
        DType::BF16 => (CUDA_R_16BF, CUBLAS_COMPUTE_32F),
        other => {
            return Err(Error::UnsupportedDType {
                op: "matmul",
                dtype: other,
            })
        }
    })
}

fn int(v: usize, what: &str) -> Result<i32> {
    i32::try_from(v).map_err(|_| {
        Error::msg(format!(
            "matmul: {what} = {v} exceeds cuBLAS's 32-bit limit"
        ))
    })
}

/// `C[b] = A[b] · B[b] (+ beta · C[b])` for row-major `A: m x k`, `B: k x n`, `C: m x n` with
/// row stride `ldc` and batch stride `c_bs`. Errors when A or B is not expressible.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    dev: &CudaDevice,
    dt: DType,
    batch: usize,
    (m, n, k): (usize, usize, usize),
    a: Mat,
    b: Mat,
    (c, ldc, c_bs): (u64, usize, usize),
    beta: f64,
) -> Result<()> {
    let (ta, lda) = as_cublas(m, k, a.rs, a.cs)
        .ok_or_else(|| Error::msg("matmul: lhs strides not expressible"))?;
    let (tb, ldb) = as_cublas(k, n, b.rs, b.cs)
        .ok_or_else(|| Error::msg("matmul: rhs strides not expressible"))?;
    let (dtype, compute) = types(dt)?;
    // Row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ: swap operands and m/n.
    let op = |t: bool| {
        if t {
            sys::cublasOperation_t::CUBLAS_OP_T
        } else {
            sys::cublasOperation_t::CUBLAS_OP_N
        }
    };
    let (alpha64, alpha32, beta32) = (1.0f64, 1.0f32, beta as f32);
    let (alpha_p, beta_p) = if dt == DType::F64 {
        (
            &alpha64 as *const f64 as *const std::ffi::c_void,
            &beta as *const f64 as *const std::ffi::c_void,
        )
    } else {
        (
            &alpha32 as *const f32 as *const std::ffi::c_void,
            &beta32 as *const f32 as *const std::ffi::c_void,
        )
    };
    let init = || CudaBlas::new(dev.stream.clone()).w("creating the cuBLAS handle");
    dev.with_handle(init, |blas: &mut CudaBlas| {
        let handle = *blas.handle();
        dev.ctx.bind_to_thread().w("binding the context")?;
        // SAFETY: pointers are live device buffers covering every index implied by the sizes,
        // leading dims and batch strides (checked by the callers' layouts); alpha/beta are host
        // scalars of the compute type; the handle is bound to this device's stream.
        unsafe {
            cublas::gemm_strided_batched_ex(
                handle,
                op(tb),
                op(ta),
                int(n, "n")?,
                int(m, "m")?,
                int(k, "k")?,
                alpha_p,
                b.ptr as *const std::ffi::c_void,
                dtype,
                int(ldb, "ldb")?,
                b.bs as i64,
                a.ptr as *const std::ffi::c_void,
                dtype,
                int(lda, "lda")?,
                a.bs as i64,
                beta_p,
                c as *mut std::ffi::c_void,
                dtype,
                int(ldc, "ldc")?,
                c_bs as i64,
                int(batch, "batch")?,
                compute,
                sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .w("cublasGemmStridedBatchedEx")
    })
}

/// `[b, m, k] x [b, k, n] -> [b, m, n]` for any strides.
pub(crate) fn matmul(
    a: &CudaStorage,
    al: &Layout,
    b: &CudaStorage,
    bl: &Layout,
    d: MatmulDims,
) -> Result<CudaStorage> {
    if a.dtype != b.dtype {
        return Err(Error::DTypeMismatch {
            op: "matmul",
            lhs: a.dtype,
            rhs: b.dtype,
        });
    }
    types(a.dtype)?;
    let MatmulDims { b: batch, m, n, k } = d;
    let out = if k == 0 {
        CudaStorage::zeros(&a.dev, a.dtype, batch * m * n)?
    } else {
        CudaStorage::alloc(&a.dev, a.dtype, batch * m * n)?
    };
    if batch * m * n == 0 || k == 0 {
        return Ok(out);
    }
    // Operands cuBLAS cannot read in place are made contiguous (kept alive until queued).
    let fix = |s: &CudaStorage,
               l: &Layout,
               rows: usize,
               cols: usize|
     -> Result<(Mat, Option<CudaStorage>)> {
        let st = l.strides();
        let bs = if batch == 1 { 0 } else { st[0] };
        if as_cublas(rows, cols, st[1], st[2]).is_some() {
            return Ok((
                Mat {
                    ptr: s.ptr_at(l.offset()),
                    rs: st[1],
                    cs: st[2],
                    bs,
                },
                None,
            ));
        }
        let c = crate::ops::elementwise::copy_layout(s, l)?;
        let bs = if batch == 1 { 0 } else { rows * cols };
        Ok((
            Mat {
                ptr: c.ptr(),
                rs: cols,
                cs: 1,
                bs,
            },
            Some(c),
        ))
    };
    let (ma, _ka) = fix(a, al, m, k)?;
    let (mb, _kb) = fix(b, bl, k, n)?;
    gemm(
        &a.dev,
        a.dtype,
        batch,
        (m, n, k),
        ma,
        mb,
        (out.ptr(), n, m * n),
        0.0,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::as_cublas;

    #[test]
    fn stride_to_cublas_ops() {
        assert_eq!(as_cublas(4, 3, 3, 1), Some((false, 3))); // row-major
        assert_eq!(as_cublas(4, 3, 1, 4), Some((true, 4))); // transposed view
        assert_eq!(as_cublas(4, 3, 8, 1), Some((false, 8))); // row slice of a wider matrix
        assert_eq!(as_cublas(4, 3, 0, 1), None); // broadcast rows
        assert_eq!(as_cublas(4, 3, 6, 2), None); // column step of 2
        assert_eq!(as_cublas(1, 3, 0, 1), Some((false, 3))); // single row: any row stride
        assert_eq!(as_cublas(4, 1, 1, 0), Some((false, 1))); // single column
    }
}
