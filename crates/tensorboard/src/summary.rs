//! Building summary values from tensors: histograms of values, PNG images, image grids.

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use mlfw_core::{DType, Device, Error, Result, Tensor};

use crate::proto::{HistogramProto, Image};

/// Number of equal-width buckets of a histogram.
const BUCKETS: usize = 30;

/// A histogram of `t`'s finite values (any shape, dtype, device): min, max, count, sum,
/// sum of squares and 30 equal-width buckets (right edges in `bucket_limit`).
///
/// # Errors
/// Reading the values (a device error).
pub fn histogram(t: &Tensor) -> Result<HistogramProto> {
    let v: Vec<f64> = t
        .to_device(&Device::Cpu)?
        .to_f64_vec()?
        .into_iter()
        .filter(|x| x.is_finite())
        .collect();
    let mut h = HistogramProto::default();
    if v.is_empty() {
        return Ok(h);
    }
    h.min = v.iter().copied().fold(f64::INFINITY, f64::min);
    h.max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    h.num = v.len() as f64;
    h.sum = v.iter().sum();
    h.sum_squares = v.iter().map(|x| x * x).sum();
    let width = (h.max - h.min) / BUCKETS as f64;
    if width <= 0.0 {
        h.bucket_limit = vec![h.max];
        h.bucket = vec![h.num];
        return Ok(h);
    }
    h.bucket = vec![0.0; BUCKETS];
    for x in &v {
        let k = (((x - h.min) / width) as usize).min(BUCKETS - 1);
        h.bucket[k] += 1.0;
    }
    h.bucket_limit = (1..=BUCKETS).map(|k| h.min + width * k as f64).collect();
    h.bucket_limit[BUCKETS - 1] = h.max;
    Ok(h)
}

/// A `[C, H, W]` image (C = 1 or 3; floats in `[0, 1]` or u8) encoded as PNG.
///
/// # Errors
/// Another shape or channel count; reading the values.
pub fn png_image(img: &Tensor) -> Result<Image> {
    let &[c, h, w] = img.dims() else {
        return Err(Error::msg(format!(
            "tensorboard image: expected [C, H, W], got {}",
            img.shape()
        )));
    };
    if c != 1 && c != 3 {
        return Err(Error::msg(format!(
            "tensorboard image: expected 1 or 3 channels, got {c}"
        )));
    }
    let host = img.to_device(&Device::Cpu)?;
    let px: Vec<u8> = if host.dtype() == DType::U8 {
        host.permute(&[1, 2, 0])?.contiguous()?.to_vec::<u8>()?
    } else {
        host.to_dtype(DType::F32)?
            .permute(&[1, 2, 0])?
            .contiguous()?
            .to_vec::<f32>()?
            .iter()
            .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect()
    };
    let mut png = Vec::new();
    let color = if c == 1 {
        ExtendedColorType::L8
    } else {
        ExtendedColorType::Rgb8
    };
    PngEncoder::new(&mut png)
        .write_image(&px, w as u32, h as u32, color)
        .map_err(|e| Error::msg(format!("tensorboard image: PNG encoding failed: {e}")))?;
    Ok(Image {
        height: h as i32,
        width: w as i32,
        colorspace: c as i32,
        encoded_image_string: png,
    })
}

/// Tiles a batch `[N, C, H, W]` into one `[C, H', W']` image, `nrow` images per row with 2
/// pixels of padding, scaled to `[0, 1]` by the batch's min and max (as torchvision's
/// `make_grid(normalize=True)`).
///
/// # Errors
/// A batch that is not 4-D or is empty.
pub fn make_grid(batch: &Tensor, nrow: usize) -> Result<Tensor> {
    let &[n, c, h, w] = batch.dims() else {
        return Err(Error::msg(format!(
            "make_grid: expected [N, C, H, W], got {}",
            batch.shape()
        )));
    };
    if n == 0 {
        return Err(Error::msg("make_grid: empty batch"));
    }
    let v = batch
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?
        .contiguous()?
        .to_vec::<f32>()?;
    let (lo, hi) = v
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let scale = if hi > lo { 1.0 / (hi - lo) } else { 0.0 };
    let (cols, pad) = (nrow.clamp(1, n), 2);
    let rows = n.div_ceil(cols);
    let (gh, gw) = (rows * (h + pad) + pad, cols * (w + pad) + pad);
    let mut out = vec![0f32; c * gh * gw];
    for k in 0..n {
        let (y0, x0) = (pad + (k / cols) * (h + pad), pad + (k % cols) * (w + pad));
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let src = v[((k * c + ch) * h + y) * w + x];
                    out[(ch * gh + y0 + y) * gw + x0 + x] = (src - lo) * scale;
                }
            }
        }
    }
    Tensor::from_vec(out, [c, gh, gw], &Device::Cpu)
}
