//! The CPU backend: host buffers ([`CpuStorage`]) and their kernels.

mod alloc;
pub mod batch_norm;
mod conv;
mod conv_pool_fused;
pub(crate) use conv::{conv2d_backward_input_f32_into, conv2d_f32_into};
pub use conv::{winograd_wgrad, WinogradWgrad};
pub(crate) use elementwise::binary_f32_into;
pub(crate) use matmul::matmul_f32_into;
pub(crate) use pool::{max_pool2d_backward_f32_into, max_pool2d_f32_into};
pub(crate) use reduce::{reduce_f32_into, softmax_f32_into};
mod elementwise;
mod f32_view;
mod index;
pub(crate) mod map;
mod matmul;
mod optim;
mod pool;
pub(crate) mod pool_fused;
mod pool_row_avx512;
mod reduce;
mod storage;
mod vexp;

pub use alloc::tune_allocator;
pub(crate) use conv_pool_fused::{conv_bias_relu_max_pool_2x2, conv_weight_grad_from_pool};
pub use storage::CpuStorage;
#[cfg(target_arch = "x86_64")]
pub use vexp::exp16;
pub use vexp::exp_shifted_sum;

use crate::backend::{Backend, BackendStorage, Storage};
use crate::params::*;
use crate::random::{normal_at, uniform_at};
use crate::{DType, Device, Error, Layout, Result, Shape};
use std::any::Any;
use std::sync::{Arc, OnceLock};

/// True when the CPU runs AVX-512 (F, VL, BW, DQ), the feature set of the compiled plan's
/// fused loops and the fused pooling kernels; checked once.
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx512() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
    })
}

/// Creates host buffers.
#[derive(Debug, Default)]
pub struct CpuBackend;

/// The shared CPU backend.
pub fn cpu_backend() -> Arc<dyn Backend> {
    static B: OnceLock<Arc<dyn Backend>> = OnceLock::new();
    B.get_or_init(|| Arc::new(CpuBackend)).clone()
}

fn from_f64_vec(v: Vec<f64>, dtype: DType) -> CpuStorage {
    let s = CpuStorage::F64(v);
    let l = Layout::contiguous(s.len());
    map::to_dtype(&s, &l, dtype)
}

