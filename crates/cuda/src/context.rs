//! [`CudaDevice`]: one opened GPU — its context and stream, memory-pool settings, the NVRTC
//! module cache and the library handles. The bottom of the crate: every module that launches
//! work takes a `CudaDevice`, and this module imports none of them.

use crate::error::Wrap;
use cudarc::driver::{result, sys, CudaContext, CudaFunction, CudaModule, CudaStream};
use mlfw_core::{DType, Device, Error, Result};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

/// One opened GPU: its context, the stream every op runs on, and compiled kernels.
pub(crate) struct CudaDevice {
    pub ordinal: usize,
    pub ctx: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub name: String,
    /// Compute capability (major, minor).
    pub cc: (i32, i32),
    /// Whether libcudnn was found (else convolutions use im2col + cuBLAS).
    pub has_cudnn: bool,
    modules: Mutex<HashMap<String, Arc<CudaModule>>>,
    funcs: Mutex<HashMap<(String, &'static str), CudaFunction>>,
    /// Fused-group kernels of compiled plans, by signature (`fused_run.rs`).
    fused: Mutex<HashMap<String, CudaFunction>>,
    /// Library handles (cuBLAS, cuDNN), one per kind, created on first use by their modules.
    handles: Mutex<HashMap<TypeId, Handle>>,
}

/// One library handle behind its own lock.
type Handle = Arc<Mutex<Option<Box<dyn Any + Send>>>>;

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cuda:{} ({})", self.ordinal, self.name)
    }
}

/// Every device opened so far (by [`crate::device`]); they stay open for the process.
pub(crate) static OPENED: Mutex<Vec<Arc<CudaDevice>>> = Mutex::new(Vec::new());

impl CudaDevice {
    /// The device `ordinal` if it has been opened.
    ///
    /// Errors: a poisoned lock.
    pub(crate) fn opened(ordinal: usize) -> Result<Option<Arc<CudaDevice>>> {
        Ok(lock(&OPENED)?
            .iter()
            .find(|d| d.ordinal == ordinal)
            .cloned())
    }

