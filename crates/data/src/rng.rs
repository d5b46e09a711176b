//! A small, fast, seedable random generator and the seed derivations the loader uses.
//!
//! The generator is SplitMix64: its output for a seed never changes between versions or
//! platforms, which is what reproducible shuffling and augmentation need.

/// A seedable pseudo-random generator (SplitMix64), handed to transforms for augmentation.
///
/// Same seed, same sequence, on every platform and in every release of mlfw.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

/// Mixes one 64-bit value into a well-distributed one (the SplitMix64 finalizer).
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix64(self.state)
    }

    /// The next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// A uniform `f32` in `[0, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// A uniform `f64` in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `[0, n)`, without modulo bias; returns 0 when `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Lemire's multiply-and-reject method.
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = (self.next_u64() as u128) * (n as u128);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// A uniform integer in `[lo, hi)`; returns `lo` when the range is empty.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = hi.wrapping_sub(lo) as u64;
        lo.wrapping_add(self.below(span) as i64)
    }

    /// `true` with probability `p` (clamped to `[0, 1]`).
    pub fn bernoulli(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// Fills `buf` with random bytes.
    pub fn fill_bytes(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let v = self.next_u64().to_le_bytes();
            rest.copy_from_slice(&v[..rest.len()]);
        }
    }
}

/// Combines several values into one seed; different inputs give unrelated seeds.
pub fn derive_seed(parts: &[u64]) -> u64 {
    let mut h = 0x243f_6a88_85a3_08d3u64;
    for &p in parts {
        h = mix64(h ^ mix64(p.wrapping_add(GOLDEN)));
    }
    h
}

/// The seed of epoch `epoch`'s shuffling permutation for loader seed `seed`.
pub fn epoch_seed(seed: u64, epoch: u64) -> u64 {
    derive_seed(&[seed, epoch, 0x5348_5546])
}

/// The augmentation seed for dataset index `index` in epoch `epoch` under loader seed `seed`.
///
/// It depends on the dataset index, not on the batch or worker that loads it, so augmentation
/// is the same whatever the batch size or number of workers.
pub fn sample_seed(seed: u64, epoch: u64, index: usize) -> u64 {
    derive_seed(&[seed, epoch, index as u64, 0x4155_4720])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let a: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let c: Vec<u64> = (0..5)
            .scan(Rng::new(8), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn below_and_floats_stay_in_range() {
        let mut r = Rng::new(1);
        for _ in 0..10_000 {
            assert!(r.below(7) < 7);
            let f = r.next_f32();
            assert!((0.0..1.0).contains(&f));
            let x = r.range(-3, 4);
            assert!((-3..4).contains(&x));
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.range(5, 5), 5);
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<usize> = (0..100).collect();
        Rng::new(3).shuffle(&mut v);
        assert_ne!(v, (0..100).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn derived_seeds_differ() {
        assert_ne!(epoch_seed(0, 0), epoch_seed(0, 1));
        assert_ne!(sample_seed(0, 0, 1), sample_seed(0, 1, 0));
        assert_eq!(sample_seed(4, 2, 9), sample_seed(4, 2, 9));
    }

    #[test]
    fn fill_bytes_handles_remainders() {
        let mut a = [0u8; 13];
        Rng::new(5).fill_bytes(&mut a);
        let mut b = [0u8; 13];
        Rng::new(5).fill_bytes(&mut b);
        assert_eq!(a, b);
        assert!(a.iter().any(|&x| x != 0));
    }
}
