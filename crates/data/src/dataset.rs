//! The `Dataset` trait and its `Sample`.

use std::sync::Arc;

use crate::collate::{collate, Batch};
use crate::error::Result;
use crate::info::DatasetInfo;
use crate::rng::sample_seed;
pub use crate::sample::Sample;

/// A finite, indexable collection of samples that worker threads can share.
///
/// Implement [`len`](Dataset::len) and [`get`](Dataset::get); override
/// [`get_seeded`](Dataset::get_seeded) when samples use randomness (augmentation), so that the
/// [`crate::DataLoader`] can make every epoch reproducible, and [`get_batch`](Dataset::get_batch)
/// when a whole batch can be built faster than sample by sample.
pub trait Dataset: Send + Sync {
    /// Number of samples.
    fn len(&self) -> usize;

    /// Whether the dataset has no sample.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sample `index`. Errors when `index >= len()` or the sample cannot be built.
    fn get(&self, index: usize) -> Result<Sample>;

    /// Sample `index`, drawing any randomness (augmentation) from `seed` only.
    ///
    /// The loader passes [`crate::rng::sample_seed`]`(seed, epoch, index)`, so results do not
    /// depend on the batch size or number of workers. Defaults to [`get`](Dataset::get).
    fn get_seeded(&self, index: usize, seed: u64) -> Result<Sample> {
        let _ = seed;
        self.get(index)
    }

    /// The batch of samples `indices` (with augmentation seeds `seeds`, same length), collated.
    ///
    /// Defaults to `get_seeded` on each index, then [`collate`].
    fn get_batch(&self, indices: &[usize], seeds: &[u64]) -> Result<Batch> {
        let samples = indices
            .iter()
            .zip(seeds)
            .map(|(&i, &s)| self.get_seeded(i, s))
            .collect::<Result<Vec<_>>>()?;
        collate(samples, indices.to_vec())
    }

    /// Metadata (classes, image shape, normalization), when the dataset knows it.
    fn info(&self) -> Option<DatasetInfo> {
        None
    }
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        (**self).get(index)
    }
    fn get_seeded(&self, index: usize, seed: u64) -> Result<Sample> {
        (**self).get_seeded(index, seed)
    }
    fn get_batch(&self, indices: &[usize], seeds: &[u64]) -> Result<Batch> {
        (**self).get_batch(indices, seeds)
    }
    fn info(&self) -> Option<DatasetInfo> {
        (**self).info()
    }
}

impl<D: Dataset + ?Sized> Dataset for Box<D> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn get(&self, index: usize) -> Result<Sample> {
        (**self).get(index)
    }
    fn get_seeded(&self, index: usize, seed: u64) -> Result<Sample> {
        (**self).get_seeded(index, seed)
    }
    fn get_batch(&self, indices: &[usize], seeds: &[u64]) -> Result<Batch> {
        (**self).get_batch(indices, seeds)
    }
    fn info(&self) -> Option<DatasetInfo> {
        (**self).info()
    }
}

/// The seed [`Dataset::get`] uses for sample `index` outside a loader (loader seed 0, epoch 0).
pub fn default_seed(index: usize) -> u64 {
    sample_seed(0, 0, index)
}
