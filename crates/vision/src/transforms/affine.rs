//! Random affine transforms: `RandomAffine` (rotation, translation, scale, shear) and
//! `RandomRotation`, sampled by inverse mapping around the image centre.
//!
//! The geometry follows torchvision's tensor path: pixel `(x, y)` sits at
//! `(x - (W-1)/2, y - (H-1)/2)` relative to the centre, the inverse matrix is
//! torchvision's `_get_inverse_affine_matrix`, and pixels that map outside the input take
//! `fill`. Nearest interpolation is the default (as torchvision's).

use super::{map_planar, planar::Planar, ImageTransform, Img, Rng};
use mlfw_core::{Error, Result};

/// How a geometric transform samples the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interpolation {
    /// The nearest input pixel (torchvision's default for affine and rotation).
    #[default]
    Nearest,
    /// Bilinear between the four nearest pixels (outside pixels count as `fill`).
    Bilinear,
}

/// torchvision's `_get_inverse_affine_matrix` with centre (0, 0): output → input coordinates.
/// `angle` clockwise in degrees, `shear` in degrees (x, y).
fn inverse_matrix(angle: f64, translate: (f64, f64), scale: f64, shear: (f64, f64)) -> [f64; 6] {
    let rot = angle.to_radians();
    let (sx, sy) = (shear.0.to_radians(), shear.1.to_radians());
    let a = (rot - sy).cos() / sy.cos();
    let b = -(rot - sy).cos() * sx.tan() / sy.cos() - rot.sin();
    let c = (rot - sy).sin() / sy.cos();
    let d = -(rot - sy).sin() * sx.tan() / sy.cos() + rot.cos();
    let mut m = [d, -b, 0.0, -c, a, 0.0];
    m.iter_mut().for_each(|v| *v /= scale);
    let (tx, ty) = translate;
    m[2] += m[0] * (-tx) + m[1] * (-ty);
    m[5] += m[3] * (-tx) + m[4] * (-ty);
    m
}

/// Applies the inverse matrix `m` to every plane.
fn warp(p: Planar, m: [f64; 6], interp: Interpolation, fill: f32) -> Planar {
    let (h, w) = (p.h, p.w);
    let (cx, cy) = ((w as f64 - 1.0) * 0.5, (h as f64 - 1.0) * 0.5);
    let mut out = p.like(h, w, fill);
    let at = |src: &[f32], x: i64, y: i64| -> f32 {
        if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
            fill
        } else {
            src[y as usize * w + x as usize]
        }
    };
    for plane in 0..p.planes {
        let src = p.plane(plane);
        let dst = &mut out.data[plane * h * w..(plane + 1) * h * w];
        for y in 0..h {
            let ry = y as f64 - cy;
            for x in 0..w {
                let rx = x as f64 - cx;
                let sx = m[0] * rx + m[1] * ry + m[2] + cx;
                let sy = m[3] * rx + m[4] * ry + m[5] + cy;
                dst[y * w + x] = match interp {
                    Interpolation::Nearest => at(src, sx.round() as i64, sy.round() as i64),
                    Interpolation::Bilinear => {
                        let (x0, y0) = (sx.floor(), sy.floor());
                        let (fx, fy) = ((sx - x0) as f32, (sy - y0) as f32);
                        let (x0, y0) = (x0 as i64, y0 as i64);
                        let top = at(src, x0, y0) * (1.0 - fx) + at(src, x0 + 1, y0) * fx;
                        let bot = at(src, x0, y0 + 1) * (1.0 - fx) + at(src, x0 + 1, y0 + 1) * fx;
                        top * (1.0 - fy) + bot * fy
                    }
                };
            }
        }
    }
    out
}

fn uniform(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.next_f64()
}

fn check_range(r: (f64, f64), what: &str) -> Result<(f64, f64)> {
    if !(r.0.is_finite() && r.1.is_finite()) || r.0 > r.1 {
        return Err(Error::msg(format!(
            "{what}: range ({}, {}) must be finite with min <= max",
            r.0, r.1
        )));
    }
    Ok(r)
}

/// A random affine map about the centre (torchvision's `RandomAffine`): angle uniform in
/// `degrees` (clockwise), translation up to `translate` × size (rounded to pixels), scale
/// uniform in `scale`, x-shear uniform in `shear` degrees.
#[derive(Debug, Clone, Copy)]
pub struct RandomAffine {
    degrees: (f64, f64),
    translate: Option<(f64, f64)>,
    scale: Option<(f64, f64)>,
    shear: Option<(f64, f64)>,
    interp: Interpolation,
    fill: f32,
}

impl RandomAffine {
    /// Rotation uniform in `[-degrees, degrees]`, nothing else. Errors if `degrees < 0`.
    ///
    /// # Errors
    /// `Error::Msg` when `degrees` is negative or NaN.
    pub fn new(degrees: f64) -> Result<Self> {
        if degrees.is_nan() || degrees < 0.0 {
            return Err(Error::msg(format!(
                "RandomAffine: degrees must be >= 0, got {degrees}"
            )));
        }
        Ok(RandomAffine {
            degrees: (-degrees, degrees),
            translate: None,
            scale: None,
            shear: None,
            interp: Interpolation::Nearest,
            fill: 0.0,
        })
    }