impl Backend for CpuBackend {
    fn device(&self) -> Device {
        Device::Cpu
    }
    fn full(&self, n: usize, value: f64, dtype: DType) -> Result<Storage> {
        Ok(Box::new(CpuStorage::full(n, value, dtype)))
    }
    fn from_cpu(&self, data: CpuStorage) -> Result<Storage> {
        Ok(Box::new(data))
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
        if dtype == DType::F32 {
            let v = (0..n as u64)
                .map(|i| (lo + (hi - lo) * uniform_at(seed, offset + i)) as f32)
                .collect();
            return Ok(Box::new(CpuStorage::F32(v)));
        }
        let v = (0..n as u64)
            .map(|i| lo + (hi - lo) * uniform_at(seed, offset + i))
            .collect();
        Ok(Box::new(from_f64_vec(v, dtype)))
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
        let v = (0..n as u64)
            .map(|i| mean + std * normal_at(seed, offset + i))
            .collect();
        Ok(Box::new(from_f64_vec(v, dtype)))
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
}

/// Downcasts another buffer to host storage (errors when it lives on another device).
fn cpu<'a>(s: &'a dyn BackendStorage, op: &'static str) -> Result<&'a CpuStorage> {
    s.as_any()
        .downcast_ref::<CpuStorage>()
        .ok_or(Error::DeviceMismatch {
            op,
            lhs: Device::Cpu,
            rhs: s.device(),
        })
}

fn boxed(s: CpuStorage) -> Result<Storage> {
    Ok(Box::new(s))
}

impl BackendStorage for CpuStorage {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn device(&self) -> Device {
        Device::Cpu
    }
    fn dtype(&self) -> DType {
        CpuStorage::dtype(self)
    }
    fn len(&self) -> usize {
        CpuStorage::len(self)
    }
    fn to_cpu(&self) -> Result<CpuStorage> {
        Ok(self.clone())
    }
    fn copy_layout(&self, l: &Layout) -> Result<Storage> {
        boxed(crate::map_cpu_vec!(self, v => map::gather(v, l)))
    }
    fn to_dtype(&self, l: &Layout, dtype: DType) -> Result<Storage> {
        boxed(map::to_dtype(self, l, dtype))
    }
    fn unary(&self, l: &Layout, op: UnaryOp) -> Result<Storage> {
        boxed(elementwise::unary(self, l, op)?)
    }
    fn binary(
        &self,
        l: &Layout,
        rhs: &dyn BackendStorage,
        rl: &Layout,
        op: BinaryOp,
    ) -> Result<Storage> {
        boxed(elementwise::binary(self, l, cpu(rhs, "binary")?, rl, op)?)
    }
    fn cmp(&self, l: &Layout, rhs: &dyn BackendStorage, rl: &Layout, op: CmpOp) -> Result<Storage> {
        boxed(elementwise::cmp(self, l, cpu(rhs, "compare")?, rl, op)?)
    }
    fn where_cond(
        &self,
        l: &Layout,
        t: &dyn BackendStorage,
        tl: &Layout,
        f: &dyn BackendStorage,
        fl: &Layout,
    ) -> Result<Storage> {
        boxed(elementwise::where_cond(
            self,
            l,
            cpu(t, "where")?,
            tl,
            cpu(f, "where")?,
            fl,
        )?)
    }
    fn reduce(&self, l: &Layout, op: ReduceOp, dims: &[usize]) -> Result<Storage> {
        boxed(reduce::reduce(self, l, op, dims)?)
    }
    fn softmax(&self, l: &Layout, log: bool) -> Result<Storage> {
        boxed(reduce::softmax(self, l, log)?)
    }
    fn matmul(
        &self,
        l: &Layout,
        rhs: &dyn BackendStorage,
        rl: &Layout,
        d: MatmulDims,
    ) -> Result<Storage> {
        boxed(matmul::matmul(self, l, cpu(rhs, "matmul")?, rl, d)?)
    }
    fn conv2d(
        &self,
        l: &Layout,
        w: &dyn BackendStorage,
        wl: &Layout,
        p: &Conv2dParams,
    ) -> Result<Storage> {
        boxed(conv::conv2d(self, l, cpu(w, "conv2d")?, wl, p)?)
    }
    fn conv2d_backward_input(
        &self,
        l: &Layout,
        w: &dyn BackendStorage,
        wl: &Layout,
        p: &Conv2dParams,
        input_hw: (usize, usize),
    ) -> Result<Storage> {
        boxed(conv::conv2d_backward_input(
            self,
            l,
            cpu(w, "conv2d_backward_input")?,
            wl,
            p,
            input_hw,
        )?)
    }
    fn conv2d_backward_weight(
        &self,
        l: &Layout,
        g: &dyn BackendStorage,
        gl: &Layout,
        p: &Conv2dParams,
        kernel_hw: (usize, usize),
    ) -> Result<Storage> {
        boxed(conv::conv2d_backward_weight(
            self,
            l,
            cpu(g, "conv2d_backward_weight")?,
            gl,
            p,
            kernel_hw,
        )?)
    }
    fn max_pool2d(&self, l: &Layout, p: &Pool2dParams) -> Result<(Storage, Storage)> {
        let (v, i) = pool::max_pool2d(self, l, p)?;
        Ok((Box::new(v), Box::new(i)))
    }
    fn max_pool2d_backward(
        &self,
        l: &Layout,
        idx: &dyn BackendStorage,
        il: &Layout,
        input: &Shape,
    ) -> Result<Storage> {
        boxed(pool::max_pool2d_backward(
            self,
            l,
            cpu(idx, "max_pool2d_backward")?,
            il,
            input,
        )?)
    }
    fn avg_pool2d(&self, l: &Layout, p: &Pool2dParams) -> Result<Storage> {
        boxed(pool::avg_pool2d(self, l, p)?)
    }
    fn avg_pool2d_backward(&self, l: &Layout, p: &Pool2dParams, input: &Shape) -> Result<Storage> {
        boxed(pool::avg_pool2d_backward(self, l, p, input)?)
    }
    fn adaptive_avg_pool2d(&self, l: &Layout, out_hw: (usize, usize)) -> Result<Storage> {
        boxed(pool::adaptive_avg_pool2d(self, l, out_hw)?)
    }
    fn adaptive_avg_pool2d_backward(&self, l: &Layout, input: &Shape) -> Result<Storage> {
        boxed(pool::adaptive_avg_pool2d_backward(self, l, input)?)
    }
    fn index_select(
        &self,
        l: &Layout,
        ids: &dyn BackendStorage,
        il: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        boxed(index::index_select(
            self,
            l,
            cpu(ids, "index_select")?,
            il,
            dim,
        )?)
    }
    fn gather(
        &self,
        l: &Layout,
        ids: &dyn BackendStorage,
        il: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        boxed(index::gather(self, l, cpu(ids, "gather")?, il, dim)?)
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
        boxed(index::scatter_add(
            self,
            l,
            cpu(ids, "scatter_add")?,
            il,
            cpu(src, "scatter_add")?,
            sl,
            dim,
        )?)
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
        boxed(index::index_add(
            self,
            l,
            cpu(ids, "index_add")?,
            il,
            cpu(src, "index_add")?,
            sl,
            dim,
        )?)
    }
    fn copy_into(&self, l: &Layout, dst: &mut dyn BackendStorage, dl: &Layout) -> Result<()> {
        let dev = dst.device();
        let d = dst
            .as_any_mut()
            .downcast_mut::<CpuStorage>()
            .ok_or(Error::DeviceMismatch {
                op: "copy",
                lhs: dev,
                rhs: Device::Cpu,
            })?;
        map::copy_into(self, l, d, dl)
    }
    fn optim_update(
        &mut self,
        grad: &dyn BackendStorage,
        gl: &Layout,
        state: &mut [&mut dyn BackendStorage],
        u: &OptimUpdate,
    ) -> Result<()> {
        let g = cpu(grad, "optimizer step")?;
        let mut st = Vec::with_capacity(state.len());
        for s in state.iter_mut() {
            let dev = s.device();
            st.push(
                s.as_any_mut()
                    .downcast_mut::<CpuStorage>()
                    .ok_or(Error::DeviceMismatch {
                        op: "optimizer step",
                        lhs: Device::Cpu,
                        rhs: dev,
                    })?,
            );
        }
        optim::optim_update(self, g, gl, &mut st, u)
    }
}
