//! Fused float32 CPU kernels for layers whose composed form is slow or memory-hungry, each a
//! custom autograd op with a hand-written backward (cuDNN/oneDNN style): attention
//! ([`attention`]), batch norm (+ ReLU; [`batch_norm`], on core's kernels), GELU ([`gelu`]), layer normalisation ([`layer_norm`]), linear layers with their bias
//! ([`linear`]) and the LSTM sequence ([`lstm`]).
//!
//! Each applies only to float32 CPU tensors and never while a graph is being captured
//! ([`mlfw_core::graph::is_capturing`]): a graph holds core ops only, so it can be replayed,
//! simplified and exported. Under `create_graph` each backward falls back to the composed ops.
//! `MLFW_FUSED=0` turns them all off (for comparisons).

pub(crate) mod attention;
mod attention_kernel;
pub(crate) mod batch_norm;
pub(crate) mod gelu;
pub(crate) mod layer_norm;
pub(crate) mod linear;
pub(crate) mod lstm;
mod lstm_kernel;

use mlfw_core::{CpuStorage, DType, Device, Result, Tensor};

/// Whether the fused kernels may run on `ts`: float32 CPU tensors, no capture in progress,
/// not switched off by `MLFW_FUSED=0`.
pub(crate) fn usable(ts: &[&Tensor]) -> bool {
    ts.iter()
        .all(|t| t.dtype() == DType::F32 && t.device() == Device::Cpu)
        && !mlfw_core::graph::is_capturing()
        && std::env::var_os("MLFW_FUSED").is_none_or(|v| v != "0")
}

/// The float32 values of a tensor (one copy; a contiguous CPU buffer is sliced directly).
pub(crate) fn f32s(t: &Tensor) -> Result<Vec<f32>> {
    let st = t.storage();
    match st.as_any().downcast_ref::<CpuStorage>() {
        Some(CpuStorage::F32(v)) if t.is_contiguous() => {
            let o = t.layout().offset();
            Ok(v[o..o + t.elem_count()].to_vec())
        }
        _ => t.to_vec::<f32>(),
    }
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
