//! Scoped switches for op recording (PyTorch's `torch.no_grad()` / `enable_grad()`).

use mlfw_core::set_grad_enabled;

/// Restores the previous recording setting of this thread when dropped.
#[must_use = "recording is restored as soon as the guard is dropped"]
pub struct GradModeGuard {
    prev: bool,
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        set_grad_enabled(self.prev);
    }
}

/// Turns op recording off on this thread until the guard is dropped.
///
/// ```
/// let _g = mlfw_autograd::no_grad();
/// assert!(!mlfw_core::is_grad_enabled());
/// ```
pub fn no_grad() -> GradModeGuard {
    GradModeGuard {
        prev: set_grad_enabled(false),
    }
}

/// Turns op recording on on this thread until the guard is dropped.
pub fn enable_grad() -> GradModeGuard {
    GradModeGuard {
        prev: set_grad_enabled(true),
    }
}
