//! `--device cpu|cuda|cuda:N` to an mlfw [`Device`], opening CUDA only when asked for.

use mlfw_core::Device;

use crate::error::{CliError, Result};

/// Parses `spec` and, for a CUDA device, opens it (which registers the backend).
///
/// # Errors
/// In one line: an unknown spec (listing the valid forms); CUDA not usable here (no driver,
/// GPU or library).
pub fn open(spec: &str) -> Result<Device> {
    let dev = Device::parse(spec.trim().to_ascii_lowercase().as_str())?;
    match dev {
        Device::Cpu => Ok(Device::Cpu),
        Device::Cuda(i) => mlfw_cuda::device(i).map_err(|e| {
            let first = e.to_string();
            let first = first.lines().next().unwrap_or("").trim().to_string();
            CliError::msg(format!("--device {spec}: {first}"))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_and_bad_specs() {
        assert_eq!(open("cpu").unwrap(), Device::Cpu);
        assert_eq!(open("CPU").unwrap(), Device::Cpu);
        let e = open("tpu").unwrap_err();
        assert!(
            e.message().contains("cpu, cuda or cuda:N"),
            "{}",
            e.message()
        );
    }
}
