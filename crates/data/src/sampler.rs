//! The order in which an epoch visits a dataset, and how it splits into batches.

use crate::rng::{epoch_seed, Rng};

/// The dataset indices epoch `epoch` visits: `0..len` in order, or, with `shuffle = Some(seed)`,
/// a permutation derived from `(seed, epoch)` alone (so an epoch can be replayed exactly).
pub fn epoch_order(len: usize, shuffle: Option<u64>, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    if let Some(seed) = shuffle {
        Rng::new(epoch_seed(seed, epoch)).shuffle(&mut order);
    }
    order
}

/// Number of batches of `batch_size` from `len` samples; the short last batch counts unless
/// `drop_last`. Returns 0 for `batch_size == 0`.
pub fn num_batches(len: usize, batch_size: usize, drop_last: bool) -> usize {
    if batch_size == 0 {
        0
    } else if drop_last {
        len / batch_size
    } else {
        len.div_ceil(batch_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_without_shuffle() {
        assert_eq!(epoch_order(4, None, 9), vec![0, 1, 2, 3]);
    }

    #[test]
    fn shuffle_depends_on_seed_and_epoch_only() {
        let a = epoch_order(50, Some(1), 0);
        assert_eq!(a, epoch_order(50, Some(1), 0));
        assert_ne!(a, epoch_order(50, Some(1), 1));
        assert_ne!(a, epoch_order(50, Some(2), 0));
        let mut s = a.clone();
        s.sort_unstable();
        assert_eq!(s, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn batch_counts() {
        assert_eq!(num_batches(10, 3, false), 4);
        assert_eq!(num_batches(10, 3, true), 3);
        assert_eq!(num_batches(9, 3, true), 3);
        assert_eq!(num_batches(0, 3, false), 0);
        assert_eq!(num_batches(2, 3, true), 0);
        assert_eq!(num_batches(5, 0, false), 0);
    }
}
