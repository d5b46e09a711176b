//! Keeping freed tensor buffers in the process instead of returning them to the kernel.
//!
//! A training step frees and re-allocates the same large buffers every iteration. With
//! glibc's defaults, buffers above 128 KiB are fresh `mmap`s and freed memory at the top of
//! the heap is trimmed, so every step pays page faults and zeroing for memory it just gave
//! back (a third of a LeNet-5 step in profiles). [`tune_allocator`] raises both thresholds
//! so that steady-state steps reuse heap memory.

/// Tunes the C allocator for tensor workloads: allocations up to 256 MiB come from the heap
/// and up to 1 GiB of free heap is kept for reuse. Process-wide; call it once at start-up
/// (the `mlfw` binary does). Does nothing on platforms without glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}
