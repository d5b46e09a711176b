//! Pixel-value transforms: `ToTensor`, `Normalize`, `Grayscale`.

use super::{map_planar, planar::Planar, ImageTransform, Img, Rng};
use mlfw_core::{DType, Error, Result, Tensor};

/// u8 HWC image (or u8 tensor) → f32 `[C, H, W]` tensor in `[0, 1]`; float tensors pass
/// through unchanged (torchvision's `ToTensor`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ToTensor;

pub(crate) fn to_tensor(x: Img) -> Result<Img> {
    match x {
        Img::Image(i) => {
            let mut p = Planar::from_image(&i);
            p.data.iter_mut().for_each(|v| *v /= 255.0);
            let dims = vec![p.channels, p.h, p.w];
            Ok(Img::Tensor(Tensor::from_vec(
                p.data,
                dims,
                &mlfw_core::Device::Cpu,
            )?))
        }
        Img::Tensor(t) if t.dtype() == DType::U8 => {
            Ok(Img::Tensor(t.to_dtype(DType::F32)?.div_scalar(255.0)?))
        }
        Img::Tensor(t) if t.dtype().is_float() => Ok(Img::Tensor(t)),
        Img::Tensor(t) => Err(Error::msg(format!(
            "ToTensor: expected a u8 or float image tensor, got {}",
            t.dtype()
        ))),
    }
}

impl ImageTransform for ToTensor {
    fn apply_img(&self, x: Img, _rng: &mut Rng) -> Result<Img> {
        to_tensor(x)
    }
}

/// `(x - mean[c]) / std[c]` per channel on a float tensor `[..., C, H, W]`
/// (torchvision's `Normalize`). One mean/std value applies to every channel.
#[derive(Debug, Clone)]
pub struct Normalize {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Normalize {
    /// # Errors
    /// Empty or different-length lists, or a std that is zero or not finite.
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Result<Self> {
        if mean.is_empty() || mean.len() != std.len() {
            return Err(Error::msg(format!(
                "Normalize: mean ({} values) and std ({} values) must be non-empty and of equal length",
                mean.len(),
                std.len()
            )));
        }
        if let Some(s) = std.iter().find(|s| **s == 0.0 || !s.is_finite()) {
            return Err(Error::msg(format!(
                "Normalize: std must be non-zero and finite, got {s}"
            )));
        }
        Ok(Normalize { mean, std })
    }

    /// The per-channel means.
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// The per-channel standard deviations.
    pub fn std(&self) -> &[f32] {
        &self.std
    }

    /// Normalizes a float tensor `[..., C, H, W]` (any device).
    ///
    /// # Errors
    /// `Error::Msg` for a non-float tensor (use `ToTensor` first), fewer than 3 dims, or mean/std
    /// counts other than the channel count.
    pub fn normalize(&self, t: &Tensor) -> Result<Tensor> {
        if !t.dtype().is_float() {
            return Err(Error::msg(format!(
                "Normalize: expected a float tensor (use ToTensor first), got {}",
                t.dtype()
            )));
        }
        let r = t.rank();
        if r < 3 {
            return Err(Error::msg(format!(
                "Normalize: expected an image tensor [C, H, W], got shape {}",
                t.shape()
            )));
        }
        let c = t.dims()[r - 3];
        let n = self.mean.len();
        if n != 1 && n != c {
            return Err(Error::msg(format!(
                "Normalize: {n} mean/std values for an image with {c} channels"
            )));
        }
        let dev = t.device();
        let m = Tensor::from_vec(self.mean.clone(), [n, 1, 1], &dev)?.to_dtype(t.dtype())?;
        let s = Tensor::from_vec(self.std.clone(), [n, 1, 1], &dev)?.to_dtype(t.dtype())?;
        t.sub(&m)?.div(&s)
    }
}

impl ImageTransform for Normalize {
    fn apply_img(&self, x: Img, _rng: &mut Rng) -> Result<Img> {
        match x {
            Img::Tensor(t) => Ok(Img::Tensor(self.normalize(&t)?)),
            Img::Image(_) => Err(Error::msg(
                "Normalize: expected a tensor, got an image; put ToTensor before Normalize",
            )),
        }
    }
}

/// Converts to gray: `L = 0.299 R + 0.587 G + 0.114 B` (ITU-R 601-2, as torchvision and PIL),
/// alpha dropped; output has `num_output_channels` (1 or 3) equal channels.
#[derive(Debug, Clone, Copy)]
pub struct Grayscale {
    out: usize,
}

impl Grayscale {
    /// # Errors
    /// Errors unless `num_output_channels` is 1 or 3.
    pub fn new(num_output_channels: usize) -> Result<Self> {
        if num_output_channels != 1 && num_output_channels != 3 {
            return Err(Error::msg(format!(
                "Grayscale: num_output_channels must be 1 or 3, got {num_output_channels}"
            )));
        }
        Ok(Grayscale {
            out: num_output_channels,
        })
    }
}

impl Default for Grayscale {
    fn default() -> Self {
        Grayscale { out: 1 }
    }
}

/// Gray planes from `p`: RGB(A) weighted, gray(+alpha) taken as is.
pub(crate) fn gray(p: Planar, out: usize) -> Result<Planar> {
    let c = p.channels;
    if c == 0 || c > 4 {
        return Err(Error::msg(format!(
            "Grayscale: expected 1 to 4 channels, got {c}"
        )));
    }
    let n_img = p.planes / c;
    let hw = p.h * p.w;
    let mut q = p.like(p.h, p.w, 0.0);
    q.channels = out;
    q.planes = n_img * out;
    q.data = vec![0.0; q.planes * hw];
    for b in 0..n_img {
        let base = b * c * hw;
        let l: Vec<f32> = if c >= 3 {
            (0..hw)
                .map(|i| {
                    0.299 * p.data[base + i]
                        + 0.587 * p.data[base + hw + i]
                        + 0.114 * p.data[base + 2 * hw + i]
                })
                .collect()
        } else {
            p.data[base..base + hw].to_vec()
        };
        for o in 0..out {
            let dst = (b * out + o) * hw;
            q.data[dst..dst + hw].copy_from_slice(&l);
        }
    }
    Ok(q)
}

impl ImageTransform for Grayscale {
    fn apply_img(&self, x: Img, _rng: &mut Rng) -> Result<Img> {
        let out = self.out;
        map_planar(x, "Grayscale", |p| gray(p, out))
    }
}
