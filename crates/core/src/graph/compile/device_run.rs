//! Plans on devices other than the CPU: fused groups run by the device's backend
//! ([`crate::backend::Backend::run_fused`], NVRTC kernels on CUDA), and the whole replay
//! captured once into a device graph ([`crate::backend::Backend::capture_graph`], a CUDA
//! graph) and relaunched per step by [`Plan::run_graphed`].
//!
//! Neither has run on a GPU yet (none was available when this was written): the CPU-side
//! logic is tested here, the GPU tests live in `crates/cuda/tests/` and skip without a GPU.

use super::kernel::FusedKernel;
use super::{FusedGroup, LoadKind, Plan};
use crate::backend::DeviceGraph;
use crate::{Device, Error, Result, Tensor};

/// Whether a plan on `device` forms fused groups: the CPU always, another device when its
/// backend runs them ([`crate::backend::Backend::runs_fused`]).
pub(super) fn fuses_on(device: Device) -> bool {
    device == Device::Cpu || device.backend().is_ok_and(|b| b.runs_fused())
}

/// The load kind of `t` read as a group of `shape`: one element, the group's own shape laid
/// out contiguously, or a strided walk (broadcasts and views).
fn load_kind(t: &Tensor, shape: &[usize]) -> LoadKind {
    if t.elem_count() == 1 {
        LoadKind::Scalar
    } else if t.dims() == shape && t.layout().contiguous_range().is_some() {
        LoadKind::Contiguous
    } else {
        LoadKind::Strided { rank: shape.len() }
    }
}

impl FusedKernel {
    /// The group as plain data with the given loads (dtype and layout of each input).
    pub(super) fn group(&self, loads: Vec<(crate::DType, LoadKind)>) -> FusedGroup {
        let dtype = |b: bool| {
            if b {
                crate::DType::Bool
            } else {
                crate::DType::F32
            }
        };
        FusedGroup {
            shape: self.shape.clone(),
            loads,
            instrs: self.instrs.clone(),
            stores: self
                .stores
                .iter()
                .zip(&self.store_bool)
                .map(|(&r, &b)| (r, dtype(b)))
                .collect(),
        }
    }
}

/// The fused group `kernel` as plain data, its load kinds read from `inputs`.
pub(super) fn group_of(kernel: &FusedKernel, inputs: &[&Tensor]) -> FusedGroup {
    kernel.group(
        inputs
            .iter()
            .map(|t| (t.dtype(), load_kind(t, &kernel.shape)))
            .collect(),
    )
}

/// Runs `kernel` on the device of `inputs` through its backend (into `outputs` when given).
pub(super) fn run_fused(
    kernel: &FusedKernel,
    inputs: &[&Tensor],
    outputs: Option<&[Tensor]>,
) -> Result<Vec<Tensor>> {
    let device = inputs
        .first()
        .map(|t| t.device())
        .ok_or_else(|| Error::msg("fused group without inputs"))?;
    device
        .backend()?
        .run_fused(&group_of(kernel, inputs), inputs, outputs)
}

/// Where a plan's device-graph replay stands.
#[derive(Default)]
pub(crate) enum Replay {
    /// Not run yet: the first run is the warm-up (modules load, planned buffers allocate).
    #[default]
    Fresh,
    /// Warmed up: the next run captures the graph and launches it.
    Warm,
    /// Captured: every run copies its inputs in and launches the graph.
    Ready(Box<Captured>),
    /// Plain replay (the CPU, `MLFW_CUDA_GRAPH=0`, or capture failed).
    Off,
}

/// A captured replay: the buffers the graph reads its inputs from and writes its outputs to.
pub(crate) struct Captured {
    inputs: Vec<Tensor>,
    outputs: Vec<Tensor>,
    graph: Box<dyn DeviceGraph>,
}

impl Drop for Captured {
    /// The graph may still be running: wait for it before its buffers are freed.
    fn drop(&mut self) {
        if let Some(b) = self.inputs.first().and_then(|t| t.device().backend().ok()) {
            let _ = b.synchronize();
        }
    }
}

/// Whether device graphs are wanted (`MLFW_CUDA_GRAPH=0` turns them off).
fn graphs_enabled() -> bool {
    std::env::var_os("MLFW_CUDA_GRAPH").is_none_or(|v| v != "0")
}

impl Plan {
    /// The device the plan runs on (its first node's).
    pub(super) fn device(&self) -> Device {
        self.graph
            .nodes
            .first()
            .map(|n| n.device)
            .unwrap_or(Device::Cpu)
    }

