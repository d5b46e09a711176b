//! Fork-join parallelism for the CPU kernels: the calling thread works too, and idle workers
//! spin briefly before they sleep.
//!
//! A training step is dozens of kernels of tens to hundreds of microseconds each. A pool that
//! puts its workers to sleep between them, or that parks the calling thread while its workers
//! run (rayon, called from outside its pool), pays a futex wake-up and a context switch per
//! kernel, which on a 2-core VM measured 2.3 ms of a 7 ms LeNet-5 step. So, as OpenMP does:
//! [`run`] publishes a job, takes tasks itself, and returns once every task is done; workers
//! poll for the next job for [`SPIN`] before sleeping on a condition variable.
//!
//! A call made from inside a task, or while another thread's job holds the pool (tests run in
//! parallel, data-loader workers), runs serially on its own thread instead of queueing.
//! The thread count is `MLFW_NUM_THREADS`, else `RAYON_NUM_THREADS`, else the number of CPUs.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long an idle worker polls for the next job before it sleeps.
pub const SPIN: Duration = Duration::from_micros(500);

/// `state` bit: the published job still accepts workers.
const OPEN: u64 = 1 << 31;
/// `state` bits: how many workers are attached to the published job.
const ATTACHED: u64 = OPEN - 1;

thread_local! {
    /// True on pool workers and on a caller while it runs its own tasks.
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// One call of [`run`]: `tasks` calls of `f`, handed out through `next`.
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
    tasks: usize,
    next: AtomicUsize,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Job<'_> {
    /// Takes and runs tasks until none are left; a panic is kept for the caller to rethrow.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.tasks {
                return;
            }
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| (self.f)(i))) {
                self.next.store(self.tasks, Ordering::Relaxed);
                let mut slot = self.panic.lock().unwrap_or_else(PoisonError::into_inner);
                slot.get_or_insert(p);
            }
        }
    }
}

struct Pool {
    workers: usize,
    /// Held by the one top-level call whose job is published.
    busy: AtomicBool,
    /// `epoch << 32 | OPEN | attached`: a new epoch per job.
    state: AtomicU64,
    job: AtomicPtr<Job<'static>>,
    sleepers: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<&'static Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let p: &'static Pool = Box::leak(Box::new(Pool {
            workers: configured_threads() - 1,
            busy: AtomicBool::new(false),
            state: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            sleepers: AtomicUsize::new(0),
            sleep: Mutex::new(()),
            wake: Condvar::new(),
        }));
        // A worker that fails to start never attaches: its share falls to the others.
        for i in 0..p.workers {
            let _ = std::thread::Builder::new()
                .name(format!("mlfw-worker-{i}"))
                .spawn(move || p.worker());
        }
        p
    })
}

impl Pool {
    fn worker(&self) {
        IN_TASK.with(|t| t.set(true));
        let mut seen = self.state.load(Ordering::Acquire) >> 32;
        let mut idle = Instant::now();
        let mut polls = 0u32;
        loop {
            let s = self.state.load(Ordering::Acquire);
            if s & OPEN != 0 && s >> 32 != seen {
                if self
                    .state
                    .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    seen = s >> 32;
                    // SAFETY: attached to an open job, whose caller does not return (and so
                    // keeps `job` alive) until every attached worker has detached below.
                    let job = unsafe { &*self.job.load(Ordering::Acquire) };
                    job.work();
                    self.state.fetch_sub(1, Ordering::Release);
                    idle = Instant::now();
                }
                continue;
            }
            polls = polls.wrapping_add(1);
            if !polls.is_multiple_of(64) || idle.elapsed() < SPIN {
                std::hint::spin_loop();
                continue;
            }
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            let mut g = self.sleep.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                let s = self.state.load(Ordering::SeqCst);
                if s & OPEN != 0 && s >> 32 != seen {
                    break;
                }
                g = self.wake.wait(g).unwrap_or_else(PoisonError::into_inner);
            }
            drop(g);
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            idle = Instant::now();
        }
    }
}

