//! Creating tensors: from data, constants, ranges, random numbers; reading them back.

use super::Tensor;
use crate::op::Op;
use crate::random::{with_global, Generator};
use crate::{CpuStorage, DType, Device, Error, Layout, Result, Shape, WithDType};

impl Tensor {
    /// A tensor of `shape` holding `data` (row-major) on `device`.
    ///
    /// # Errors
    /// `Error::Msg` when `data.len()` differs from the shape's element count; device errors copying
    /// to `device`.
    pub fn from_vec<T: WithDType>(
        data: Vec<T>,
        shape: impl Into<Shape>,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        if data.len() != shape.elem_count() {
            return Err(Error::msg(format!(
                "from_vec: {} elements cannot fill shape {shape} ({} elements)",
                data.len(),
                shape.elem_count()
            )));
        }
        Self::from_cpu_storage(T::to_cpu_storage(data), shape, device)
    }

    /// A tensor of `shape` copied from `data`.
    ///
    /// # Errors
    /// As [`Tensor::from_vec`].
    pub fn from_slice<T: WithDType>(
        data: &[T],
        shape: impl Into<Shape>,
        device: &Device,
    ) -> Result<Tensor> {
        Self::from_vec(data.to_vec(), shape, device)
    }

    /// A tensor from host storage (element count must match the shape).
    ///
    /// # Errors
    /// `Error::Msg` when the storage length differs from the shape's element count; device errors.
    pub fn from_cpu_storage(
        data: CpuStorage,
        shape: impl Into<Shape>,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        if data.len() != shape.elem_count() {
            return Err(Error::msg(format!(
                "{} elements cannot fill shape {shape}",
                data.len()
            )));
        }
        let storage = device.backend()?.from_cpu(data)?;
        Ok(Tensor::make(storage, Layout::contiguous(shape), None))
    }

    /// A 0-dim tensor holding `v`.
    ///
    /// # Errors
    /// Device errors only (no backend for `device`, out of memory).
    pub fn scalar<T: WithDType>(v: T, device: &Device) -> Result<Tensor> {
        Self::from_vec(vec![v], Shape::new(vec![]), device)
    }

    /// `shape` filled with `value`.
    ///
    /// # Errors
    /// Device errors only (no backend for `device`, out of memory).
    pub fn full(
        value: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        let s = device.backend()?.full(shape.elem_count(), value, dtype)?;
        Ok(Tensor::make(s, Layout::contiguous(shape), None))
    }

    /// Zeros.
    ///
    /// # Errors
    /// Device errors only (no backend for `device`, out of memory).
    pub fn zeros(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        Self::full(0.0, shape, dtype, device)
    }

    /// Ones.
    ///
    /// # Errors
    /// Device errors only (no backend for `device`, out of memory).
    pub fn ones(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        Self::full(1.0, shape, dtype, device)
    }

    /// Zeros shaped, typed and placed like `self`.
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn zeros_like(&self) -> Result<Tensor> {
        self.full_like(0.0)
    }

    /// Ones shaped, typed and placed like `self`.
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn ones_like(&self) -> Result<Tensor> {
        self.full_like(1.0)
    }

    /// `value` shaped, typed and placed like `self` (a graph capture records it as
    /// [`Op::FullLike`], so its shape follows `self` when the graph runs on other shapes).
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn full_like(&self, value: f64) -> Result<Tensor> {
        let shape = self.shape().clone();
        let s = self
            .device()
            .backend()?
            .full(shape.elem_count(), value, self.dtype())?;
        Ok(Tensor::from_storage(
            s,
            shape,
            || Op::FullLike(self.clone(), value),
            &[],
        ))
    }

