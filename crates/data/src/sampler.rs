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

/// Rank `rank`'s share of `order` among `world` replicas, as PyTorch's `DistributedSampler`
/// (drop_last = false): the order is padded by repeating its start to a multiple of `world`,
/// then rank r takes positions r, r + world, r + 2·world, … Every rank gets the same count,
/// and batch i of all ranks together is batch i of the padded order at `world` times the size.
pub fn shard_order(order: &[usize], rank: usize, world: usize) -> Vec<usize> {
    if world <= 1 || order.is_empty() {
        return order.to_vec();
    }
    let total = order.len().div_ceil(world) * world;
    (rank..total)
        .step_by(world)
        .map(|i| order[i % order.len()])
        .collect()
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
    fn shards_are_disjoint_padded_and_interleaved() {
        let order: Vec<usize> = (10..17).collect();
        assert_eq!(shard_order(&order, 0, 2), vec![10, 12, 14, 16]);
        assert_eq!(shard_order(&order, 1, 2), vec![11, 13, 15, 10]);
        assert_eq!(shard_order(&order, 0, 1), order);
        let all: Vec<usize> = (0..3).flat_map(|r| shard_order(&order, r, 3)).collect();
        assert_eq!(all.len(), 9);
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
