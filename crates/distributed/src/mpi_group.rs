//! The MPI backend (rsmpi over Open MPI or MPICH). One communication thread initialises MPI
//! (asking for `MPI_THREAD_SERIALIZED`), finalises it, and makes the large blocking calls that
//! the other threads hand it; f32 sums below [`DIRECT_BYTES`] are started by the calling thread
//! itself as a non-blocking `MPI_Iallreduce` and completed by polling `MPI_Test`, which saves the
//! ~5 µs hand-off to another thread that a small message would otherwise pay (measured: 1 KB
//! took 5.5 µs against `MPI_Allreduce`'s 0.3 µs). One lock serialises every call of the process,
//! so collectives from the training thread and from DDP's reducer run in the order they are made.
//! A collective that does not finish within the timeout (`MLFW_DIST_TIMEOUT_S`, default 600 s)
//! is an error naming this rank and the collective: a rank that died leaves the others waiting,
//! and `mpirun` also ends the job and names it.

use crate::group::ProcessGroup;
use mlfw_core::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::request::StaticScope;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// f32 sums up to this many bytes are made by the calling thread (when MPI grants at least
/// `MPI_THREAD_SERIALIZED`; `MLFW_MPI_DIRECT=0` turns it off); larger ones by the
/// communication thread, whose blocking `MPI_Allreduce` uses the MPI library's tuned
/// algorithms (Open MPI 4.1's non-blocking one took 3× as long at 256 KB).
pub const DIRECT_BYTES: usize = 64 << 10;

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
    /// MPI granted `MPI_THREAD_SERIALIZED` or more: small sums may run on the caller's thread.
    direct: bool,
}

impl MpiGroup {
    /// Initialises MPI on a communication thread and joins `COMM_WORLD`.
    ///
    /// Errors: MPI already initialised in this process, or initialisation failing.
    pub fn init() -> Result<Self> {
        let timeout = std::env::var("MLFW_DIST_TIMEOUT_S")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(Duration::from_secs(600), Duration::from_secs);
        let (tx, rx) = channel::<Req>();
        let (ready_tx, ready_rx) = channel::<std::result::Result<(usize, usize, bool), String>>();
        let thread = std::thread::Builder::new()
            .name("mlfw-mpi".into())
            .spawn(move || serve(rx, ready_tx))
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
        })
    }

    /// The error of a collective `what` that did not finish within the timeout.
    fn timed_out(&self, what: &str) -> Error {
        Error::msg(format!(
            "rank {} of {}: MPI {what} did not finish within {} s; another rank has probably \
             died or stopped calling collectives (MLFW_DIST_TIMEOUT_S sets the limit)",
            self.rank,
            self.world,
            self.timeout.as_secs()
        ))
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

    /// The sum of `buf` over all ranks, started and completed on this thread
    /// (`MPI_Iallreduce`, then `MPI_Test` until done or the timeout), under the same lock.
    fn sum_direct(&self, buf: Vec<f32>) -> Result<Vec<f32>> {
        let _serial = self
            .tx
            .lock()
            .map_err(|_| Error::msg("MPI: internal lock poisoned"))?;
        // The buffers are handed to MPI for as long as the request may run: leaked here and
        // taken back once it completed (on a timeout they stay leaked, as MPI may still
        // write into them).
        let n = buf.len();
        let send: &'static mut [f32] = Box::leak(buf.into_boxed_slice());
        let recv: &'static mut [f32] = Box::leak(vec![0f32; n].into_boxed_slice());
        let (send_ptr, recv_ptr) = (send as *mut [f32], recv as *mut [f32]);
        let world = SimpleCommunicator::world();
        let mut req =
            world.immediate_all_reduce_into(StaticScope, &*send, recv, SystemOperation::sum());
        let start = Instant::now();
        let mut polls = 0u32;
        loop {
            match req.test() {
                Ok(_) => break,
                Err(r) => req = r,
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(4096) && start.elapsed() > self.timeout {
                std::mem::forget(req);
                return Err(self.timed_out("all_reduce"));
            }
            std::hint::spin_loop();
        }
        // SAFETY: the request completed, so MPI no longer uses either buffer, and both came
        // from `Box::leak` above.
        let (_send, recv) = unsafe { (Box::from_raw(send_ptr), Box::from_raw(recv_ptr)) };
        Ok(recv.into_vec())
    }
}

fn serve(rx: Receiver<Req>, ready: Sender<std::result::Result<(usize, usize, bool), String>>) {
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
    while let Ok(req) = rx.recv() {
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
        if self.direct && buf.len() * 4 <= DIRECT_BYTES {
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
