//! The [`BackendStorage`] / [`Backend`] implementations for [`CudaStorage`] (the buffer type,
//! in `buffer.rs`): they route every op to its launcher.

use crate::buffer::CudaStorage;
use crate::context::CudaDevice;
use crate::ops;

use mlfw_core::backend::{Backend, BackendStorage, Staging, Storage};
use mlfw_core::params::*;
use mlfw_core::{CpuStorage, DType, Device, Error, Layout, Result, Shape};
use std::any::Any;
use std::sync::Arc;

fn typed<T: mlfw_core::WithDType>(bytes: Vec<u8>) -> Vec<T> {
    let n = bytes.len() / std::mem::size_of::<T>();
    let mut v = vec![T::ZERO; n];
    // SAFETY: T is plain data (never bool here) and both regions hold n * size_of::<T>() bytes.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), v.as_mut_ptr() as *mut u8, bytes.len())
    };
    v
}

/// Creates buffers on one CUDA device (registered with mlfw-core by [`crate::device`]).
pub(crate) struct CudaBackend {
    pub dev: Arc<CudaDevice>,
}

fn boxed(s: CudaStorage) -> Result<Storage> {
    Ok(Box::new(s))
}

impl Backend for CudaBackend {
    fn device(&self) -> Device {
        self.dev.device()
    }
    fn full(&self, n: usize, value: f64, dtype: DType) -> Result<Storage> {
        boxed(ops::elementwise::full(&self.dev, n, value, dtype)?)
    }
    fn from_cpu(&self, data: CpuStorage) -> Result<Storage> {
        boxed(CudaStorage::from_cpu(&self.dev, &data)?)
    }
    fn rand_uniform(
        &self,
        n: usize,
        lo: f64,
        hi: f64,
        dtype: DType,
        seed: u64,
        offset: u64,
    ) -> Result<Storage> {
        boxed(ops::random::uniform(
            &self.dev, n, lo, hi, dtype, seed, offset,
        )?)
    }
    fn randn(
        &self,
        n: usize,
        mean: f64,
        std: f64,
        dtype: DType,
        seed: u64,
        offset: u64,
    ) -> Result<Storage> {
        boxed(ops::random::normal(
            &self.dev, n, mean, std, dtype, seed, offset,
        )?)
    }
    fn synchronize(&self) -> Result<()> {
        self.dev.synchronize()
    }
    /// Page-locked staging with asynchronous copies ([`crate::staging`]).
    fn staging(&self) -> Result<Box<dyn Staging>> {
        Ok(Box::new(crate::staging::PinnedStaging::new(&self.dev)?))
    }
    /// Fused groups run as generated NVRTC kernels ([`crate::fused_run`]).
    fn runs_fused(&self) -> bool {
        crate::compile::nvrtc_available()
    }
    fn run_fused(
        &self,
        g: &mlfw_core::graph::FusedGroup,
        inputs: &[&mlfw_core::Tensor],
        outputs: Option<&[mlfw_core::Tensor]>,
    ) -> Result<Vec<mlfw_core::Tensor>> {
        crate::fused_run::run(&self.dev, g, inputs, outputs)
    }
    /// Stream capture into a CUDA graph (`graph.rs`).
    fn capture_graph(
        &self,
        run: &mut dyn FnMut() -> Result<Vec<mlfw_core::Tensor>>,
    ) -> Result<(
        Box<dyn mlfw_core::backend::DeviceGraph>,
        Vec<mlfw_core::Tensor>,
    )> {
        crate::graph::capture(&self.dev, run)
    }
}