    /// Maximum horizontal and vertical shift as fractions of width and height, in `[0, 1]`.
    ///
    /// # Errors
    /// `Error::Msg` when a fraction is outside `[0, 1]`.
    pub fn translate(mut self, fx: f64, fy: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&fx) || !(0.0..=1.0).contains(&fy) {
            return Err(Error::msg(format!(
                "RandomAffine: translate fractions must be in [0, 1], got ({fx}, {fy})"
            )));
        }
        self.translate = Some((fx, fy));
        Ok(self)
    }

    /// Scale factor range, positive.
    ///
    /// # Errors
    /// `Error::Msg` when the range is not finite with `lo <= hi`, or not positive.
    pub fn scale(mut self, lo: f64, hi: f64) -> Result<Self> {
        let r = check_range((lo, hi), "RandomAffine scale")?;
        if r.0 <= 0.0 {
            return Err(Error::msg("RandomAffine: scale must be positive"));
        }
        self.scale = Some(r);
        Ok(self)
    }

    /// x-shear range in degrees.
    ///
    /// # Errors
    /// `Error::Msg` when the range is not finite with `lo <= hi`.
    pub fn shear(mut self, lo: f64, hi: f64) -> Result<Self> {
        self.shear = Some(check_range((lo, hi), "RandomAffine shear")?);
        Ok(self)
    }

    /// The interpolation (nearest by default).
    pub fn interpolation(mut self, i: Interpolation) -> Self {
        self.interp = i;
        self
    }

    /// The value of pixels that come from outside the input (input's value range).
    pub fn fill(mut self, fill: f32) -> Self {
        self.fill = fill;
        self
    }
}

impl ImageTransform for RandomAffine {
    fn apply_img(&self, x: Img, rng: &mut Rng) -> Result<Img> {
        let s = *self;
        let angle = uniform(rng, s.degrees.0, s.degrees.1);
        let (fx, fy) = s.translate.unwrap_or((0.0, 0.0));
        let (ux, uy) = (rng.next_f64() * 2.0 - 1.0, rng.next_f64() * 2.0 - 1.0);
        let scale = s.scale.map_or(1.0, |(lo, hi)| uniform(rng, lo, hi));
        let shear = s.shear.map_or(0.0, |(lo, hi)| uniform(rng, lo, hi));
        map_planar(x, "RandomAffine", |p| {
            let tx = (ux * fx * p.w as f64).round();
            let ty = (uy * fy * p.h as f64).round();
            let m = inverse_matrix(angle, (tx, ty), scale, (shear, 0.0));
            Ok(warp(p, m, s.interp, s.fill))
        })
    }
}

/// Rotates by an angle uniform in `[-degrees, degrees]`, counter-clockwise, about the centre,
/// keeping the size (torchvision's `RandomRotation`, `expand=False`).
#[derive(Debug, Clone, Copy)]
pub struct RandomRotation {
    degrees: (f64, f64),
    interp: Interpolation,
    fill: f32,
}

impl RandomRotation {
    /// # Errors
    /// `Error::Msg` when `degrees` is negative or NaN.
    pub fn new(degrees: f64) -> Result<Self> {
        if degrees.is_nan() || degrees < 0.0 {
            return Err(Error::msg(format!(
                "RandomRotation: degrees must be >= 0, got {degrees}"
            )));
        }
        Ok(RandomRotation {
            degrees: (-degrees, degrees),
            interp: Interpolation::Nearest,
            fill: 0.0,
        })
    }

    /// The interpolation (nearest by default).
    pub fn interpolation(mut self, i: Interpolation) -> Self {
        self.interp = i;
        self
    }

    /// The value of pixels that come from outside the input.
    pub fn fill(mut self, fill: f32) -> Self {
        self.fill = fill;
        self
    }

    /// Rotates `x` by exactly `degrees` counter-clockwise.
    ///
    /// # Errors
    /// `Error::Msg` when `x` is not an image or `[C, H, W]`/`[N, C, H, W]` tensor; device errors.
    pub fn rotate(x: Img, degrees: f64, interp: Interpolation, fill: f32) -> Result<Img> {
        let m = inverse_matrix(-degrees, (0.0, 0.0), 1.0, (0.0, 0.0));
        map_planar(x, "rotate", |p| Ok(warp(p, m, interp, fill)))
    }
}

impl ImageTransform for RandomRotation {
    fn apply_img(&self, x: Img, rng: &mut Rng) -> Result<Img> {
        let angle = uniform(rng, self.degrees.0, self.degrees.1);
        Self::rotate(x, angle, self.interp, self.fill)
    }
}
