//! `Planar`: the one pixel buffer every geometric transform works on, so each transform has
//! one implementation for `image::DynamicImage`s and for tensors.

use image::{DynamicImage, GrayAlphaImage, GrayImage, RgbImage, RgbaImage};
use mlfw_core::{DType, Device, Error, Result, Tensor};

/// Where a [`Planar`] came from, so it can be turned back into the same kind of value.
#[derive(Debug, Clone)]
pub(crate) enum Origin {
    /// An 8-bit image (values 0..=255).
    Image,
    /// A tensor of this dtype on this device, with these leading dims (`[..., C]`).
    Tensor {
        dtype: DType,
        device: Device,
        lead: Vec<usize>,
    },
}

/// Planes of `h × w` f32 values, `planes = batch × channels`, row-major CHW per image.
#[derive(Debug, Clone)]
pub(crate) struct Planar {
    pub channels: usize,
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
    pub origin: Origin,
}

impl Planar {
    /// A new buffer like `self` with another size, filled with `fill`.
    pub fn like(&self, h: usize, w: usize, fill: f32) -> Planar {
        Planar {
            channels: self.channels,
            planes: self.planes,
            h,
            w,
            data: vec![fill; self.planes * h * w],
            origin: self.origin.clone(),
        }
    }

    /// Plane `p` as a slice.
    pub fn plane(&self, p: usize) -> &[f32] {
        &self.data[p * self.h * self.w..(p + 1) * self.h * self.w]
    }

    /// From an image: 8-bit gray, gray+alpha, RGB and RGBA keep their channels; other
    /// formats (16-bit, float) are converted to 8-bit RGB(A) or gray first, so 16-bit samples
    /// are scaled (`v / 257`, rounded), not clipped as torchvision does (see the README).
    pub fn from_image(img: &DynamicImage) -> Planar {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let (c, raw): (usize, Vec<u8>) = match img {
            DynamicImage::ImageLuma8(i) => (1, i.as_raw().clone()),
            DynamicImage::ImageLumaA8(i) => (2, i.as_raw().clone()),
            DynamicImage::ImageRgb8(i) => (3, i.as_raw().clone()),
            DynamicImage::ImageRgba8(i) => (4, i.as_raw().clone()),
            DynamicImage::ImageLuma16(_) => (1, img.to_luma8().into_raw()),
            DynamicImage::ImageLumaA16(_) => (2, img.to_luma_alpha8().into_raw()),
            other if other.color().has_alpha() => (4, other.to_rgba8().into_raw()),
            other => (3, other.to_rgb8().into_raw()),
        };
        let mut data = vec![0f32; c * h * w];
        for (i, px) in raw.chunks_exact(c).enumerate() {
            for (ch, &v) in px.iter().enumerate() {
                data[ch * h * w + i] = v as f32;
            }
        }
        Planar {
            channels: c,
            planes: c,
            h,
            w,
            data,
            origin: Origin::Image,
        }
    }

    /// From a `[C, H, W]` or `[..., C, H, W]` tensor of any dtype and device.
    ///
    /// # Errors
    /// `Error::Msg` for a tensor of fewer than 3 dims; device errors copying it to the host.
    pub fn from_tensor(t: &Tensor, op: &str) -> Result<Planar> {
        let dims = t.dims();
        if dims.len() < 3 {
            return Err(Error::msg(format!(
                "{op}: expected an image tensor [C, H, W] or [N, C, H, W], got shape {}",
                t.shape()
            )));
        }
        let r = dims.len();
        let (c, h, w) = (dims[r - 3], dims[r - 2], dims[r - 1]);
        let data = t.to_dtype(DType::F32)?.to_vec::<f32>()?;
        Ok(Planar {
            channels: c,
            planes: data.len() / (h * w).max(1),
            h,
            w,
            data,
            origin: Origin::Tensor {
                dtype: t.dtype(),
                device: t.device(),
                lead: dims[..r - 2].to_vec(),
            },
        })
    }

    /// Back to a tensor (same dtype/device as the source; u8 values are rounded and clamped).
    ///
    /// # Errors
    /// Device errors only.
    pub fn into_tensor(self) -> Result<Tensor> {
        let (dtype, device, mut dims) = match self.origin {
            Origin::Tensor {
                dtype,
                device,
                lead,
            } => (dtype, device, lead),
            Origin::Image => (DType::U8, Device::Cpu, vec![self.channels]),
        };
        if let Some(c) = dims.last_mut() {
            *c = self.channels;
        }
        dims.extend([self.h, self.w]);
        if dtype == DType::U8 {
            let v: Vec<u8> = self
                .data
                .iter()
                .map(|x| x.round().clamp(0.0, 255.0) as u8)
                .collect();
            return Tensor::from_vec(v, dims, &device);
        }
        Tensor::from_vec(self.data, dims, &device)?.to_dtype(dtype)
    }

    /// Back to an 8-bit image with 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels.
    ///
    /// # Errors
    /// `Error::Msg` for more than one image or a channel count other than 1 to 4.
    pub fn into_image(self) -> Result<DynamicImage> {
        let (c, h, w) = (self.channels, self.h, self.w);
        if self.planes != c {
            return Err(Error::msg(
                "cannot make one image from a batch of images; use tensors",
            ));
        }
        let mut raw = vec![0u8; c * h * w];
        for ch in 0..c {
            for (i, &v) in self.plane(ch).iter().enumerate() {
                raw[i * c + ch] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
        let (w32, h32) = (w as u32, h as u32);
        let bad = || Error::msg(format!("cannot build a {w}x{h} image with {c} channels"));
        Ok(match c {
            1 => DynamicImage::ImageLuma8(GrayImage::from_raw(w32, h32, raw).ok_or_else(bad)?),
            2 => {
                DynamicImage::ImageLumaA8(GrayAlphaImage::from_raw(w32, h32, raw).ok_or_else(bad)?)
            }
            3 => DynamicImage::ImageRgb8(RgbImage::from_raw(w32, h32, raw).ok_or_else(bad)?),
            4 => DynamicImage::ImageRgba8(RgbaImage::from_raw(w32, h32, raw).ok_or_else(bad)?),
            _ => return Err(bad()),
        })
    }
}
