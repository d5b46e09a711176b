//! Post-accumulate-grad hooks (PyTorch's `Tensor.register_post_accumulate_grad_hook`): a
//! function called with a leaf tensor as soon as a backward pass has finished accumulating
//! its `.grad`. Data-parallel training uses them to start reducing a bucket of gradients
//! while the rest of backward still runs.

use mlfw_core::{Tensor, TensorId};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A hook: called with the leaf whose gradient is final for this backward pass.
pub type GradHook = Arc<dyn Fn(&Tensor) + Send + Sync>;

static ANY: AtomicBool = AtomicBool::new(false);
static NEXT: AtomicU64 = AtomicU64::new(1);
static HOOKS: Mutex<Vec<(u64, TensorId, GradHook)>> = Mutex::new(Vec::new());

fn hooks() -> MutexGuard<'static, Vec<(u64, TensorId, GradHook)>> {
    HOOKS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes its hook when dropped.
#[must_use = "the hook is removed as soon as the handle is dropped"]
pub struct HookHandle(u64);

impl Drop for HookHandle {
    fn drop(&mut self) {
        let mut h = hooks();
        h.retain(|(id, _, _)| *id != self.0);
        ANY.store(!h.is_empty(), Ordering::Release);
    }
}

/// Calls `hook(leaf)` after every backward pass ([`crate::backward`], `tensor.backward()`)
/// that accumulates into `leaf.grad()` — once per pass, after all of that pass's
/// contributions are summed. [`crate::grad`], which does not touch `.grad`, calls no hooks.
pub fn register_post_accumulate_grad_hook(leaf: &Tensor, hook: GradHook) -> HookHandle {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    hooks().push((id, leaf.id(), hook));
    ANY.store(true, Ordering::Release);
    HookHandle(id)
}

/// Runs the hooks registered for `leaf` (the engine calls this).
pub(crate) fn run(leaf: &Tensor) {
    if !ANY.load(Ordering::Acquire) {
        return;
    }
    // Clone out of the lock first: a hook may register or drop hooks itself.
    let found: Vec<GradHook> = hooks()
        .iter()
        .filter(|(_, t, _)| *t == leaf.id())
        .map(|(_, _, h)| h.clone())
        .collect();
    for h in found {
        h(leaf);
    }
}
