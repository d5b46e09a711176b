//! Runs numbered jobs on background threads and hands their results back in order.
//!
//! Worker `w` of `W` runs jobs `w, w + W, w + 2W, ...` and pushes each result into its own
//! bounded queue; the consumer reads job `j` from queue `j % W`. Results therefore come back in
//! job order without a reorder buffer, and each worker is at most `depth` results ahead.
//! Dropping the [`Prefetcher`] closes the queues, so workers stop after their current job.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::error::{Error, Result};

/// A job: computes result number `j`.
pub(crate) type Job<T> = Arc<dyn Fn(usize) -> Result<T> + Send + Sync>;

/// Yields `job(0), job(1), ..., job(n - 1)` in order, computed inline or on worker threads.
pub(crate) struct Prefetcher<T: Send + 'static> {
    job: Job<T>,
    next: usize,
    count: usize,
    receivers: Vec<Receiver<Result<T>>>,
    handles: Vec<JoinHandle<()>>,
    dead: bool,
}

impl<T: Send + 'static> Prefetcher<T> {
    /// Starts `workers` threads (none: jobs run in the caller of `next`), each keeping up to
    /// `depth` finished results queued.
    pub(crate) fn new(count: usize, workers: usize, depth: usize, job: Job<T>) -> Result<Self> {
        let mut p = Prefetcher {
            job,
            next: 0,
            count,
            receivers: Vec::new(),
            handles: Vec::new(),
            dead: false,
        };
        let workers = workers.min(count);
        for w in 0..workers {
            let (tx, rx) = sync_channel(depth.max(1));
            let job = Arc::clone(&p.job);
            let handle = std::thread::Builder::new()
                .name(format!("mlfw-data-worker-{w}"))
                .spawn(move || {
                    for j in (w..count).step_by(workers) {
                        let out = catch_unwind(AssertUnwindSafe(|| job(j))).unwrap_or_else(|p| {
                            Err(Error::invalid(format!(
                                "data worker {w} panicked while loading batch {j}: {}",
                                panic_message(&p)
                            )))
                        });
                        if tx.send(out).is_err() {
                            return; // the consumer went away
                        }
                    }
                })
                .map_err(|e| Error::io("spawning", "data worker thread", e))?;
            p.receivers.push(rx);
            p.handles.push(handle);
        }
        Ok(p)
    }

    /// Number of results not yet yielded.
    pub(crate) fn remaining(&self) -> usize {
        if self.dead {
            0
        } else {
            self.count - self.next
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

impl<T: Send + 'static> Iterator for Prefetcher<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        if self.dead || self.next >= self.count {
            return None;
        }
        let j = self.next;
        self.next += 1;
        if self.receivers.is_empty() {
            return Some((self.job)(j));
        }
        let w = j % self.receivers.len();
        match self.receivers[w].recv() {
            Ok(r) => Some(r),
            Err(_) => {
                self.dead = true;
                Some(Err(Error::invalid(format!(
                    "data worker {w} stopped unexpectedly before batch {j}"
                ))))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining(), Some(self.remaining()))
    }
}

impl<T: Send + 'static> Drop for Prefetcher<T> {
    fn drop(&mut self) {
        // Close the queues first so that workers blocked on a full queue wake up and exit.
        self.receivers.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn squares() -> Job<usize> {
        Arc::new(|j| Ok(j * j))
    }

    #[test]
    fn inline_and_workers_give_the_same_order() {
        let inline: Vec<usize> = Prefetcher::new(10, 0, 2, squares())
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        for workers in [1, 2, 3, 16] {
            let got: Vec<usize> = Prefetcher::new(10, workers, 2, squares())
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            assert_eq!(got, inline, "workers = {workers}");
        }
        assert_eq!(inline, (0..10).map(|j| j * j).collect::<Vec<_>>());
    }

    #[test]
    fn errors_pass_through_in_place() {
        let job: Job<usize> = Arc::new(|j| {
            if j == 3 {
                Err(Error::invalid("bad"))
            } else {
                Ok(j)
            }
        });
        let got: Vec<bool> = Prefetcher::new(6, 2, 1, job)
            .unwrap()
            .map(|r| r.is_ok())
            .collect();
        assert_eq!(got, [true, true, true, false, true, true]);
    }

    #[test]
    fn a_panicking_job_becomes_an_error() {
        let job: Job<usize> = Arc::new(|j| if j == 1 { panic!("boom") } else { Ok(j) });
        let got: Vec<Result<usize>> = Prefetcher::new(3, 2, 1, job).unwrap().collect();
        assert!(got[0].is_ok() && got[2].is_ok());
        let msg = got[1].as_ref().unwrap_err().to_string();
        assert!(msg.contains("panicked") && msg.contains("boom"), "{msg}");
    }

    #[test]
    fn dropping_early_stops_workers() {
        let mut p = Prefetcher::new(1000, 4, 2, squares()).unwrap();
        assert_eq!(p.next().unwrap().unwrap(), 0);
        drop(p); // must not hang
    }
}
