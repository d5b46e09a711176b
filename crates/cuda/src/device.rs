//! Opening a GPU: probing for the CUDA libraries, creating the context and stream, the
//! per-device NVRTC module cache, and registering the backend with `mlfw-core`.

use crate::error::Wrap;
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream};
use mlfw_core::{DType, Device, Error, Result};
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
    pub(crate) blas: Mutex<Option<crate::blas::Blas>>,
    pub(crate) dnn: Mutex<Option<crate::cudnn::Dnn>>,
}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cuda:{} ({})", self.ordinal, self.name)
    }
}

impl CudaDevice {
    /// The mlfw device this is.
    pub fn device(&self) -> Device {
        Device::Cuda(self.ordinal)
    }

    /// Kernel `name` of module `module` (compiled for `dt` when given), compiling on first use.
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

    /// Waits for all queued work on this device.
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

fn not_available(lib: &str, what: &str) -> Error {
    Error::msg(format!(
        "CUDA is not available: lib{lib}.so not found ({what}); install it or add its folder to LD_LIBRARY_PATH"
    ))
}

/// Checks that the CUDA libraries mlfw needs can be opened (driver, NVRTC, cuBLAS);
/// cuDNN is optional. Loads nothing else and never panics.
pub fn probe() -> Result<()> {
    // SAFETY: these only try to dlopen candidate library names.
    unsafe {
        if !cudarc::driver::sys::is_culib_present() {
            return Err(not_available("cuda", "the NVIDIA driver library"));
        }
        if !cudarc::nvrtc::sys::is_culib_present() {
            return Err(not_available(
                "nvrtc",
                "the CUDA runtime compiler, used for kernels",
            ));
        }
        if !cudarc::cublas::sys::is_culib_present() {
            return Err(not_available("cublas", "cuBLAS, used for matmul"));
        }
    }
    Ok(())
}

/// True when [`device`]`(0)` would succeed in opening a GPU.
pub fn is_available() -> bool {
    probe().is_ok() && open(0).is_ok()
}

static DEVICES: Mutex<Vec<Arc<CudaDevice>>> = Mutex::new(Vec::new());

/// The opened device for `ordinal` (opening it on first use).
pub(crate) fn open(ordinal: usize) -> Result<Arc<CudaDevice>> {
    if let Some(d) = lock(&DEVICES)?.iter().find(|d| d.ordinal == ordinal) {
        return Ok(d.clone());
    }
    probe()?;
    let dev = catch_unwind(AssertUnwindSafe(|| create(ordinal))).map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Error::msg(format!(
            "CUDA is not available: initialisation failed: {msg}"
        ))
    })??;
    let dev = Arc::new(dev);
    let mut all = lock(&DEVICES)?;
    if let Some(d) = all.iter().find(|d| d.ordinal == ordinal) {
        return Ok(d.clone());
    }
    all.push(dev.clone());
    Ok(dev)
}

fn create(ordinal: usize) -> Result<CudaDevice> {
    let count = CudaContext::device_count()
        .map_err(|e| Error::msg(format!("CUDA is not available: no usable GPU ({e:?})")))?;
    if ordinal >= count.max(0) as usize {
        return Err(Error::msg(format!(
            "CUDA device cuda:{ordinal} requested but {count} device(s) are present"
        )));
    }
    let ctx = CudaContext::new(ordinal).w("creating the CUDA context")?;
    // One stream per device: all work is stream-ordered, so per-buffer events are not needed.
    // SAFETY: no CudaSlice exists yet on this context, and we never use a second stream.
    unsafe { ctx.disable_event_tracking() };
    let stream = ctx.new_stream().w("creating the CUDA stream")?;
    crate::alloc::configure_pool(&ctx)?;
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
        blas: Mutex::new(None),
        dnn: Mutex::new(None),
    })
}

/// Opens CUDA device `ordinal`, registers its backend with `mlfw-core`, and returns
/// `Device::Cuda(ordinal)`. Errors (never panics) with a one-line reason when CUDA, the GPU,
/// or a needed library (driver, NVRTC, cuBLAS) is missing.
pub fn device(ordinal: usize) -> Result<Device> {
    let dev = open(ordinal)?;
    mlfw_core::register_backend(Arc::new(crate::storage::CudaBackend { dev }))?;
    Ok(Device::Cuda(ordinal))
}

/// A one-line description of an opened device: name, compute capability, memory, cuDNN.
pub fn device_info(ordinal: usize) -> Result<String> {
    let d = open(ordinal)?;
    let (free, total) = d.ctx.mem_get_info().w("reading memory info")?;
    Ok(format!(
        "cuda:{} {} (sm_{}{}), {:.1} GiB total, {:.1} GiB free, cuDNN {}",
        d.ordinal,
        d.name,
        d.cc.0,
        d.cc.1,
        total as f64 / (1u64 << 30) as f64,
        free as f64 / (1u64 << 30) as f64,
        if d.has_cudnn {
            "present"
        } else {
            "absent (im2col fallback)"
        }
    ))
}

/// Parses `cpu`, `cuda` or `cuda:N` and, for a CUDA device, opens it (registering the
/// backend), so the returned device is ready for `Tensor::to_device`.
pub fn parse_device(s: &str) -> Result<Device> {
    match Device::parse(s)? {
        Device::Cuda(i) => device(i),
        d => Ok(d),
    }
}
