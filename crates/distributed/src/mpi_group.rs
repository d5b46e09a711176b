//! The MPI backend (rsmpi over Open MPI or MPICH). A communication thread initialises MPI
//! (asking for `MPI_THREAD_SERIALIZED`), finalises it, makes the rare collectives (broadcast,
//! barrier, f64 sums, gathers) that the other threads hand it, and watches the f32 sums, which
//! the calling thread makes itself with a blocking `MPI_Allreduce` into a reused buffer: no
//! hand-off to another thread (which cost ~5 µs per call and 5–15% at 1–4 MB) and no fresh
//! pages per call. One lock serialises every MPI call of the process, so collectives from the
//! training thread and from DDP's reducer run in the order they are made.
//!
//! Timeouts (`MLFW_DIST_TIMEOUT_S`, default 600 s): a handed-off collective that does not finish
//! in time is an error naming this rank and the collective. A blocking f32 sum cannot be
//! interrupted, so the communication thread acts as a watchdog, like PyTorch's NCCL watchdog:
//! it prints the same error and ends the process (exit status 1), and `mpirun` then ends the
//! job. A rank that dies is also noticed by `mpirun`, which ends the job and names it.
//! `MLFW_MPI_DIRECT=0` (or MPI granting less than `MPI_THREAD_SERIALIZED`) hands the f32 sums
//! to the communication thread too.

use crate::group::ProcessGroup;
use mlfw_core::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

enum Req {
    SumF32(Vec<f32>, Sender<Vec<f32>>),
    SumF64(Vec<f64>, Sender<Vec<f64>>),
    Bcast(Vec<f32>, usize, Sender<Vec<f32>>),
    Barrier(Sender<()>),
    Gather(f64, Sender<Vec<f64>>),
    Shutdown,
}

/// MPI's `COMM_WORLD` as a [`ProcessGroup`].
pub struct MpiGroup {
    rank: usize,
    world: usize,
    tx: Mutex<Sender<Req>>,
    thread: Option<JoinHandle<()>>,
    timeout: Duration,
    /// MPI granted `MPI_THREAD_SERIALIZED` or more: f32 sums run on the caller's thread.
    direct: bool,
    /// The receive buffer of the next direct f32 sum (the last caller's input).
    spare: Mutex<Vec<f32>>,
    /// When the direct sum in flight started (ms since `watch.base`, plus 1), or 0.
    watch: Arc<Watch>,
}

/// What the watchdog reads: whether a blocking call is in flight, and since when.
struct Watch {
    base: Instant,
    since_ms: AtomicU64,
}

impl MpiGroup {
    /// Initialises MPI on a communication thread and joins `COMM_WORLD`.
    ///
    /// # Errors
    /// MPI already initialised in this process, or initialisation failing.
    pub fn init() -> Result<Self> {
        let timeout = std::env::var("MLFW_DIST_TIMEOUT_S")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::from_secs(600), Duration::from_secs);
        let (tx, rx) = channel::<Req>();
        let (ready_tx, ready_rx) = channel::<std::result::Result<(usize, usize, bool), String>>();
        let watch = Arc::new(Watch {
            base: Instant::now(),
            since_ms: AtomicU64::new(0),
        });
        let watched = (Arc::clone(&watch), timeout);
        let thread = std::thread::Builder::new()
            .name("mlfw-mpi".into())
            .spawn(move || serve(rx, ready_tx, watched))
            .map_err(|e| Error::msg(format!("MPI: cannot start the communication thread: {e}")))?;
        let (rank, world, direct) = ready_rx
            .recv()
            .map_err(|_| Error::msg("MPI: the communication thread died during MPI_Init"))?
            .map_err(Error::msg)?;
        Ok(MpiGroup {
            rank,
            world,
            tx: Mutex::new(tx),
            thread: Some(thread),
            timeout,
            direct,
            spare: Mutex::new(Vec::new()),
            watch,
        })
    }

    /// The error of a collective `what` that did not finish within the timeout.
    fn timed_out(&self, what: &str) -> Error {
        Error::msg(timeout_message(self.rank, self.world, self.timeout, what))
    }

    /// Hands a request to the communication thread and waits for its answer, holding the
    /// lock that serialises every MPI call of this process.
    fn call<T>(&self, what: &str, make: impl FnOnce(Sender<T>) -> Req) -> Result<T> {
        let (tx, rx) = channel();
        let sender = self
            .tx
            .lock()
            .map_err(|_| Error::msg("MPI: internal lock poisoned"))?;
        sender
            .send(make(tx))
            .map_err(|_| Error::msg("MPI: the communication thread has stopped"))?;
        rx.recv_timeout(self.timeout)
            .map_err(|_| self.timed_out(what))
    }

    /// The sum of `buf` over all ranks by a blocking `MPI_Allreduce` on this thread, under
    /// the lock, into the previous call's buffer; the watchdog ends the process if it does not
    /// return within the timeout.
    fn sum_direct(&self, buf: Vec<f32>) -> Result<Vec<f32>> {
        let _serial = self
            .tx
            .lock()
            .map_err(|_| Error::msg("MPI: internal lock poisoned"))?;
        let mut spare = self
            .spare
            .lock()
            .map_err(|_| Error::msg("MPI: internal lock poisoned"))?;
        let mut out = std::mem::take(&mut *spare);
        out.resize(buf.len(), 0.0);
        let started = self.watch.base.elapsed().as_millis() as u64 + 1;
        self.watch.since_ms.store(started, Ordering::SeqCst);
        SimpleCommunicator::world().all_reduce_into(&buf[..], &mut out[..], SystemOperation::sum());
        self.watch.since_ms.store(0, Ordering::SeqCst);
        *spare = buf;
        Ok(out)
    }
}