impl BackendStorage for CudaStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn device(&self) -> Device {
        self.dev.device()
    }
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn len(&self) -> usize {
        self.len
    }
    fn to_cpu(&self) -> Result<CpuStorage> {
        let b = self.read_bytes()?;
        Ok(match self.dtype {
            DType::U8 => CpuStorage::U8(b),
            DType::Bool => CpuStorage::Bool(b.into_iter().map(|x| x != 0).collect()),
            DType::I64 => CpuStorage::I64(typed(b)),
            DType::F16 => CpuStorage::F16(typed(b)),
            DType::BF16 => CpuStorage::BF16(typed(b)),
            DType::F32 => CpuStorage::F32(typed(b)),
            DType::F64 => CpuStorage::F64(typed(b)),
        })
    }
    fn copy_layout(&self, l: &Layout) -> Result<Storage> {
        boxed(ops::elementwise::copy_layout(self, l)?)
    }
    fn to_dtype(&self, l: &Layout, dtype: DType) -> Result<Storage> {
        boxed(ops::elementwise::to_dtype(self, l, dtype)?)
    }
    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Storage> {
        boxed(ops::elementwise::unary(self, l, op)?)
    }
    fn binary(
        &self,
        l: &Layout,
        rhs: &dyn BackendStorage,
        rl: &Layout,
        op: BinaryOp,
    ) -> Result<Storage> {
        boxed(ops::elementwise::binary(
            self,
            l,
            self.other(rhs, "binary")?,
            rl,
            op,
        )?)
    }
    fn cmp(&self, l: &Layout, rhs: &dyn BackendStorage, rl: &Layout, op: CmpOp) -> Result<Storage> {
        boxed(ops::elementwise::cmp(
            self,
            l,
            self.other(rhs, "compare")?,
            rl,
            op,
        )?)
    }
    fn where_cond(
        &self,
        l: &Layout,
        t: &dyn BackendStorage,
        tl: &Layout,
        f: &dyn BackendStorage,
        fl: &Layout,
    ) -> Result<Storage> {
        let (t, f) = (self.other(t, "where")?, self.other(f, "where")?);
        boxed(ops::elementwise::where_cond(self, l, t, tl, f, fl)?)
    }
    fn reduce(&self, l: &Layout, op: ReduceOp, dims: &[usize]) -> Result<Storage> {
        boxed(ops::reduce::reduce(self, l, op, dims)?)
    }
    fn softmax(&self, l: &Layout, log: bool) -> Result<Storage> {
        boxed(ops::reduce::softmax(self, l, log)?)
    }
    fn matmul(
        &self,
        l: &Layout,
        rhs: &dyn BackendStorage,
        rl: &Layout,
        d: MatmulDims,
    ) -> Result<Storage> {
        boxed(crate::blas::matmul(
            self,
            l,
            self.other(rhs, "matmul")?,
            rl,
            d,
        )?)
    }
    fn conv2d(
        &self,
        l: &Layout,
        w: &dyn BackendStorage,
        wl: &Layout,
        p: &Conv2dParams,
    ) -> Result<Storage> {
        boxed(crate::conv::conv2d(
            self,
            l,
            self.other(w, "conv2d")?,
            wl,
            p,
        )?)
    }
    fn conv2d_backward_input(
        &self,
        l: &Layout,
        w: &dyn BackendStorage,
        wl: &Layout,
        p: &Conv2dParams,
        input_hw: (usize, usize),
    ) -> Result<Storage> {
        let w = self.other(w, "conv2d_backward_input")?;
        boxed(crate::conv::backward_input(self, l, w, wl, p, input_hw)?)
    }
    fn conv2d_backward_weight(
        &self,
        l: &Layout,
        g: &dyn BackendStorage,
        gl: &Layout,
        p: &Conv2dParams,
        kernel_hw: (usize, usize),
    ) -> Result<Storage> {
        let g = self.other(g, "conv2d_backward_weight")?;
        boxed(crate::conv::backward_weight(self, l, g, gl, p, kernel_hw)?)
    }
    fn max_pool2d(&self, l: &Layout, p: &Pool2dParams) -> Result<(Storage, Storage)> {
        let (v, i) = ops::pool::max_pool2d(self, l, p)?;
        Ok((Box::new(v), Box::new(i)))
    }
    fn max_pool2d_backward(
        &self,
        l: &Layout,
        idx: &dyn BackendStorage,
        il: &Layout,
        input: &Shape,
    ) -> Result<Storage> {
        let idx = self.other(idx, "max_pool2d_backward")?;
        boxed(ops::pool::max_pool2d_backward(self, l, idx, il, input)?)
    }
    fn avg_pool2d(&self, l: &Layout, p: &Pool2dParams) -> Result<Storage> {
        boxed(ops::pool::avg_pool2d(self, l, p)?)
    }
    fn avg_pool2d_backward(&self, l: &Layout, p: &Pool2dParams, input: &Shape) -> Result<Storage> {
        boxed(ops::pool::avg_pool2d_backward(self, l, p, input)?)
    }
    fn adaptive_avg_pool2d(&self, l: &Layout, out_hw: (usize, usize)) -> Result<Storage> {
        boxed(ops::pool::adaptive_avg_pool2d(self, l, out_hw)?)
    }
    fn adaptive_avg_pool2d_backward(&self, l: &Layout, input: &Shape) -> Result<Storage> {
        boxed(ops::pool::adaptive_avg_pool2d_backward(self, l, input)?)
    }
    fn index_select(
        &self,
        l: &Layout,
        ids: &dyn BackendStorage,
        il: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        let ids = self.other(ids, "index_select")?;
        boxed(ops::index::index_select(self, l, ids, il, dim)?)
    }
    fn gather(
        &self,
        l: &Layout,
        ids: &dyn BackendStorage,
        il: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        let ids = self.other(ids, "gather")?;
        boxed(ops::index::gather(self, l, ids, il, dim)?)
    }
    fn scatter_add(
        &self,
        l: &Layout,
        ids: &dyn BackendStorage,
        il: &Layout,
        src: &dyn BackendStorage,
        sl: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        let (ids, src) = (
            self.other(ids, "scatter_add")?,
            self.other(src, "scatter_add")?,
        );
        boxed(ops::index::scatter_add(self, l, ids, il, src, sl, dim)?)
    }
    fn index_add(
        &self,
        l: &Layout,
        ids: &dyn BackendStorage,
        il: &Layout,
        src: &dyn BackendStorage,
        sl: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        let (ids, src) = (self.other(ids, "index_add")?, self.other(src, "index_add")?);
        boxed(ops::index::index_add(self, l, ids, il, src, sl, dim)?)
    }
    fn copy_into(&self, l: &Layout, dst: &mut dyn BackendStorage, dl: &Layout) -> Result<()> {
        let dev = dst.device();
        let d = match dst.as_any_mut().downcast_mut::<CudaStorage>() {
            Some(d) if d.dev.ordinal == self.dev.ordinal => d,
            _ => {
                return Err(Error::DeviceMismatch {
                    op: "copy",
                    lhs: dev,
                    rhs: self.dev.device(),
                })
            }
        };
        ops::elementwise::copy_into(self, l, d, dl)
    }
    fn optim_update(
        &mut self,
        grad: &dyn BackendStorage,
        gl: &Layout,
        state: &mut [&mut dyn BackendStorage],
        u: &OptimUpdate,
    ) -> Result<()> {
        let g = self.other(grad, "optimizer step")?;
        let mut st: Vec<&CudaStorage> = Vec::with_capacity(state.len());
        for s in state.iter() {
            st.push(self.other(&**s, "optimizer step")?);
        }
        ops::optim::update(self, g, gl, &st, u)
    }
}
