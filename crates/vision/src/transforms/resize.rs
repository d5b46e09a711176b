//! `Resize`: bilinear resampling with antialiasing, as torchvision's default.
//!
//! The weights follow PIL's (and torchvision's `antialias=True`) separable triangle filter:
//! output pixel `i` covers input centre `(i + 0.5) · scale`; when shrinking, the filter widens
//! by `scale` so every input pixel contributes (no aliasing). When enlarging, this equals
//! plain bilinear interpolation with `align_corners=False`. Difference from PIL on 8-bit
//! images: PIL rounds to 8 bits between the horizontal and vertical passes, mlfw keeps f32
//! in between and rounds once (results differ by at most one gray level).

use super::{map_planar, planar::Planar, ImageTransform, Img, Rng};
use mlfw_core::{Error, Result};

/// The target size of a [`Resize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Size {
    /// Scale so the shorter side is this long, keeping the aspect ratio (torchvision's
    /// `Resize(int)`: the longer side is `int(n · long / short)`).
    Shorter(usize),
    /// Exactly `(height, width)`.
    Exact(usize, usize),
}

impl Size {
    /// The output `(h, w)` for an input of `(h, w)`.
    pub fn output(&self, h: usize, w: usize) -> (usize, usize) {
        match *self {
            Size::Exact(oh, ow) => (oh, ow),
            Size::Shorter(n) => {
                if h <= w {
                    (n, ((n as f64 * w as f64 / h.max(1) as f64) as usize).max(1))
                } else {
                    (((n as f64 * h as f64 / w.max(1) as f64) as usize).max(1), n)
                }
            }
        }
    }
}

/// Resizes images or tensors bilinearly (torchvision's `Resize`, antialias on by default).
#[derive(Debug, Clone, Copy)]
pub struct Resize {
    size: Size,
    antialias: bool,
}

impl Resize {
    /// Shorter side to `n`, keeping the aspect ratio.
    pub fn new(n: usize) -> Self {
        Resize {
            size: Size::Shorter(n),
            antialias: true,
        }
    }

    /// Exactly `h × w`.
    pub fn exact(h: usize, w: usize) -> Self {
        Resize {
            size: Size::Exact(h, w),
            antialias: true,
        }
    }

    /// Turns antialiasing off (plain bilinear, as torchvision's `antialias=False`).
    pub fn antialias(mut self, on: bool) -> Self {
        self.antialias = on;
        self
    }

    /// The target size.
    pub fn size(&self) -> Size {
        self.size
    }
}

/// One output position: the first input index and the normalized weights.
fn weights(in_len: usize, out_len: usize, antialias: bool) -> Vec<(usize, Vec<f32>)> {
    let scale = in_len as f64 / out_len as f64;
    let fs = if antialias { scale.max(1.0) } else { 1.0 };
    let support = fs; // bilinear: half-width 1, widened by the filter scale
    (0..out_len)
        .map(|i| {
            let center = scale * (i as f64 + 0.5);
            let lo = ((center - support + 0.5).floor().max(0.0)) as usize;
            let hi = ((center + support + 0.5).floor() as usize).min(in_len);
            let lo = lo.min(in_len.saturating_sub(1));
            let hi = hi.max(lo + 1);
            let mut w: Vec<f64> = (lo..hi)
                .map(|j| (1.0 - ((j as f64 - center + 0.5) / fs).abs()).max(0.0))
                .collect();
            let total: f64 = w.iter().sum();
            if total > 0.0 {
                w.iter_mut().for_each(|x| *x /= total);
            } else {
                w.iter_mut().for_each(|x| *x = 0.0);
                w[0] = 1.0;
            }
            (lo, w.into_iter().map(|x| x as f32).collect())
        })
        .collect()
}

/// Resamples every plane of `p` to `oh × ow`.
pub(crate) fn resize_planar(p: Planar, oh: usize, ow: usize, antialias: bool) -> Result<Planar> {
    if oh == 0 || ow == 0 {
        return Err(Error::msg(format!(
            "Resize: output size {oh}x{ow} must be positive"
        )));
    }
    if p.h == 0 || p.w == 0 {
        return Err(Error::msg(format!(
            "Resize: cannot resize an empty {}x{} image",
            p.h, p.w
        )));
    }
    if (oh, ow) == (p.h, p.w) {
        return Ok(p);
    }
    let wx = weights(p.w, ow, antialias);
    let wy = weights(p.h, oh, antialias);
    let mut out = p.like(oh, ow, 0.0);
    let mut tmp = vec![0f32; p.h * ow];
    for plane in 0..p.planes {
        let src = p.plane(plane);
        // Horizontal pass: [h, w] -> [h, ow].
        for y in 0..p.h {
            let row = &src[y * p.w..(y + 1) * p.w];
            for (x, (lo, w)) in wx.iter().enumerate() {
                tmp[y * ow + x] = w.iter().zip(&row[*lo..]).map(|(a, b)| a * b).sum();
            }
        }
        // Vertical pass: [h, ow] -> [oh, ow].
        let dst = &mut out.data[plane * oh * ow..(plane + 1) * oh * ow];
        for (y, (lo, w)) in wy.iter().enumerate() {
            let drow = &mut dst[y * ow..(y + 1) * ow];
            for (k, &wk) in w.iter().enumerate() {
                let srow = &tmp[(lo + k) * ow..(lo + k + 1) * ow];
                drow.iter_mut().zip(srow).for_each(|(d, s)| *d += wk * s);
            }
        }
    }
    Ok(out)
}

impl ImageTransform for Resize {
    fn apply_img(&self, x: Img, _rng: &mut Rng) -> Result<Img> {
        let (size, aa) = (self.size, self.antialias);
        map_planar(x, "Resize", |p| {
            let (oh, ow) = size.output(p.h, p.w);
            resize_planar(p, oh, ow, aa)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsampling_is_bilinear_align_corners_false() {
        // 2 -> 4: output centres map to input -0.25, 0.25, 0.75, 1.25 (clamped).
        let w = weights(2, 4, true);
        assert_eq!(w[0], (0, vec![1.0]));
        assert_eq!(w[1].0, 0);
        assert!((w[1].1[0] - 0.75).abs() < 1e-6 && (w[1].1[1] - 0.25).abs() < 1e-6);
    }

    #[test]
    fn downsampling_by_two_averages_pairs_without_antialias() {
        let w = weights(4, 2, false);
        assert_eq!(w[0].0, 0);
        assert_eq!(w[0].1, vec![0.5, 0.5]);
        // With antialias the filter covers 4 input pixels.
        let a = weights(4, 2, true);
        assert_eq!(a[0].1.len(), 3);
        assert!((a[0].1.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
