//! Fused float32 CPU kernels for layers whose composed form is slow or memory-hungry, each a
//! custom autograd op with a hand-written backward (cuDNN/oneDNN style): attention
//! ([`attention`]), batch norm (+ ReLU; [`batch_norm`], on core's kernels), GELU ([`gelu`]), layer normalisation ([`layer_norm`]), linear layers with their bias
//! ([`linear`]) and the LSTM sequence ([`lstm`]).
//!
//! Each applies only to float32 CPU tensors and, except batch norm, never while a graph is
//! being captured ([`mlfw_core::graph::is_capturing`]): a graph holds core ops only, so it can
//! be replayed, simplified and exported. Batch norm in training mode is captured as core's own
//! `batch_norm`/`batch_norm_backward` ops (one node each, the same kernels as eager). Under
//! `create_graph` each backward falls back to the composed ops.
//! `MLFW_FUSED=0` turns them all off (for comparisons).

pub(crate) mod attention;
mod attention_kernel;
pub(crate) mod batch_norm;
pub(crate) mod gelu;
pub(crate) mod layer_norm;
pub(crate) mod linear;
pub(crate) mod lstm;
mod lstm_kernel;
#[cfg(target_arch = "x86_64")]
mod lstm_simd;

use mlfw_core::cpu::batch_norm::with_f32;
use mlfw_core::{DType, Device, Result, Tensor};

/// Whether the fused kernels may run on `ts`: float32 CPU tensors, no capture in progress,
/// not switched off by `MLFW_FUSED=0`.
pub(crate) fn usable(ts: &[&Tensor]) -> bool {
    eligible(ts) && !mlfw_core::graph::is_capturing()
}

/// [`usable`] but for the capture: float32 CPU tensors, not switched off by `MLFW_FUSED=0`.
fn eligible(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| t.dtype() == DType::F32 && t.device() == Device::Cpu)
        && std::env::var_os("MLFW_FUSED").is_none_or(|v| v != "0")
}

/// Whether the fused `what` kernel runs on `ts` when `fits` (its own shape conditions): as
/// [`usable`], and where only a capture stops it while gradients are tracked, the capture
/// notes that the composite ops' backward (another summation order than the fused kernel's
/// hand-written one) stands in for it ([`mlfw_core::graph::note_composite`]). The forward
/// values are the same either way (`crates/vision/tests/graph_zoo.rs`).
pub(crate) fn usable_noted(what: &str, ts: &[&Tensor], fits: bool) -> bool {
    if !(fits && eligible(ts)) {
        return false;
    }
    if mlfw_core::graph::is_capturing() {
        if mlfw_core::is_grad_enabled() && ts.iter().any(|t| t.requires_grad()) {
            mlfw_core::graph::note_composite(what);
        }
        return false;
    }
    true
}

/// The float32 values of a tensor (one copy; a contiguous CPU buffer is copied directly).
pub(crate) fn f32s(t: &Tensor) -> Result<Vec<f32>> {
    match with_f32(t, <[f32]>::to_vec) {
        Some(v) => Ok(v),
        None => t.to_vec::<f32>(),
    }
}

/// `dst[m×n] (row stride dst_rs) = [dst +] alpha·A·B` with `A[i,p] = a[i·a_rs + p·a_cs]`
/// and `B[p,j] = b[p·b_rs + j·b_cs]`, on this thread (the fused kernels' small products).
///
/// # Safety
/// Every index reached lies inside the buffers behind the pointers, and no other thread
/// touches those `dst` elements meanwhile.
pub(crate) unsafe fn mm(
    (m, n, k): (usize, usize, usize),
    (dst, dst_rs): (*mut f32, usize),
    (a, a_rs, a_cs): (*const f32, usize, usize),
    (b, b_rs, b_cs): (*const f32, usize, usize),
    accumulate: bool,
    alpha: f32,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                std::ptr::write_bytes(dst.add(i * dst_rs), 0, n);
            }
        }
        return;
    }
    gemm::gemm(
        m,
        n,
        k,
        dst,
        1,
        dst_rs as isize,
        accumulate,
        a,
        a_cs as isize,
        a_rs as isize,
        b,
        b_cs as isize,
        b_rs as isize,
        1.0,
        alpha,
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}

/// A pointer that parallel tasks share; each task writes its own disjoint part.
#[derive(Clone, Copy)]
pub(crate) struct Out(*mut f32);
// SAFETY: tasks write disjoint ranges and the buffer outlives the parallel run.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

impl Out {
    pub(crate) fn new(v: &mut [f32]) -> Self {
        Out(v.as_mut_ptr())
    }

    /// The address of element `i` (for raw writes by the task that owns it).
    pub(crate) fn at(&self, i: usize) -> *mut f32 {
        self.0.wrapping_add(i)
    }

    /// `len` elements from `start`, for the one task that owns them.
    ///
    /// # Safety
    /// `start + len` is within the buffer and no other task touches that range meanwhile.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn part(&self, start: usize, len: usize) -> &mut [f32] {
        std::slice::from_raw_parts_mut(self.0.add(start), len)
    }
}

/// Helpers of the fused kernels' tests.
#[cfg(test)]
pub(crate) mod test_util {
    use mlfw_core::{DType, Device, Generator, Tensor};

    /// Normal numbers (mean `shift`, std 1) from a seeded generator, requiring grad.
    pub(crate) fn rand(shape: &[usize], seed: u64, shift: f64) -> Tensor {
        let mut g = Generator::new(seed);
        Tensor::randn_with(shift, 1.0, shape, DType::F32, &Device::Cpu, &mut g)
            .unwrap()
            .requires_grad_(true)
            .unwrap()
    }

    /// The largest absolute difference of two float32 tensors of the same size.
    pub(crate) fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }
}
