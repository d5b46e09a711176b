//! `DataLoader`: batches, seeded per-epoch shuffling, and background worker threads.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mlfw_core::{Device, Staging};

use crate::collate::Batch;
use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::prefetch::{Job, Prefetcher};
use crate::rng::sample_seed;
use crate::sampler::{epoch_order, num_batches, shard_order};

/// Iterates a dataset in batches, like PyTorch's `DataLoader`.
///
/// ```no_run
/// # use mlfw_data::{DataLoader, MnistMini};
/// let loader = DataLoader::new(MnistMini::new(true)?)
///     .batch_size(64)
///     .shuffle(42)
///     .drop_last(true)
///     .num_workers(2);
/// for epoch in 0..3 {
///     for batch in loader.iter_epoch(epoch) {
///         let batch = batch?; // images [64, 1, 28, 28] f32, labels [64] i64
///     }
/// }
/// # Ok::<(), mlfw_data::Error>(())
/// ```
///
/// Epoch `e` visits the samples in an order derived from `(seed, e)` only, and each sample's
/// augmentation seed from `(seed, e, index)`, so any epoch can be replayed exactly, whatever the
/// number of workers. With `num_workers(n > 0)`, `n` threads call the dataset's `get` (and so
/// its transform) and keep up to `prefetch` batches each queued ahead; batches still arrive in
/// order. With 0 workers (the default) everything runs in the caller.
///
/// [`to_device`](Self::to_device) delivers batches on a device: the host→device copy runs in
/// the worker threads, overlapped with the consumer's work on the previous batch (on CUDA
/// through page-locked memory and a copy stream of each worker's own).
pub struct DataLoader {
    dataset: Arc<dyn Dataset>,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
    num_workers: usize,
    prefetch: usize,
    epoch: AtomicU64,
    /// `(rank, world)`: iterate only this replica's shard of each epoch.
    shard: Option<(usize, usize)>,
    /// Where batches are delivered.
    device: Device,
}

impl std::fmt::Debug for DataLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataLoader")
            .field("len", &self.dataset.len())
            .field("batch_size", &self.batch_size)
            .field("shuffle", &self.shuffle)
            .field("seed", &self.seed)
            .field("drop_last", &self.drop_last)
            .field("num_workers", &self.num_workers)
            .field("epoch", &self.epoch())
            .field("device", &self.device)
            .finish()
    }
}

impl DataLoader {
    /// A loader over `dataset`: batch size 1, no shuffling, seed 0, no workers.
    pub fn new(dataset: impl Dataset + 'static) -> Self {
        Self::from_arc(Arc::new(dataset))
    }

    /// A loader over a dataset that is already shared.
    pub fn from_arc(dataset: Arc<dyn Dataset>) -> Self {
        DataLoader {
            dataset,
            batch_size: 1,
            shuffle: false,
            seed: 0,
            drop_last: false,
            num_workers: 0,
            prefetch: 2,
            epoch: AtomicU64::new(0),
            shard: None,
            device: Device::Cpu,
        }
    }