    /// Runs the plan like [`Plan::run`] (same inputs, same results, outputs in memory of
    /// their own), replayed as a device graph where the device captures one (CUDA): the
    /// first run is a plain warm-up (kernels load, planned buffers are allocated); the second
    /// captures one run on fixed input buffers into a graph and launches it; every later run
    /// copies its inputs into those buffers, relaunches the graph and copies the outputs out.
    /// When the capture fails (an op that synchronizes with the host or allocates outside
    /// the stream-ordered pool) one line on stderr says why and the plan replays plainly
    /// from then on. On the CPU, or with `MLFW_CUDA_GRAPH=0`, this is [`Plan::run`].
    ///
    /// The graph reads parameters from the buffers they had at capture: updates in place
    /// (optimizer steps) are seen, a parameter given new storage is not. Not yet run on a
    /// GPU.
    ///
    /// # Errors
    /// As [`Plan::run`]; the device failing to launch the graph.
    pub fn run_graphed(&mut self, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        match std::mem::take(&mut self.replay) {
            Replay::Fresh => {
                self.replay = if self.device() != Device::Cpu && graphs_enabled() {
                    Replay::Warm
                } else {
                    Replay::Off
                };
                self.run(inputs)
            }
            Replay::Warm => match self.capture(inputs) {
                Ok(c) => self.launch(c, inputs),
                Err(e) => {
                    eprintln!("compile: no device graph for this plan, plain replay instead: {e}");
                    self.replay = Replay::Off;
                    self.run(inputs)
                }
            },
            Replay::Ready(c) => self.launch(c, inputs),
            Replay::Off => self.run(inputs),
        }
    }

    /// Whether the plan replays through a captured device graph now.
    pub fn graph_captured(&self) -> bool {
        matches!(self.replay, Replay::Ready(_))
    }

    fn capture(&mut self, inputs: &[Tensor]) -> Result<Box<Captured>> {
        self.check(inputs)?;
        let fixed: Vec<Tensor> = inputs.iter().map(Tensor::copy).collect::<Result<_>>()?;
        let backend = self.device().backend()?;
        let (graph, outputs) = backend.capture_graph(&mut || self.run(&fixed))?;
        Ok(Box::new(Captured {
            inputs: fixed,
            outputs,
            graph,
        }))
    }

    fn launch(&mut self, mut c: Box<Captured>, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        let r = (|| {
            self.check(inputs)?;
            for (dst, x) in c.inputs.iter().zip(inputs) {
                dst.assign(x)?;
            }
            c.graph.launch()?;
            c.outputs.iter().map(Tensor::copy).collect()
        })();
        self.replay = Replay::Ready(c);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Capture;
    use crate::DType;

    fn plan() -> Result<(Plan, Tensor)> {
        let x = Tensor::randn(0.0, 1.0, [2, 3, 4], DType::F32, &Device::Cpu)?;
        let b = Tensor::randn(0.0, 1.0, [3, 1], DType::F32, &Device::Cpu)?;
        let g = Capture::new().input("x", &x).param("b", &b).run(|xs| {
            let h = xs[0].add(&b)?.relu()?;
            Ok(vec![h.mul_scalar(3.0)?.sub(&xs[0])?])
        })?;
        Ok((super::super::compile(&g)?, x))
    }

    #[test]
    fn the_group_handed_to_a_backend_reads_its_load_kinds_from_the_inputs() -> Result<()> {
        let (p, x) = plan()?;
        let Some(super::super::Step::Fused { kernel, .. }) = p
            .steps
            .iter()
            .find(|s| matches!(s, super::super::Step::Fused { .. }))
        else {
            panic!("no fused step");
        };
        let b = Tensor::zeros([3, 1], DType::F32, &Device::Cpu)?;
        let s = Tensor::zeros([1], DType::F32, &Device::Cpu)?;
        let xt = x.permute(&[0, 2, 1])?.contiguous()?.permute(&[0, 2, 1])?;
        let g = group_of(kernel, &[&x, &b, &s, &xt]);
        assert_eq!(g.shape, vec![2, 3, 4]);
        assert_eq!(
            g.loads.iter().map(|l| l.1).collect::<Vec<_>>(),
            vec![
                LoadKind::Contiguous,
                LoadKind::Strided { rank: 3 },
                LoadKind::Scalar,
                LoadKind::Strided { rank: 3 },
            ]
        );
        assert_eq!(g.instrs, kernel.instrs);
        assert!(g.stores.iter().all(|&(_, d)| d == DType::F32));
        Ok(())
    }

    #[test]
    fn graphed_runs_on_the_cpu_are_plain_runs() -> Result<()> {
        let (mut p, x) = plan()?;
        let want = p.run(std::slice::from_ref(&x))?[0].to_vec::<f32>()?;
        for _ in 0..3 {
            assert_eq!(
                p.run_graphed(std::slice::from_ref(&x))?[0].to_vec::<f32>()?,
                want
            );
            assert!(!p.graph_captured());
        }
        assert!(matches!(p.replay, Replay::Off));
        // A CUDA device without a registered backend does not fuse.
        assert!(fuses_on(Device::Cpu));
        assert!(!fuses_on(Device::Cuda(99)));
        Ok(())
    }
}
