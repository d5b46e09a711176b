//! The MPI backend (rsmpi over Open MPI or MPICH). One communication thread owns MPI (it
//! initialises it with `MPI_THREAD_FUNNELED` and makes every call); the others hand it
//! requests, so collectives from the training thread and from DDP's reducer are serialised
//! in the order they are made. A collective that does not finish within the timeout
//! (`MLFW_DIST_TIMEOUT_S`, default 600 s) is an error naming this rank and the collective:
//! a rank that died leaves the others waiting, and `mpirun` also ends the job and names it.

use crate::group::ProcessGroup;
use mlfw_core::{Error, Result};
use mpi::collective::SystemOperation;
use mpi::traits::*;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

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
        let (ready_tx, ready_rx) = channel::<std::result::Result<(usize, usize), String>>();
        let thread = std::thread::Builder::new()
            .name("mlfw-mpi".into())
            .spawn(move || serve(rx, ready_tx))
            .map_err(|e| Error::msg(format!("MPI: cannot start the communication thread: {e}")))?;
        let (rank, world) = ready_rx
            .recv()
            .map_err(|_| Error::msg("MPI: the communication thread died during MPI_Init"))?
            .map_err(Error::msg)?;
        Ok(MpiGroup {
            rank,
            world,
            tx: Mutex::new(tx),
            thread: Some(thread),
            timeout,
        })
    }

    fn call<T>(&self, what: &str, make: impl FnOnce(Sender<T>) -> Req) -> Result<T> {
        let (tx, rx) = channel();
        self.tx
            .lock()
            .map_err(|_| Error::msg("MPI: internal lock poisoned"))?
            .send(make(tx))
            .map_err(|_| Error::msg("MPI: the communication thread has stopped"))?;
        rx.recv_timeout(self.timeout).map_err(|_| {
            Error::msg(format!(
                "rank {} of {}: MPI {what} did not finish within {} s; another rank has probably \
                 died or stopped calling collectives (MLFW_DIST_TIMEOUT_S sets the limit)",
                self.rank,
                self.world,
                self.timeout.as_secs()
            ))
        })
    }
}

fn serve(rx: Receiver<Req>, ready: Sender<std::result::Result<(usize, usize), String>>) {
    let Some((universe, _)) = mpi::initialize_with_threading(mpi::Threading::Funneled) else {
        let _ = ready.send(Err("MPI: already initialised in this process".into()));
        return;
    };
    let world = universe.world();
    let _ = ready.send(Ok((world.rank() as usize, world.size() as usize)));
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
