//! The backend traits: what a device must implement so that every op runs on it.
//!
//! [`BackendStorage`] is one buffer on a device plus the kernels that read it through a
//! [`Layout`]. Inputs arrive with arbitrary strides (broadcast dims have stride 0); outputs
//! are fresh contiguous buffers. [`Backend`] creates buffers on its device. The CPU
//! implementation lives in [`crate::cpu`]; `mlfw-cuda` implements both traits for CUDA.

use crate::graph::FusedGroup;
use crate::params::*;
use crate::{CpuStorage, DType, Device, Error, Layout, Result, Shape, Tensor};
use std::any::Any;

/// A buffer on some device, owned by one or more tensors (through `Arc<RwLock<..>>`).
pub type Storage = Box<dyn BackendStorage>;

/// Creation of buffers on one device.
pub trait Backend: Send + Sync {
    /// The device this backend serves.
    fn device(&self) -> Device;
    /// `n` elements of `value`.
    fn full(&self, n: usize, value: f64, dtype: DType) -> Result<Storage>;
    /// Copies host data to the device.
    #[allow(clippy::wrong_self_convention)]
    fn from_cpu(&self, data: CpuStorage) -> Result<Storage>;
    /// Counter-based uniform numbers in `[lo, hi)`: element i uses counter `offset + i` of `seed`
    /// (see [`crate::random`]), so every device draws the same numbers.
    fn rand_uniform(
        &self,
        n: usize,
        lo: f64,
        hi: f64,
        dtype: DType,
        seed: u64,
        offset: u64,
    ) -> Result<Storage>;
    /// Counter-based normal numbers (Box-Muller on the uniform stream).
    fn randn(
        &self,
        n: usize,
        mean: f64,
        std: f64,
        dtype: DType,
        seed: u64,
        offset: u64,
    ) -> Result<Storage>;
    /// Waits for queued work.
    fn synchronize(&self) -> Result<()>;
    /// A staging area for many host→device copies made from one thread (a data-loader
    /// worker's batches): see [`Staging`]. The default copies each upload with
    /// [`Backend::from_cpu`], as [`Tensor::to_device`](crate::Tensor::to_device) does; CUDA's
    /// stages through reused page-locked memory with the copy asynchronous on a stream of its own.
    ///
    /// # Errors
    /// Device errors creating the staging area (a CUDA stream).
    fn staging(&self) -> Result<Box<dyn Staging>> {
        Ok(Box::new(DirectStaging(self.device())))
    }
    /// Whether [`Backend::run_fused`] runs a compiled plan's fused elementwise groups on this
    /// device. When false (the default) a plan on this device runs every node with the
    /// eager kernels. The CPU's fused loop lives in core and does not use this hook.
    fn runs_fused(&self) -> bool {
        false
    }
    /// Runs one fused group ([`FusedGroup`]: its shape, loads, instructions and stores) on
    /// this device: `inputs` (one per load, f32 or bool, shaped like the group or broadcast
    /// to it, any strides) are read and one tensor per store is written, contiguous and of
    /// the group's shape. `outputs` are the plan's preallocated buffers (one per store, of the
    /// store's dtype, at least the group's element count) or `None` for fresh ones; the
    /// written tensors are returned. The loads' [`crate::graph::LoadKind`]s in `g` are what
    /// compilation guessed; a backend reads the real layouts from `inputs`.
    ///
    /// # Errors
    /// The default: not supported on this device. A backend's own: a dtype other than
    /// f32/bool, a layout it cannot walk, compilation or launch failures.
    fn run_fused(
        &self,
        g: &FusedGroup,
        inputs: &[&Tensor],
        outputs: Option<&[Tensor]>,
    ) -> Result<Vec<Tensor>> {
        let _ = (g, inputs, outputs);
        Err(Error::msg(format!(
            "fused groups are not supported on {:?}",
            self.device()
        )))
    }
    /// Records the device work `run` queues (without executing it) as a replayable graph,
    /// and returns it with `run`'s results (tensors whose memory belongs to the graph: read
    /// them after [`DeviceGraph::launch`], never keep them past the next launch). On CUDA this
    /// is stream capture into a CUDA graph. `run` must not synchronize with the host or
    /// allocate outside the device's stream-ordered pool.
    ///
    /// # Errors
    /// The default: not supported on this device. A backend's own: `run` failing, or doing
    /// something that cannot be captured (the capture is then abandoned).
    fn capture_graph(
        &self,
        run: &mut dyn FnMut() -> Result<Vec<Tensor>>,
    ) -> Result<(Box<dyn DeviceGraph>, Vec<Tensor>)> {
        let _ = run;
        Err(Error::msg(format!(
            "graph capture is not supported on {:?}",
            self.device()
        )))
    }
}

