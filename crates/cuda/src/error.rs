//! Turning cudarc's error types into [`mlfw_core::Error`] with a message a user can act on.

use cudarc::cublas::result::CublasError;
use cudarc::cudnn::result::CudnnError;
use cudarc::driver::DriverError;
use mlfw_core::Error;

/// Converts a cudarc error into an mlfw error, naming what was being done.
pub(crate) trait Wrap<T> {
    /// Maps the error, prefixing `what`.
    fn w(self, what: &str) -> mlfw_core::Result<T>;
}

impl<T> Wrap<T> for Result<T, DriverError> {
    fn w(self, what: &str) -> mlfw_core::Result<T> {
        self.map_err(|e| {
            let name = e.error_name().map(|s| s.to_string_lossy().into_owned());
            let desc = e.error_string().map(|s| s.to_string_lossy().into_owned());
            Error::msg(format!(
                "CUDA error in {what}: {} ({})",
                name.unwrap_or_else(|_| format!("{:?}", e.0)),
                desc.unwrap_or_default()
            ))
        })
    }
}

impl<T> Wrap<T> for Result<T, CublasError> {
    fn w(self, what: &str) -> mlfw_core::Result<T> {
        self.map_err(|e| Error::msg(format!("cuBLAS error in {what}: {:?}", e.0)))
    }
}

impl<T> Wrap<T> for Result<T, CudnnError> {
    fn w(self, what: &str) -> mlfw_core::Result<T> {
        self.map_err(|e| Error::msg(format!("cuDNN error in {what}: {:?}", e.0)))
    }
}
