//! Seedable, counter-based random numbers: element `i` of a draw is a pure function of
//! `(seed, offset + i)`, so CPU and GPU produce the same tensors and a generator's whole
//! state is two integers (easy to checkpoint).

use std::sync::Mutex;

/// SplitMix64 finalizer: a good 64-bit mixing function.
#[inline]
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform number in `[0, 1)` for counter `c` of `seed` (53 random bits).
#[inline]
pub fn uniform_at(seed: u64, c: u64) -> f64 {
    let h = splitmix64(seed ^ splitmix64(c));
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Standard normal number for element `i` (uses counters `2i` and `2i+1`, Box-Muller).
#[inline]
pub fn normal_at(seed: u64, i: u64) -> f64 {
    let u1 = uniform_at(seed, 2 * i);
    let u2 = uniform_at(seed, 2 * i + 1);
    (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A random stream: a seed and how many counters have been used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generator {
    seed: u64,
    offset: u64,
}

impl Generator {
    /// A fresh stream for `seed`.
    pub fn new(seed: u64) -> Self {
        Generator { seed, offset: 0 }
    }

    /// Restores a stream from [`Generator::state`].
    pub fn from_state(state: (u64, u64)) -> Self {
        Generator {
            seed: state.0,
            offset: state.1,
        }
    }

    /// `(seed, offset)`: everything needed to resume the stream.
    pub fn state(&self) -> (u64, u64) {
        (self.seed, self.offset)
    }

    /// Reserves `n` counters; returns `(seed, first counter)`. During a graph capture on
    /// this thread the draw is noted in the graph's warnings (a replay would reuse it).
    pub fn advance(&mut self, n: u64) -> (u64, u64) {
        crate::graph::tape::note_random();
        let start = self.offset;
        self.offset = self.offset.wrapping_add(n);
        (self.seed, start)
    }

    /// One uniform number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        let (s, o) = self.advance(1);
        uniform_at(s, o)
    }

    /// One integer in `0..n` (n > 0).
    pub fn next_below(&mut self, n: u64) -> u64 {
        ((self.next_f64() * n as f64) as u64).min(n.saturating_sub(1))
    }
}

static GLOBAL: Mutex<Generator> = Mutex::new(Generator {
    seed: 0x5EED,
    offset: 0,
});

/// Seeds the global generator used by `Tensor::rand*` without an explicit generator.
pub fn manual_seed(seed: u64) {
    *GLOBAL.lock().unwrap_or_else(|e| e.into_inner()) = Generator::new(seed);
}

/// Runs `f` with the global generator.
pub fn with_global<R>(f: impl FnOnce(&mut Generator) -> R) -> R {
    f(&mut GLOBAL.lock().unwrap_or_else(|e| e.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_moments_and_determinism() {
        let n = 100_000;
        let xs: Vec<f64> = (0..n).map(|i| uniform_at(7, i)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        assert!(xs.iter().all(|&x| (0.0..1.0).contains(&x)));
        assert_eq!(uniform_at(7, 3), xs[3]);
        let zs: Vec<f64> = (0..n).map(|i| normal_at(1, i)).collect();
        let m = zs.iter().sum::<f64>() / n as f64;
        let v = zs.iter().map(|z| (z - m) * (z - m)).sum::<f64>() / n as f64;
        assert!(m.abs() < 0.02 && (v - 1.0).abs() < 0.03, "{m} {v}");
    }
}