/// Threads the kernels use, the calling thread included.
pub fn num_threads() -> usize {
    pool().workers + 1
}

fn configured_threads() -> usize {
    ["MLFW_NUM_THREADS", "RAYON_NUM_THREADS"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .min(256)
}

/// Calls `f(i)` for every `i` in `0..tasks`, spread over the pool; returns when all are done.
/// A panic in any task is rethrown here once the others have stopped.
pub fn run(tasks: usize, f: impl Fn(usize) + Sync) {
    let p = pool();
    let nested = IN_TASK.with(|t| t.get());
    if tasks <= 1 || p.workers == 0 || nested || p.busy.swap(true, Ordering::Acquire) {
        (0..tasks).for_each(f);
        return;
    }
    let job = Job {
        f: &f,
        tasks,
        next: AtomicUsize::new(0),
        panic: Mutex::new(None),
    };
    // SAFETY (lifetime): the pointer is only dereferenced by workers attached while the job
    // is open, and this function waits for all of them to detach before `job` goes away.
    p.job.store(
        &job as *const Job<'_> as *mut Job<'static>,
        Ordering::Release,
    );
    let epoch = ((p.state.load(Ordering::Relaxed) >> 32) + 1) & 0xFFFF_FFFF;
    p.state.store(epoch << 32 | OPEN, Ordering::SeqCst);
    if p.sleepers.load(Ordering::SeqCst) > 0 {
        let _g = p.sleep.lock().unwrap_or_else(PoisonError::into_inner);
        p.wake.notify_all();
    }
    IN_TASK.with(|t| t.set(true));
    job.work();
    IN_TASK.with(|t| t.set(false));
    p.state.fetch_and(!OPEN, Ordering::AcqRel);
    while p.state.load(Ordering::Acquire) & ATTACHED != 0 {
        std::hint::spin_loop();
    }
    p.busy.store(false, Ordering::Release);
    let panic = job
        .panic
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(panic) = panic {
        resume_unwind(panic);
    }
}

/// A raw pointer that tasks may share; each task touches a disjoint range.
struct SharedPtr<T>(*mut T);
// SAFETY: only used to hand disjoint sub-slices of one `&mut [T]` to tasks.
unsafe impl<T: Send> Sync for SharedPtr<T> {}
impl<T> SharedPtr<T> {
    fn get(&self) -> *mut T {
        self.0
    }
}

/// Splits `data` into chunks of `chunk` elements (the last may be shorter) and calls
/// `f(chunk index, chunk)` for each, spread over the pool.
pub fn for_each_chunk_mut<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let len = data.len();
    let chunk = chunk.max(1);
    let base = SharedPtr(data.as_mut_ptr());
    run(len.div_ceil(chunk), |i| {
        let start = i * chunk;
        let end = (start + chunk).min(len);
        // SAFETY: chunk `i` is `start..end` of `data`, disjoint from every other chunk, and
        // `data` stays mutably borrowed until `run` returns.
        let s = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
        f(i, s)
    });
}

/// Calls `f(r, row r)` for every row of `row` elements of `data`, over the pool, rows grouped
/// into tasks of at least `min` elements (all on this thread when `data` is below `2 * min`).
pub fn for_each_row_mut<T: Send>(
    data: &mut [T],
    row: usize,
    min: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if row == 0 {
        return;
    }
    let per = chunk_len(data.len() / row, min.div_ceil(row));
    for_each_chunk_mut(data, per * row, |c, chunk| {
        for (k, r) in chunk.chunks_mut(row).enumerate() {
            f(c * per + k, r);
        }
    });
}

