//! Timing helpers shared by the compiled-step examples (included with `#[path]`).

/// The median of `v` (the upper one for an even count); `v` must not be empty.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}

extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// CPU seconds this thread has used (`CLOCK_THREAD_CPUTIME_ID`, nanosecond resolution;
/// /proc's 10 ms ticks were too coarse): with `MLFW_NUM_THREADS=1`, a measure of work that
/// other processes' load does not inflate. 0 when the clock cannot be read.
pub fn thread_cpu_s() -> f64 {
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut ts = Timespec { sec: 0, nsec: 0 };
    // SAFETY: `ts` is a valid timespec (two 64-bit fields on x86_64 Linux) to write into.
    let r = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return 0.0;
    }
    ts.sec as f64 + ts.nsec as f64 * 1e-9
}
