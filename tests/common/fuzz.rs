//! Bounded mutation fuzzing for parsers, run by `cargo test` (no cargo-fuzz needed): a seeded
//! generator mutates valid seed inputs a fixed number of times, and each parser must answer
//! every case with `Ok` or a clean `Err` — never a panic (caught and counted here) or an abort
//! (which would kill the test binary, failing the test). Included by path from each crate's
//! fuzz tests.
#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};

/// A small deterministic generator (xorshift64*), so every run tries the same cases.
pub struct FuzzRng(u64);

impl FuzzRng {
    pub fn new(seed: u64) -> Self {
        FuzzRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that tend to break size arithmetic.
const INTERESTING: [u64; 8] = [
    0,
    1,
    0x7f,
    0xff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 62,
    u64::MAX,
];

/// `seed` with 1 to 4 random mutations: bit flips, interesting bytes or integers written over
/// it (sizes in headers), truncation, insertion, deletion and duplication of a range.
pub fn mutate(seed: &[u8], rng: &mut FuzzRng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len().max(1);
        let at = rng.below(len);
        match rng.below(7) {
            0 => {
                if let Some(x) = b.get_mut(at) {
                    *x ^= 1 << rng.below(8);
                }
            }
            1 => {
                if let Some(x) = b.get_mut(at) {
                    *x = INTERESTING[rng.below(INTERESTING.len())] as u8;
                }
            }
            2 => {
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let width = [2, 4, 8][rng.below(3)];
                let bytes = if rng.below(2) == 0 {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                for (k, x) in bytes[..width].iter().enumerate() {
                    if let Some(y) = b.get_mut(at + k) {
                        *y = *x;
                    }
                }
            }
            3 => b.truncate(at),
            4 => {
                let n = 1 + rng.below(16);
                let junk: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(at.min(b.len())..at.min(b.len()), junk);
            }
            5 => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                if at < end {
                    b.drain(at..end);
                }
            }
            _ => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                if at < end {
                    let piece = b[at..end].to_vec();
                    b.splice(at..at, piece);
                }
            }
        }
    }
    b
}

/// What a fuzz run saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FuzzReport {
    pub cases: usize,
    pub ok: usize,
    pub clean_errors: usize,
    pub panics: usize,
}

/// Runs `parse` on `cases` mutations of the `seeds` (chosen in turn) with generator `seed`;
/// prints and returns the counts. A case that panics is counted, and its input's index shown.
pub fn fuzz<E: std::fmt::Display>(
    name: &str,
    seeds: &[Vec<u8>],
    cases: usize,
    seed: u64,
    mut parse: impl FnMut(&[u8]) -> Result<(), E>,
) -> FuzzReport {
    let mut rng = FuzzRng::new(seed);
    let mut r = FuzzReport::default();
    for i in 0..cases {
        let input = mutate(&seeds[i % seeds.len()], &mut rng);
        r.cases += 1;
        match catch_unwind(AssertUnwindSafe(|| parse(&input))) {
            Ok(Ok(())) => r.ok += 1,
            Ok(Err(e)) => {
                assert!(
                    !e.to_string().trim().is_empty(),
                    "case {i}: empty error message"
                );
                r.clean_errors += 1;
            }
            Err(_) => {
                eprintln!(
                    "fuzz {name}: case {i} panicked ({} input bytes)",
                    input.len()
                );
                r.panics += 1;
            }
        }
    }
    eprintln!(
        "fuzz {name}: {} cases, {} ok, {} clean errors, {} panics, 0 aborts",
        r.cases, r.ok, r.clean_errors, r.panics
    );
    r
}