/// A captured, replayable sequence of device work (a CUDA graph): see
/// [`Backend::capture_graph`].
pub trait DeviceGraph: Send {
    /// Queues one replay of the captured work on the device's stream (asynchronous).
    ///
    /// # Errors
    /// The device failing to launch it.
    fn launch(&mut self) -> Result<()>;
}

/// A reusable host→device staging area, owned by one thread: uploads through it may reuse
/// host buffers (page-locked on CUDA) and queue their copies asynchronously, ordered before
/// any later work on the device, so the caller need not wait for them. Create one with
/// [`Backend::staging`]; use it with [`Tensor::to_device_staged`](crate::Tensor::to_device_staged).
pub trait Staging {
    /// The device uploads go to.
    fn device(&self) -> Device;
    /// Copies host data to a new buffer on [`Staging::device`].
    ///
    /// # Errors
    /// Device errors (out of memory, a failed copy).
    fn upload(&mut self, data: CpuStorage) -> Result<Storage>;
}

/// The default staging: each upload is the backend's plain [`Backend::from_cpu`].
struct DirectStaging(Device);

impl Staging for DirectStaging {
    fn device(&self) -> Device {
        self.0
    }
    fn upload(&mut self, data: CpuStorage) -> Result<Storage> {
        self.0.backend()?.from_cpu(data)
    }
}

