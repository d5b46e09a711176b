//! Random flips.

use super::{map_planar, ImageTransform, Img, Rng};
use mlfw_core::Result;

/// `p` clamped to `[0, 1]` (NaN counts as 0).
fn prob(p: f64) -> f64 {
    if p.is_nan() {
        0.0
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// Mirrors left-right with probability `p` (torchvision's `RandomHorizontalFlip`).
#[derive(Debug, Clone, Copy)]
pub struct RandomHorizontalFlip {
    p: f64,
}

impl RandomHorizontalFlip {
    /// Flips with probability `p` (clamped to `[0, 1]`; torchvision's default is 0.5).
    pub fn new(p: f64) -> Self {
        RandomHorizontalFlip { p: prob(p) }
    }
}

impl ImageTransform for RandomHorizontalFlip {
    fn apply_img(&self, x: Img, rng: &mut Rng) -> Result<Img> {
        if rng.next_f64() >= self.p {
            return Ok(x);
        }
        map_planar(x, "RandomHorizontalFlip", |mut p| {
            let w = p.w.max(1);
            p.data.chunks_mut(w).for_each(|row| row.reverse());
            Ok(p)
        })
    }
}

/// Mirrors top-bottom with probability `p` (torchvision's `RandomVerticalFlip`).
#[derive(Debug, Clone, Copy)]
pub struct RandomVerticalFlip {
    p: f64,
}

impl RandomVerticalFlip {
    /// Flips with probability `p` (clamped to `[0, 1]`).
    pub fn new(p: f64) -> Self {
        RandomVerticalFlip { p: prob(p) }
    }
}

impl ImageTransform for RandomVerticalFlip {
    fn apply_img(&self, x: Img, rng: &mut Rng) -> Result<Img> {
        if rng.next_f64() >= self.p {
            return Ok(x);
        }
        map_planar(x, "RandomVerticalFlip", |mut p| {
            let (h, w) = (p.h, p.w);
            for plane in p.data.chunks_mut((h * w).max(1)) {
                for y in 0..h / 2 {
                    let (a, b) = plane.split_at_mut((h - 1 - y) * w);
                    a[y * w..(y + 1) * w].swap_with_slice(&mut b[..w]);
                }
            }
            Ok(p)
        })
    }
}