    /// Samples per batch (0 makes iteration yield an error).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Shuffles every epoch with a permutation derived from `(seed, epoch)`; also sets the seed
    /// of augmentation.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle = true;
        self.seed = seed;
        self
    }

    /// Sets the seed of augmentation without shuffling.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Drops the last batch when it is smaller than `batch_size`.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Number of background worker threads (0: load in the caller's thread).
    pub fn num_workers(mut self, num_workers: usize) -> Self {
        self.num_workers = num_workers;
        self
    }

    /// Batches each worker keeps ready ahead of the consumer (default 2, at least 1).
    pub fn prefetch(mut self, batches_per_worker: usize) -> Self {
        self.prefetch = batches_per_worker.max(1);
        self
    }

    /// Delivers every batch (images and labels) on `device` (default: the CPU). The copy is
    /// made where the batch is built: in the worker threads when there are any (else in the
    /// consumer's), each through a staging area of its own from the device's backend
    /// ([`mlfw_core::Backend::staging`]), kept for the thread's batches of an epoch. On CUDA
    /// that is PyTorch's `pin_memory` + `non_blocking` copy: the batch is written into a reused
    /// page-locked buffer and copied asynchronously on the worker's own stream, which the
    /// device's stream waits for (an event) before any later op — so the copy overlaps with
    /// the compute queued before it. That CUDA path compiles and is tested to give the same
    /// tensors as [`Tensor::to_device`](mlfw_core::Tensor::to_device), but has not yet been run
    /// or timed on a GPU. An unavailable device comes out as an error in place of each batch.
    pub fn to_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// The device batches are delivered on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Sets the epoch the next [`iter`](Self::iter) runs (to resume training mid-way).
    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::SeqCst);
    }

    /// The epoch the next [`iter`](Self::iter) runs.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Iterates only shard `rank` of `world` of each epoch's order (PyTorch's
    /// `DistributedSampler`: the shuffled order padded to a multiple of `world`, every
    /// `world`-th index from `rank`), for data-parallel training. Errors: `rank >= world` or
    /// `world == 0`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `world` is 0 or `rank >= world`.
    pub fn shard(mut self, rank: usize, world: usize) -> Result<Self> {
        if world == 0 || rank >= world {
            return Err(Error::invalid(format!(
                "DataLoader shard: rank {rank} is not below the world size {world}"
            )));
        }
        self.shard = (world > 1).then_some((rank, world));
        Ok(self)
    }

    /// Samples this loader visits per epoch (its shard's size when sharded).
    fn samples(&self) -> usize {
        let n = self.dataset.len();
        match self.shard {
            Some((_, w)) if n > 0 => n.div_ceil(w),
            _ => n,
        }
    }

    /// Number of batches per epoch.
    pub fn len(&self) -> usize {
        num_batches(self.samples(), self.batch_size, self.drop_last)
    }

    /// Whether an epoch yields no batch.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// Iterates the current epoch (see [`epoch`](Self::epoch)), then advances the epoch counter.
    pub fn iter(&self) -> Batches {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst);
        self.iter_epoch(epoch)
    }

    /// Iterates epoch `epoch` without touching the epoch counter.
    ///
    /// Yields `Result<Batch>`: a dataset error comes out in place of its batch and iteration
    /// goes on. A batch size of 0 or a failure to start the workers yields one error.
    pub fn iter_epoch(&self, epoch: u64) -> Batches {
        if self.batch_size == 0 {
            return Batches::failed(Error::invalid("DataLoader batch_size must be at least 1"));
        }
        let len = self.dataset.len();
        let count = self.len();
        let order = epoch_order(len, self.shuffle.then_some(self.seed), epoch);
        let order = Arc::new(match self.shard {
            Some((rank, world)) => shard_order(&order, rank, world),
            None => order,
        });
        let (dataset, bs, seed) = (Arc::clone(&self.dataset), self.batch_size, self.seed);
        let device = self.device;
        let job: Job<Batch> = Arc::new(move |j| {
            let indices = &order[j * bs..((j + 1) * bs).min(order.len())];
            let seeds: Vec<u64> = indices
                .iter()
                .map(|&i| sample_seed(seed, epoch, i))
                .collect();
            let batch = dataset.get_batch(indices, &seeds)?;
            match device {
                Device::Cpu => Ok(batch),
                d => with_staging(d, |s| {
                    Ok(Batch {
                        images: batch.images.to_device_staged(s)?,
                        labels: batch.labels.to_device_staged(s)?,
                        indices: batch.indices,
                    })
                }),
            }
        });
        match Prefetcher::new(count, self.num_workers, self.prefetch, job) {
            Ok(p) => Batches {
                inner: Some(p),
                error: None,
            },
            Err(e) => Batches::failed(e),
        }
    }
}

thread_local! {
    /// This thread's staging area for uploads to one device, reused across its batches.
    static STAGING: RefCell<Option<Box<dyn Staging>>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's staging area for `device` (created on first use, replaced when
/// the device changes).
fn with_staging<R>(device: Device, f: impl FnOnce(&mut dyn Staging) -> Result<R>) -> Result<R> {
    STAGING.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|s| s.device() != device) {
            *slot = None;
            *slot = Some(device.backend()?.staging()?);
        }
        match slot.as_deref_mut() {
            Some(s) => f(s),
            None => Err(Error::invalid("no staging area")),
        }
    })
}

impl IntoIterator for &DataLoader {
    type Item = Result<Batch>;
    type IntoIter = Batches;

    /// Same as [`DataLoader::iter`].
    fn into_iter(self) -> Batches {
        self.iter()
    }
}

/// The batches of one epoch, in order. Dropping it stops the workers.
pub struct Batches {
    inner: Option<Prefetcher<Batch>>,
    error: Option<Error>,
}

impl Batches {
    fn failed(e: Error) -> Self {
        Batches {
            inner: None,
            error: Some(e),
        }
    }
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        self.inner.as_mut()?.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.inner.as_ref().map_or(0, |p| p.remaining()) + self.error.is_some() as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Batches {}
