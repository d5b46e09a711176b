//! CUDA graphs for compiled plans: [`capture`] records the work a closure queues on the
//! device's stream (stream capture, thread-local mode) into a graph instantiated with
//! auto-free-on-launch, so the memory the captured run allocates from the stream-ordered
//! pool keeps its addresses and is recycled at each relaunch. `mlfw_core`'s
//! `Plan::run_graphed` decides when to capture and owns the input/output buffers.
//!
//! Nothing here has run on a GPU yet (`tests/cuda/compiled.rs` checks it when one is
//! present).

use crate::context::CudaDevice;
use crate::error::Wrap;
use cudarc::driver::{sys, CudaGraph};
use mlfw_core::backend::DeviceGraph;
use mlfw_core::{Error, Result, Tensor};
use std::sync::Arc;

/// A captured CUDA graph, launched on the device's stream.
struct Graph(CudaGraph);

// SAFETY: the graph is used by one thread at a time (`launch` takes `&mut self`; the plan
// owning it is never shared), which is all the CUDA graph API asks for.
unsafe impl Send for Graph {}

impl DeviceGraph for Graph {
    fn launch(&mut self) -> Result<()> {
        self.0.launch().w("launching a CUDA graph")
    }
}

/// Captures the work `run` queues on `dev`'s stream into a CUDA graph (nothing executes)
/// and returns it with `run`'s results, whose memory the graph owns.
///
/// # Errors
/// Work still pending failing; `run` failing; an operation that cannot be captured
/// (a host synchronization, a synchronous allocation, a copy to the host): the capture
/// is ended and discarded and the error says what failed.
pub(crate) fn capture(
    dev: &Arc<CudaDevice>,
    run: &mut dyn FnMut() -> Result<Vec<Tensor>>,
) -> Result<(Box<dyn DeviceGraph>, Vec<Tensor>)> {
    dev.synchronize()?;
    dev.stream
        .begin_capture(sys::CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL)
        .w("beginning a CUDA graph capture")?;
    let outs = run();
    let flags = sys::CUgraphInstantiate_flags::CUDA_GRAPH_INSTANTIATE_FLAG_AUTO_FREE_ON_LAUNCH;
    let graph = dev.stream.end_capture(flags);
    match (outs, graph) {
        (Ok(outs), Ok(Some(g))) => Ok((Box::new(Graph(g)), outs)),
        (outs, graph) => {
            // Free what the abandoned capture allocated, then clear any error those frees
            // (or the capture) left in the context, so later work is not blamed for it.
            let err = match (outs, graph) {
                (Err(e), _) => e.context("while capturing a CUDA graph"),
                (Ok(_), Ok(_)) => Error::msg("CUDA graph capture recorded nothing"),
                (Ok(_), Err(e)) => match Err::<(), _>(e).w("ending a CUDA graph capture") {
                    Err(e) => e,
                    Ok(()) => Error::msg("CUDA graph capture failed"),
                },
            };
            let _ = dev.synchronize();
            let _ = dev.ctx.check_err();
            Err(err)
        }
    }
}
