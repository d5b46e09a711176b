//! Cropping and padding: `CenterCrop`, `RandomCrop`, `Pad`.

use super::{map_planar, planar::Planar, ImageTransform, Img, Rng};
use mlfw_core::{Error, Result};

/// Pads each plane by `(left, top, right, bottom)` with the constant `fill`.
pub(crate) fn pad_planar(p: Planar, ltrb: [usize; 4], fill: f32) -> Planar {
    let [l, t, r, b] = ltrb;
    if l + t + r + b == 0 {
        return p;
    }
    let (oh, ow) = (p.h + t + b, p.w + l + r);
    let mut out = p.like(oh, ow, fill);
    for plane in 0..p.planes {
        let src = p.plane(plane);
        for y in 0..p.h {
            let d = plane * oh * ow + (y + t) * ow + l;
            out.data[d..d + p.w].copy_from_slice(&src[y * p.w..(y + 1) * p.w]);
        }
    }
    out
}

/// The `h × w` window at `(top, left)`; errors if it does not fit.
pub(crate) fn crop_planar(
    p: Planar,
    top: usize,
    left: usize,
    h: usize,
    w: usize,
) -> Result<Planar> {
    if top + h > p.h || left + w > p.w || h == 0 || w == 0 {
        return Err(Error::msg(format!(
            "crop: window {h}x{w} at ({top}, {left}) does not fit a {}x{} image",
            p.h, p.w
        )));
    }
    if (h, w) == (p.h, p.w) {
        return Ok(p);
    }
    let mut out = p.like(h, w, 0.0);
    for plane in 0..p.planes {
        let src = p.plane(plane);
        for y in 0..h {
            let s = (top + y) * p.w + left;
            let d = plane * h * w + y * w;
            out.data[d..d + w].copy_from_slice(&src[s..s + w]);
        }
    }
    Ok(out)
}

/// Python's `round(d / 2)` for an integer `d` (halves round to even).
fn half_round_even(d: usize) -> usize {
    let k = d / 2;
    if d % 2 == 1 && k % 2 == 1 {
        k + 1
    } else {
        k
    }
}

/// Crops the centre `h × w` (torchvision's `CenterCrop`: zero-padded first when the image is
/// smaller; the offset is `round((H - h) / 2)`).
#[derive(Debug, Clone, Copy)]
pub struct CenterCrop {
    h: usize,
    w: usize,
}

impl CenterCrop {
    /// A crop of `h × w`.
    pub fn new(h: usize, w: usize) -> Self {
        CenterCrop { h, w }
    }
}

impl ImageTransform for CenterCrop {
    fn apply_img(&self, x: Img, _rng: &mut Rng) -> Result<Img> {
        let (ch, cw) = (self.h, self.w);
        map_planar(x, "CenterCrop", |mut p| {
            if ch > p.h || cw > p.w {
                let (dh, dw) = (ch.saturating_sub(p.h), cw.saturating_sub(p.w));
                p = pad_planar(p, [dw / 2, dh / 2, dw.div_ceil(2), dh.div_ceil(2)], 0.0);
            }
            let (top, left) = (half_round_even(p.h - ch), half_round_even(p.w - cw));
            crop_planar(p, top, left, ch, cw)
        })
    }
}

/// Pads the borders with a constant (torchvision's `Pad` with `padding_mode="constant"`).
#[derive(Debug, Clone, Copy)]
pub struct Pad {
    ltrb: [usize; 4],
    fill: f32,
}

impl Pad {
    /// `n` on every side, filled with 0.
    pub fn new(n: usize) -> Self {
        Pad {
            ltrb: [n; 4],
            fill: 0.0,
        }
    }

    /// `(left, top, right, bottom)` padding.
    pub fn ltrb(left: usize, top: usize, right: usize, bottom: usize) -> Self {
        Pad {
            ltrb: [left, top, right, bottom],
            fill: 0.0,
        }
    }

    /// The fill value, in the input's value range (0..=255 for 8-bit images).
    pub fn fill(mut self, fill: f32) -> Self {
        self.fill = fill;
        self
    }
}

impl ImageTransform for Pad {
    fn apply_img(&self, x: Img, _rng: &mut Rng) -> Result<Img> {
        let (ltrb, fill) = (self.ltrb, self.fill);
        map_planar(x, "Pad", |p| Ok(pad_planar(p, ltrb, fill)))
    }
}

/// Crops a random `h × w` window, after optional padding (torchvision's `RandomCrop`).
#[derive(Debug, Clone, Copy)]
pub struct RandomCrop {
    h: usize,
    w: usize,
    padding: [usize; 4],
    pad_if_needed: bool,
    fill: f32,
}

impl RandomCrop {
    /// A random `h × w` crop, no padding.
    pub fn new(h: usize, w: usize) -> Self {
        RandomCrop {
            h,
            w,
            padding: [0; 4],
            pad_if_needed: false,
            fill: 0.0,
        }
    }

    /// Pads every side by `n` first (CIFAR's `RandomCrop(32, padding=4)`).
    pub fn padding(mut self, n: usize) -> Self {
        self.padding = [n; 4];
        self
    }

    /// Pads `(left, top, right, bottom)` first.
    pub fn padding_ltrb(mut self, ltrb: [usize; 4]) -> Self {
        self.padding = ltrb;
        self
    }

    /// Pads an image smaller than the crop up to the crop size instead of failing.
    pub fn pad_if_needed(mut self, on: bool) -> Self {
        self.pad_if_needed = on;
        self
    }

    /// The padding value, in the input's value range.
    pub fn fill(mut self, fill: f32) -> Self {
        self.fill = fill;
        self
    }
}

impl ImageTransform for RandomCrop {
    fn apply_img(&self, x: Img, rng: &mut Rng) -> Result<Img> {
        let s = *self;
        map_planar(x, "RandomCrop", |mut p| {
            p = pad_planar(p, s.padding, s.fill);
            if s.pad_if_needed && p.w < s.w {
                let d = s.w - p.w;
                p = pad_planar(p, [d, 0, d, 0], s.fill);
            }
            if s.pad_if_needed && p.h < s.h {
                let d = s.h - p.h;
                p = pad_planar(p, [0, d, 0, d], s.fill);
            }
            if p.h < s.h || p.w < s.w {
                return Err(Error::msg(format!(
                    "RandomCrop: crop {}x{} is larger than the (padded) image {}x{}; use pad_if_needed(true)",
                    s.h, s.w, p.h, p.w
                )));
            }
            let top = rng.below((p.h - s.h + 1) as u64) as usize;
            let left = rng.below((p.w - s.w + 1) as u64) as usize;
            crop_planar(p, top, left, s.h, s.w)
        })
    }
}
