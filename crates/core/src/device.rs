//! Devices, and the registry through which outer crates (mlfw-cuda) plug in a backend.

use crate::backend::Backend;
use crate::{Error, Result};
use std::sync::{Arc, RwLock};

/// Where a tensor's storage lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// Host memory; kernels in this crate.
    Cpu,
    /// CUDA device with the given ordinal; kernels in `mlfw-cuda`.
    Cuda(usize),
}

impl Device {
    /// True for [`Device::Cpu`].
    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu)
    }

    /// Parses `cpu`, `cuda`, `cuda:N`.
    ///
    /// # Errors
    /// `Error::Msg` for anything but `cpu`, `cuda`, `gpu` or `cuda:N`.
    pub fn parse(s: &str) -> Result<Device> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(i)) => Ok(Device::Cuda(i)),
                _ => Err(Error::msg(format!(
                    "unknown device `{s}`: expected cpu, cuda or cuda:N"
                ))),
            },
        }
    }

    /// The backend registered for this device (errors for a CUDA device no backend was registered for).
    ///
    /// # Errors
    /// `Error::Msg` when no backend is registered for the device (a CUDA device without `mlfw-cuda`
    /// linked and initialised), or the registry lock is poisoned.
    pub fn backend(&self) -> Result<Arc<dyn Backend>> {
        if let Device::Cpu = self {
            return Ok(crate::cpu::cpu_backend());
        }
        let reg = REGISTRY
            .read()
            .map_err(|_| Error::msg("device registry poisoned"))?;
        reg.iter()
            .find(|b| b.device() == *self)
            .cloned()
            .ok_or_else(|| {
                Error::msg(format!(
                    "device {self} is not available: no backend registered (call mlfw_cuda::device({}) first, which checks that CUDA is present)",
                    match self { Device::Cuda(i) => *i, Device::Cpu => 0 }
                ))
            })
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

static REGISTRY: RwLock<Vec<Arc<dyn Backend>>> = RwLock::new(Vec::new());

/// Registers a backend for its device (replacing an earlier one for the same device).
/// Called by `mlfw-cuda`; users do not need it.
///
/// # Errors
/// `Error::Msg` when the device registry lock is poisoned.
pub fn register_backend(backend: Arc<dyn Backend>) -> Result<()> {
    let mut reg = REGISTRY
        .write()
        .map_err(|_| Error::msg("device registry poisoned"))?;
    let dev = backend.device();
    reg.retain(|b| b.device() != dev);
    reg.push(backend);
    Ok(())
}