/// A device buffer and the kernels over it. See the module docs for conventions.
#[allow(clippy::too_many_arguments)]
pub trait BackendStorage: Send + Sync + std::fmt::Debug {
    /// For downcasting to the concrete storage.
    fn as_any(&self) -> &dyn Any;
    /// For downcasting to the concrete storage.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Where the buffer lives.
    fn device(&self) -> Device;
    /// Element type.
    fn dtype(&self) -> DType;
    /// Number of elements in the buffer.
    fn len(&self) -> usize;
    /// True when the buffer holds no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies the whole buffer to host memory.
    fn to_cpu(&self) -> Result<CpuStorage>;
    /// The view `l` as a new contiguous buffer.
    fn copy_layout(&self, l: &Layout) -> Result<Storage>;
    /// The view converted to `dtype`, contiguous.
    fn to_dtype(&self, l: &Layout, dtype: DType) -> Result<Storage>;
    /// Elementwise op of one input.
    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Storage>;
    /// Elementwise op of two inputs whose layouts have the same shape.
    fn binary(
        &self,
        l: &Layout,
        rhs: &dyn BackendStorage,
        rl: &Layout,
        op: BinaryOp,
    ) -> Result<Storage>;
    /// Comparison to a bool mask (layouts of the same shape).
    fn cmp(&self, l: &Layout, rhs: &dyn BackendStorage, rl: &Layout, op: CmpOp) -> Result<Storage>;
    /// `self` is a bool mask; picks `t` where true else `f` (all layouts of the same shape).
    fn where_cond(
        &self,
        l: &Layout,
        t: &dyn BackendStorage,
        tl: &Layout,
        f: &dyn BackendStorage,
        fl: &Layout,
    ) -> Result<Storage>;
    /// Reduces `dims` (sorted, distinct); output shape keeps them with size 1.
    fn reduce(&self, l: &Layout, op: ReduceOp, dims: &[usize]) -> Result<Storage>;
    /// (Log-)softmax over the last dim.
    fn softmax(&self, l: &Layout, log: bool) -> Result<Storage>;
    /// Batched matmul: `l` is `[b, m, k]`, `rl` is `[b, k, n]`, any strides; out `[b, m, n]`.
    fn matmul(
        &self,
        l: &Layout,
        rhs: &dyn BackendStorage,
        rl: &Layout,
        d: MatmulDims,
    ) -> Result<Storage>;
    /// Convolution, no bias: input `[N, C, H, W]`, weight `[O, C/g, kH, kW]`.
    fn conv2d(
        &self,
        l: &Layout,
        w: &dyn BackendStorage,
        wl: &Layout,
        p: &Conv2dParams,
    ) -> Result<Storage>;
    /// Gradient of conv2d w.r.t. its input: `self` is grad_out `[N, O, oH, oW]`; `input_hw` the input size.
    fn conv2d_backward_input(
        &self,
        l: &Layout,
        w: &dyn BackendStorage,
        wl: &Layout,
        p: &Conv2dParams,
        input_hw: (usize, usize),
    ) -> Result<Storage>;
    /// Gradient of conv2d w.r.t. its weight: `self` is the input, `g` grad_out; `kernel_hw` the kernel size.
    fn conv2d_backward_weight(
        &self,
        l: &Layout,
        g: &dyn BackendStorage,
        gl: &Layout,
        p: &Conv2dParams,
        kernel_hw: (usize, usize),
    ) -> Result<Storage>;
    /// Max pooling: (values, i64 indices into each input plane `h * W + w`).
    fn max_pool2d(&self, l: &Layout, p: &Pool2dParams) -> Result<(Storage, Storage)>;
    /// Scatters grad_out (`self`) back through the indices into an input-shaped gradient.
    fn max_pool2d_backward(
        &self,
        l: &Layout,
        idx: &dyn BackendStorage,
        il: &Layout,
        input: &Shape,
    ) -> Result<Storage>;
    /// Average pooling.
    fn avg_pool2d(&self, l: &Layout, p: &Pool2dParams) -> Result<Storage>;
    /// Gradient of avg pooling (`self` is grad_out).
    fn avg_pool2d_backward(&self, l: &Layout, p: &Pool2dParams, input: &Shape) -> Result<Storage>;
    /// Adaptive average pooling to `out_hw` (PyTorch's start/end index rule).
    fn adaptive_avg_pool2d(&self, l: &Layout, out_hw: (usize, usize)) -> Result<Storage>;
    /// Gradient of adaptive avg pooling (`self` is grad_out).
    fn adaptive_avg_pool2d_backward(&self, l: &Layout, input: &Shape) -> Result<Storage>;
    /// Selects entries along `dim` by i64 indices (already range-checked).
    fn index_select(
        &self,
        l: &Layout,
        ids: &dyn BackendStorage,
        il: &Layout,
        dim: usize,
    ) -> Result<Storage>;
    /// `out[..i..] = self[..ids[..i..]..]` along `dim` (torch.gather).
    fn gather(
        &self,
        l: &Layout,
        ids: &dyn BackendStorage,
        il: &Layout,
        dim: usize,
    ) -> Result<Storage>;
    /// `self` copied, then `out[..ids[..i..]..] += src[..i..]` along `dim` (torch.scatter_add).
    fn scatter_add(
        &self,
        l: &Layout,
        ids: &dyn BackendStorage,
        il: &Layout,
        src: &dyn BackendStorage,
        sl: &Layout,
        dim: usize,
    ) -> Result<Storage>;
    /// `self` copied, then `out.select(dim, ids[i]) += src.select(dim, i)` (torch.index_add).
    fn index_add(
        &self,
        l: &Layout,
        ids: &dyn BackendStorage,
        il: &Layout,
        src: &dyn BackendStorage,
        sl: &Layout,
        dim: usize,
    ) -> Result<Storage>;
    /// Writes the view `l` of `self` into the view `dl` of `dst` (same shape, same dtype).
    fn copy_into(&self, l: &Layout, dst: &mut dyn BackendStorage, dl: &Layout) -> Result<()>;
    /// Updates `self` (a contiguous parameter) in place from `grad` and `state` buffers.
    fn optim_update(
        &mut self,
        grad: &dyn BackendStorage,
        gl: &Layout,
        state: &mut [&mut dyn BackendStorage],
        u: &OptimUpdate,
    ) -> Result<()>;
}