/// What a collective `what` of rank `rank` (of `world`) that outlived `timeout` is told.
fn timeout_message(rank: usize, world: usize, timeout: Duration, what: &str) -> String {
    format!(
        "rank {rank} of {world}: MPI {what} did not finish within {} s; another rank has \
         probably died or stopped calling collectives (MLFW_DIST_TIMEOUT_S sets the limit)",
        timeout.as_secs()
    )
}

fn serve(
    rx: Receiver<Req>,
    ready: Sender<std::result::Result<(usize, usize, bool), String>>,
    (watch, timeout): (Arc<Watch>, Duration),
) {
    let Some((universe, granted)) = mpi::initialize_with_threading(mpi::Threading::Serialized)
    else {
        let _ = ready.send(Err("MPI: already initialised in this process".into()));
        return;
    };
    let direct = matches!(
        granted,
        mpi::Threading::Serialized | mpi::Threading::Multiple
    ) && std::env::var("MLFW_MPI_DIRECT").as_deref() != Ok("0");
    let world = universe.world();
    let _ = ready.send(Ok((world.rank() as usize, world.size() as usize, direct)));
    // The receive buffer of the last f32 sum is kept and reused: a fresh one per call would
    // cost a page fault per 4 KiB (tens of ms for 64 MB); the caller's buffer becomes the next.
    let mut spare: Vec<f32> = Vec::new();
    let tick = Duration::from_millis(200).min(timeout);
    loop {
        let req = match rx.recv_timeout(tick) {
            Ok(req) => req,
            Err(RecvTimeoutError::Timeout) => {
                let since = watch.since_ms.load(Ordering::SeqCst);
                let now = watch.base.elapsed().as_millis() as u64 + 1;
                if since != 0 && now.saturating_sub(since) > timeout.as_millis() as u64 {
                    let (rank, size) = (world.rank() as usize, world.size() as usize);
                    let msg = timeout_message(rank, size, timeout, "all_reduce");
                    eprintln!("error: {msg}; ending this process");
                    std::process::exit(1);
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match req {
            Req::SumF32(buf, back) => {
                let mut out = std::mem::take(&mut spare);
                out.resize(buf.len(), 0.0);
                world.all_reduce_into(&buf[..], &mut out[..], SystemOperation::sum());
                spare = buf;
                let _ = back.send(out);
            }
            Req::SumF64(buf, back) => {
                let mut out = vec![0f64; buf.len()];
                world.all_reduce_into(&buf[..], &mut out[..], SystemOperation::sum());
                let _ = back.send(out);
            }
            Req::Bcast(mut buf, root, back) => {
                world
                    .process_at_rank(root as i32)
                    .broadcast_into(&mut buf[..]);
                let _ = back.send(buf);
            }
            Req::Barrier(back) => {
                world.barrier();
                let _ = back.send(());
            }
            Req::Gather(v, back) => {
                let mut out = vec![0f64; world.size() as usize];
                world.all_gather_into(&v, &mut out[..]);
                let _ = back.send(out);
            }
            Req::Shutdown => break,
        }
    }
    // `universe` drops here: MPI_Finalize on the thread that initialised MPI.
}

impl Drop for MpiGroup {
    fn drop(&mut self) {
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send(Req::Shutdown);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl ProcessGroup for MpiGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world_size(&self) -> usize {
        self.world
    }
    fn backend(&self) -> &'static str {
        "mpi"
    }
    fn all_reduce_sum(&self, buf: Vec<f32>) -> Result<Vec<f32>> {
        if self.direct {
            return self.sum_direct(buf);
        }
        self.call("all_reduce", |tx| Req::SumF32(buf, tx))
    }
    fn all_reduce_sum_f64(&self, buf: Vec<f64>) -> Result<Vec<f64>> {
        self.call("all_reduce", |tx| Req::SumF64(buf, tx))
    }
    fn broadcast(&self, buf: Vec<f32>, root: usize) -> Result<Vec<f32>> {
        if root >= self.world {
            return Err(Error::msg(format!(
                "broadcast: root {root} is not below the world size {}",
                self.world
            )));
        }
        self.call("broadcast", |tx| Req::Bcast(buf, root, tx))
    }
    fn barrier(&self) -> Result<()> {
        self.call("barrier", Req::Barrier)
    }
    fn all_gather_f64(&self, v: f64) -> Result<Vec<f64>> {
        self.call("all_gather", |tx| Req::Gather(v, tx))
    }
}