    /// `start, start+step, ...` below `end` (as torch.arange).
    ///
    /// # Errors
    /// `Error::Msg` when `step` is 0 or not finite, or points away from `end`.
    pub fn arange(
        start: f64,
        end: f64,
        step: f64,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || (end - start) / step < 0.0 {
            return Err(Error::msg(format!(
                "arange: invalid range {start}..{end} step {step}"
            )));
        }
        let n = ((end - start) / step).ceil() as usize;
        let v: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        Tensor::from_vec(v, n, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(device)
    }

    /// `n` evenly spaced points from `start` to `end` inclusive.
    ///
    /// # Errors
    /// Device errors only; `n = 0` gives an empty tensor, `n = 1` gives `[start]`.
    pub fn linspace(
        start: f64,
        end: f64,
        n: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let step = if n > 1 {
            (end - start) / (n - 1) as f64
        } else {
            0.0
        };
        let v: Vec<f64> = (0..n)
            .map(|i| {
                if i + 1 == n && n > 1 {
                    end
                } else {
                    start + i as f64 * step
                }
            })
            .collect();
        Tensor::from_vec(v, n, &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(device)
    }

    /// The `n`×`n` identity.
    ///
    /// # Errors
    /// Device errors only.
    pub fn eye(n: usize, dtype: DType, device: &Device) -> Result<Tensor> {
        let mut v = vec![0f64; n * n];
        (0..n).for_each(|i| v[i * n + i] = 1.0);
        Tensor::from_vec(v, [n, n], &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(device)
    }

    /// Uniform numbers in `[lo, hi)` from the global generator (see [`crate::manual_seed`]).
    ///
    /// # Errors
    /// Device errors only (no backend for `device`, out of memory).
    pub fn rand(
        lo: f64,
        hi: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        with_global(|g| Self::rand_with(lo, hi, shape, dtype, device, g))
    }

    /// Uniform numbers from an explicit generator.
    ///
    /// # Errors
    /// Device errors only (no backend for `device`, out of memory).
    pub fn rand_with(
        lo: f64,
        hi: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
        g: &mut Generator,
    ) -> Result<Tensor> {
        let shape = shape.into();
        let n = shape.elem_count();
        let (seed, off) = g.advance(n as u64);
        let s = device
            .backend()?
            .rand_uniform(n, lo, hi, dtype, seed, off)?;
        Ok(Tensor::make(s, Layout::contiguous(shape), None))
    }

    /// Normal numbers from the global generator.
    ///
    /// # Errors
    /// Device errors only (no backend for `device`, out of memory).
    pub fn randn(
        mean: f64,
        std: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        with_global(|g| Self::randn_with(mean, std, shape, dtype, device, g))
    }

    /// Normal numbers from an explicit generator.
    ///
    /// # Errors
    /// Device errors only (no backend for `device`, out of memory).
    pub fn randn_with(
        mean: f64,
        std: f64,
        shape: impl Into<Shape>,
        dtype: DType,
        device: &Device,
        g: &mut Generator,
    ) -> Result<Tensor> {
        let shape = shape.into();
        let n = shape.elem_count();
        // Normal element i uses counters 2i and 2i+1; start on an even counter.
        let (seed, off) = g.advance(2 * n as u64 + 1);
        let s = device
            .backend()?
            .randn(n, mean, std, dtype, seed, off.div_ceil(2))?;
        Ok(Tensor::make(s, Layout::contiguous(shape), None))
    }

    /// Integers in `lo..hi` (i64) from the global generator.
    ///
    /// # Errors
    /// `Error::Msg` when `lo >= hi` (an empty range); device errors.
    pub fn randint(lo: i64, hi: i64, shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        with_global(|g| Self::randint_with(lo, hi, shape, device, g))
    }

    /// Integers in `lo..hi` (i64) from an explicit generator.
    ///
    /// # Errors
    /// `Error::Msg` when `lo >= hi` (an empty range); device errors.
    pub fn randint_with(
        lo: i64,
        hi: i64,
        shape: impl Into<Shape>,
        device: &Device,
        g: &mut Generator,
    ) -> Result<Tensor> {
        if hi <= lo {
            return Err(Error::msg(format!("randint: empty range {lo}..{hi}")));
        }
        let shape = shape.into();
        let n = shape.elem_count();
        let (seed, off) = g.advance(n as u64);
        let span = (hi - lo) as f64;
        let v: Vec<i64> = (0..n as u64)
            .map(|i| (lo + (crate::random::uniform_at(seed, off + i) * span) as i64).min(hi - 1))
            .collect();
        Tensor::from_vec(v, shape, device)
    }

    /// All elements, row-major, as `T` (which must be the dtype). Copies from any device.
    ///
    /// # Errors
    /// `Error::DTypeMismatch` when `T` is not the tensor's dtype (use [`Tensor::to_f64_vec`] for
    /// any); device errors copying to the host.
    pub fn to_vec<T: WithDType>(&self) -> Result<Vec<T>> {
        crate::graph::tape::note_read(self, "to_vec");
        if self.dtype() != T::DTYPE {
            return Err(Error::DTypeMismatch {
                op: "to_vec",
                lhs: self.dtype(),
                rhs: T::DTYPE,
            });
        }
        let s = self.storage();
        let host;
        let cpu: &CpuStorage = match s.as_any().downcast_ref::<CpuStorage>() {
            Some(c) => c,
            None => {
                host = s.to_cpu()?;
                &host
            }
        };
        let v = T::cpu_slice(cpu).ok_or(Error::DTypeMismatch {
            op: "to_vec",
            lhs: cpu.dtype(),
            rhs: T::DTYPE,
        })?;
        Ok(crate::cpu::map::gather(v, self.layout()))
    }

    /// Elements converted to f64 (any dtype).
    ///
    /// # Errors
    /// Device errors copying to the host.
    pub fn to_f64_vec(&self) -> Result<Vec<f64>> {
        self.to_dtype(DType::F64)?.to_vec::<f64>()
    }

    /// The single element of a one-element tensor.
    ///
    /// # Errors
    /// `Error::Msg` when the tensor does not hold exactly one element; `Error::DTypeMismatch` when
    /// `T` is not its dtype.
    pub fn item<T: WithDType>(&self) -> Result<T> {
        if self.elem_count() != 1 {
            return Err(Error::msg(format!(
                "item: tensor of shape {} has {} elements, expected 1",
                self.shape(),
                self.elem_count()
            )));
        }
        Ok(self.to_vec::<T>()?[0])
    }

    /// The single element as f64, whatever the dtype.
    ///
    /// # Errors
    /// `Error::Msg` when the tensor does not hold exactly one element.
    pub fn item_f64(&self) -> Result<f64> {
        if self.elem_count() != 1 {
            return Err(Error::msg(format!(
                "item: tensor of shape {} has {} elements, expected 1",
                self.shape(),
                self.elem_count()
            )));
        }
        Ok(self.to_f64_vec()?[0])
    }

    /// Converts to `dtype` (a no-op clone when it already is).
    ///
    /// # Errors
    /// `Error::UnsupportedDType` for a cast the backend lacks; device errors (out of memory).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let s = self.storage().to_dtype(self.layout(), dtype)?;
        let track = super::track(&[self]) && dtype.is_float();
        Ok(Tensor::finish(
            std::sync::Arc::new(std::sync::RwLock::new(s)),
            Layout::contiguous(self.shape().clone()),
            || Op::ToDType(self.clone()),
            track,
        ))
    }

    /// Moves to `device` (a no-op clone when already there).
    ///
    /// # Errors
    /// `Error::Msg` when no backend is registered for `device`; device errors (out of memory, a
    /// failed copy).
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if *device == self.device() {
            return Ok(self.clone());
        }
        let host = {
            let s = self.storage();
            let c = s.copy_layout(self.layout())?;
            c.to_cpu()?
        };
        let s = device.backend()?.from_cpu(host)?;
        Ok(Tensor::from_storage(
            s,
            self.shape().clone(),
            || Op::ToDevice(self.clone()),
            &[self],
        ))
    }

    /// Moves to `staging`'s device through it (a no-op clone when already there): as
    /// [`Tensor::to_device`], but the host→device copy may go through the staging area's
    /// reused page-locked buffer and run asynchronously (see [`crate::backend::Staging`]).
    /// Data loaders use it, one staging area per worker thread.
    ///
    /// # Errors
    /// As [`Tensor::to_device`].
    pub fn to_device_staged(&self, staging: &mut dyn crate::backend::Staging) -> Result<Tensor> {
        if staging.device() == self.device() {
            return Ok(self.clone());
        }
        let host = {
            let s = self.storage();
            let c = s.copy_layout(self.layout())?;
            c.to_cpu()?
        };
        let s = staging.upload(host)?;
        Ok(Tensor::from_storage(
            s,
            self.shape().clone(),
            || Op::ToDevice(self.clone()),
            &[self],
        ))
    }

    /// Alias of [`Tensor::to_device`].
    ///
    /// # Errors
    /// As [`Tensor::to_device`].
    pub fn to(&self, device: &Device) -> Result<Tensor> {
        self.to_device(device)
    }

    /// A contiguous copy (recorded as identity).
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn copy(&self) -> Result<Tensor> {
        let s = self.storage().copy_layout(self.layout())?;
        Ok(Tensor::from_storage(
            s,
            self.shape().clone(),
            || Op::Copy(self.clone()),
            &[self],
        ))
    }

    /// `self` if contiguous, else a contiguous copy.
    ///
    /// # Errors
    /// Device errors only (out of memory).
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            Ok(self.clone())
        } else {
            self.copy()
        }
    }
}