    /// Creates the context, stream and memory-pool settings of GPU `ordinal`.
    pub(crate) fn create(ordinal: usize) -> Result<CudaDevice> {
        let count = CudaContext::device_count()
            .map_err(|e| Error::msg(format!("CUDA is not available: no usable GPU ({e:?})")))?;
        if ordinal >= count.max(0) as usize {
            return Err(Error::msg(format!(
                "CUDA device cuda:{ordinal} requested but {count} device(s) are present"
            )));
        }
        let ctx = CudaContext::new(ordinal).w("creating the CUDA context")?;
        // One stream per device: all work is stream-ordered, so per-buffer events are not needed.
        // The one exception, data-loader uploads on a copy stream (`staging.rs`), orders itself
        // with explicit events (the device's stream waits for the copy; the copy stream waits
        // for the device's stream before such a buffer is freed).
        // SAFETY: no CudaSlice exists yet on this context; the only other streams are the
        // staging areas', whose cross-stream ordering is explicit as above.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().w("creating the CUDA stream")?;
        configure_pool(&ctx)?;
        let name = ctx.name().unwrap_or_else(|_| "unknown GPU".into());
        let cc = ctx
            .compute_capability()
            .w("reading the compute capability")?;
        // SAFETY: only tries to dlopen libcudnn.
        let has_cudnn = unsafe { cudarc::cudnn::sys::is_culib_present() };
        Ok(CudaDevice {
            ordinal,
            ctx,
            stream,
            name,
            cc,
            has_cudnn,
            modules: Mutex::new(HashMap::new()),
            funcs: Mutex::new(HashMap::new()),
            fused: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `f` on this device's library handle of type `H` (cuBLAS, cuDNN, ...), creating it
    /// with `init` on first use; the handle is locked while `f` runs.
    ///
    /// Errors: `init` or `f` failing; a poisoned lock.
    pub(crate) fn with_handle<H: Any + Send, R>(
        &self,
        init: impl FnOnce() -> Result<H>,
        f: impl FnOnce(&mut H) -> Result<R>,
    ) -> Result<R> {
        let slot = lock(&self.handles)?
            .entry(TypeId::of::<H>())
            .or_default()
            .clone();
        let mut guard = lock(&slot)?;
        if guard.is_none() {
            *guard = Some(Box::new(init()?));
        }
        let h = guard
            .as_mut()
            .and_then(|b| b.downcast_mut::<H>())
            .ok_or_else(|| Error::msg("mlfw-cuda: library handle of the wrong type"))?;
        f(h)
    }
    /// The mlfw device this is.
    pub fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }

    /// Kernel `name` of module `module` (compiled for `dt` when given), compiling on first use.
    ///
    /// # Errors
    /// The module failing to compile or load (NVRTC missing, a compilation error); no kernel
    /// `name` in it; a poisoned internal lock.
    pub fn func(
        &self,
        module: &'static str,
        dt: Option<DType>,
        name: &'static str,
    ) -> Result<CudaFunction> {
        let key = match dt {
            Some(dt) => format!("{module}_{}", crate::kernels::suffix(dt)),
            None => module.to_string(),
        };
        let fkey = (key, name);
        if let Some(f) = lock(&self.funcs)?.get(&fkey) {
            return Ok(f.clone());
        }
        let m = self.module(&fkey.0, module, dt)?;
        let f = m
            .load_function(name)
            .w(&format!("loading kernel {name} of {}", fkey.0))?;
        lock(&self.funcs)?.insert(fkey, f.clone());
        Ok(f)
    }

    fn module(
        &self,
        key: &str,
        module: &'static str,
        dt: Option<DType>,
    ) -> Result<Arc<CudaModule>> {
        if let Some(m) = lock(&self.modules)?.get(key) {
            return Ok(m.clone());
        }
        let c = crate::compile::compile_module(module, dt, self.cc, crate::compile::Output::Cubin)?;
        let m = self
            .ctx
            .load_module(cudarc::nvrtc::Ptx::from_binary(c.image))
            .map_err(|e| {
                Error::msg(format!(
                    "loading compiled kernel module {key} for sm_{}{} failed ({e:?}); NVRTC {}, CUDA driver {}",
                    self.cc.0,
                    self.cc.1,
                    crate::compile::nvrtc_version()
                        .map(|(a, b)| format!("{a}.{b}"))
                        .unwrap_or_else(|e| e.to_string()),
                    driver_version()
                ))
            })?;
        lock(&self.modules)?.insert(key.to_string(), m.clone());
        Ok(m)
    }

    /// The kernel of fused group `g` (keyed by its loads, instructions and stores: the shape
    /// is a launch argument), built on first use with `build` (kernel name, compiled image)
    /// and loaded once per device.
    ///
    /// # Errors
    /// `build` failing (NVRTC missing, a compilation error); the module failing to load.
    pub(crate) fn fused_func(
        &self,
        g: &mlfw_core::graph::FusedGroup,
        build: impl FnOnce() -> Result<(String, Vec<u8>)>,
    ) -> Result<CudaFunction> {
        let key = format!("{:?}|{:?}|{:?}", g.loads, g.instrs, g.stores);
        if let Some(f) = lock(&self.fused)?.get(&key) {
            return Ok(f.clone());
        }
        let (name, image) = build()?;
        let m = self
            .ctx
            .load_module(cudarc::nvrtc::Ptx::from_binary(image))
            .w(&format!("loading fused kernel {name}"))?;
        let f = m
            .load_function(&name)
            .w(&format!("loading fused kernel {name}"))?;
        lock(&self.fused)?.insert(key, f.clone());
        Ok(f)
    }

    /// Waits for all queued work on this device.
    ///
    /// # Errors
    /// A CUDA error reported by queued work (a failed kernel launch, an illegal address).
    pub fn synchronize(&self) -> Result<()> {
        self.stream.synchronize().w("synchronize")
    }
}

/// The CUDA version the driver supports, as `major.minor`, for error messages.
fn driver_version() -> String {
    let mut v = 0;
    // SAFETY: one out-pointer to a live int; only called once the driver is loaded.
    let r = catch_unwind(AssertUnwindSafe(|| unsafe {
        cudarc::driver::sys::cuDriverGetVersion(&mut v)
    }));
    match r {
        Ok(cudarc::driver::sys::CUresult::CUDA_SUCCESS) => {
            format!("{}.{}", v / 1000, (v % 1000) / 10)
        }
        _ => "unknown".into(),
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>> {
    m.lock()
        .map_err(|_| Error::msg("mlfw-cuda: internal lock poisoned"))
}

/// Keeps freed memory in the device's default pool instead of returning it to the driver.
fn configure_pool(ctx: &Arc<CudaContext>) -> Result<()> {
    if !ctx.has_async_alloc() {
        return Ok(()); // plain cuMemAlloc: nothing to configure
    }
    ctx.bind_to_thread().w("binding the context")?;
    // SAFETY: the device handle comes from a live context; the attribute takes a u64.
    unsafe {
        let pool =
            result::device::get_default_mem_pool(ctx.cu_device()).w("getting the memory pool")?;
        let mut threshold: u64 = u64::MAX;
        result::mem_pool::set_attribute(
            pool,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
            &mut threshold as *mut u64 as *mut std::ffi::c_void,
        )
        .w("setting the memory pool release threshold")?;
    }
    Ok(())
}
