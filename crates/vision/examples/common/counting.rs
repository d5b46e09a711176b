//! A global allocator that counts heap allocations (calls and bytes) of the whole process,
//! for the compiled-step examples' "allocations per step" lines.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Forwards to the system allocator, counting each allocation.
pub struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; the counters are atomics.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        BYTES.fetch_add(l.size(), Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { std::alloc::System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        // SAFETY: `p` came from `alloc` above with layout `l`.
        unsafe { std::alloc::System.dealloc(p, l) }
    }
}

/// (allocations, bytes) so far.
pub fn allocs() -> (usize, usize) {
    (ALLOCS.load(Relaxed), BYTES.load(Relaxed))
}

/// Allocations and megabytes per call of `f`, over `n` calls.
pub fn per_call(
    n: usize,
    mut f: impl FnMut() -> mlfw_core::Result<()>,
) -> mlfw_core::Result<(usize, f64)> {
    let a0 = allocs();
    for _ in 0..n {
        f()?;
    }
    let a1 = allocs();
    Ok(((a1.0 - a0.0) / n, (a1.1 - a0.1) as f64 / n as f64 / 1e6))
}