/// Like [`for_each_chunk_mut`] over two slices at once, `a` in chunks of `ca` and `b` in
/// chunks of `cb` elements; both must split into the same number of chunks.
pub fn for_each_chunk_pair_mut<A: Send, B: Send>(
    a: &mut [A],
    ca: usize,
    b: &mut [B],
    cb: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync,
) {
    let (la, lb, ca, cb) = (a.len(), b.len(), ca.max(1), cb.max(1));
    assert_eq!(la.div_ceil(ca), lb.div_ceil(cb), "chunk counts differ");
    let (pa, pb) = (SharedPtr(a.as_mut_ptr()), SharedPtr(b.as_mut_ptr()));
    run(la.div_ceil(ca), |i| {
        let (sa, sb) = (i * ca, i * cb);
        // SAFETY: as in `for_each_chunk_mut`, for each slice separately.
        let x = unsafe { std::slice::from_raw_parts_mut(pa.get().add(sa), (sa + ca).min(la) - sa) };
        let y = unsafe { std::slice::from_raw_parts_mut(pb.get().add(sb), (sb + cb).min(lb) - sb) };
        f(i, x, y)
    });
}

/// Builds a vec of `len` elements over the pool: `f(start, chunk)` writes the elements
/// `start..start + chunk.len()`, in chunks of `chunk` elements. No zero-fill first.
///
/// # Safety
/// `f` must initialise every element of every chunk it is given.
pub(crate) unsafe fn build_vec<U: Send>(
    len: usize,
    chunk: usize,
    f: impl Fn(usize, &mut [std::mem::MaybeUninit<U>]) + Sync,
) -> Vec<U> {
    let mut v = Vec::with_capacity(len);
    let chunk = chunk.max(1);
    for_each_chunk_mut(&mut v.spare_capacity_mut()[..len], chunk, |i, c| {
        f(i * chunk, c)
    });
    // SAFETY: every chunk was initialised (the caller's promise); on a panic `run` rethrows
    // before this line and the vec is dropped empty.
    unsafe { v.set_len(len) };
    v
}

/// Computes `f(i)` for `i` in `0..tasks` over the pool and returns the results in order.
pub fn map<R: Send>(tasks: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let mut out: Vec<Option<R>> = (0..tasks).map(|_| None).collect();
    for_each_chunk_mut(&mut out, 1, |i, slot| slot[0] = Some(f(i)));
    out.into_iter().flatten().collect()
}

/// Elements above which an elementwise CPU kernel (map, reduction, gather, pooling) is split
/// across threads.
pub(crate) const PAR_THRESHOLD: usize = 1 << 15;

/// Chunk length that splits `len` items into about four tasks per thread, each of at least
/// `min` items (one task when `len < 2 * min`).
pub fn chunk_len(len: usize, min: usize) -> usize {
    let threads = num_threads();
    if threads == 1 || len < 2 * min.max(1) {
        return len.max(1);
    }
    len.div_ceil(threads * 4).max(min).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once() {
        for tasks in [0, 1, 2, 3, 17, 1000] {
            let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
            run(tasks, |i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn chunks_cover_the_slice() {
        let mut v = vec![0usize; 1003];
        for_each_chunk_mut(&mut v, 10, |i, c| c.iter_mut().for_each(|x| *x += i + 1));
        assert!(v.iter().enumerate().all(|(k, &x)| x == k / 10 + 1));
        let (mut a, mut b) = (vec![0u8; 30], vec![0u32; 15]);
        for_each_chunk_pair_mut(&mut a, 4, &mut b, 2, |i, x, y| {
            x.fill(i as u8);
            y.fill(i as u32);
        });
        assert_eq!(a[29], 7);
        assert_eq!(b[14], 7);
    }

    #[test]
    fn nested_and_concurrent_calls_complete() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        run(8, |_| {
                            run(3, |_| {
                                total.fetch_add(1, Ordering::Relaxed);
                            })
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 200 * 8 * 3);
        assert_eq!(map(5, |i| i * i), vec![0, 1, 4, 9, 16]);
    }

    #[test]
    fn a_panicking_task_is_rethrown_and_the_pool_recovers() {
        let r = catch_unwind(|| run(16, |i| assert!(i != 7, "task seven")));
        assert!(r.is_err());
        let n = AtomicUsize::new(0);
        run(16, |_| {
            n.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(n.load(Ordering::Relaxed), 16);
    }
}
