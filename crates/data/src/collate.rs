//! Batching: stacking samples into `[B, C, H, W]` images and `[B]` labels.

use mlfw_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::sample::Sample;

/// A batch of samples, as the loader yields it.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Images, `[B, C, H, W]` (dtype of the samples: f32 by default, or u8).
    pub images: Tensor,
    /// Labels, `[B]`, i64.
    pub labels: Tensor,
    /// The dataset index of each sample, in batch order.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of samples in the batch.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// How images come out of an image dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageFormat {
    /// f32 in `[0, 1]` (pixel / 255), like torchvision's `ToTensor`. The default.
    #[default]
    F32,
    /// The raw u8 pixels, no conversion.
    U8,
}

/// A `[C, H, W]` image tensor from raw CHW pixels.
///
/// # Errors
/// `Error::Core` when `pixels.len()` is not `C·H·W`.
pub fn image_tensor(pixels: &[u8], shape: [usize; 3], format: ImageFormat) -> Result<Tensor> {
    let t = match format {
        ImageFormat::F32 => {
            let data: Vec<f32> = pixels.iter().map(|&p| p as f32 / 255.0).collect();
            Tensor::from_vec(data, shape.to_vec(), &Device::Cpu)?
        }
        ImageFormat::U8 => Tensor::from_vec(pixels.to_vec(), shape.to_vec(), &Device::Cpu)?,
    };
    Ok(t)
}

/// A `[B, C, H, W]` batch tensor straight from raw pixels: `pixels(i)` gives image `i`'s bytes.
pub(crate) fn batch_from_pixels<'a>(
    count: usize,
    shape: [usize; 3],
    format: ImageFormat,
    pixels: impl Fn(usize) -> &'a [u8],
) -> Result<Tensor> {
    let per: usize = shape.iter().product();
    let dims = vec![count, shape[0], shape[1], shape[2]];
    let t = match format {
        ImageFormat::F32 => {
            let mut data = Vec::with_capacity(count * per);
            for i in 0..count {
                data.extend(pixels(i).iter().map(|&p| p as f32 / 255.0));
            }
            Tensor::from_vec(data, dims, &Device::Cpu)?
        }
        ImageFormat::U8 => {
            let mut data = Vec::with_capacity(count * per);
            for i in 0..count {
                data.extend_from_slice(pixels(i));
            }
            Tensor::from_vec(data, dims, &Device::Cpu)?
        }
    };
    Ok(t)
}

/// Stacks samples into a [`Batch`]; `indices` are their dataset indices.
///
/// # Errors
/// No samples, or images of different shapes or dtypes (naming the two indices).
pub fn collate(samples: Vec<Sample>, indices: Vec<usize>) -> Result<Batch> {
    let first = samples
        .first()
        .ok_or_else(|| Error::invalid("cannot collate an empty batch"))?;
    let dims = first.image.dims().to_vec();
    let dtype = first.image.dtype();
    for (k, s) in samples.iter().enumerate().skip(1) {
        if s.image.dims() != dims.as_slice() || s.image.dtype() != dtype {
            let at = |k: usize| indices.get(k).copied().unwrap_or(k);
            return Err(Error::invalid(format!(
                "cannot batch sample {} ({:?} {:?}) with sample {} ({:?} {:?}): \
                 images must share shape and dtype (add a resize/crop transform?)",
                at(0),
                dims,
                dtype,
                at(k),
                s.image.dims(),
                s.image.dtype()
            )));
        }
    }
    let mut batch_dims = vec![samples.len()];
    batch_dims.extend_from_slice(&dims);
    let labels: Vec<i64> = samples.iter().map(|s| s.label).collect();
    let images = match dtype {
        DType::F32 => concat_as::<f32>(&samples, batch_dims)?,
        DType::U8 => concat_as::<u8>(&samples, batch_dims)?,
        _ => {
            let imgs: Vec<Tensor> = samples.into_iter().map(|s| s.image).collect();
            Tensor::stack(&imgs, 0)?
        }
    };
    let n = labels.len();
    let labels = Tensor::from_vec(labels, vec![n], &Device::Cpu)?;
    Ok(Batch {
        images,
        labels,
        indices,
    })
}

fn concat_as<T: mlfw_core::WithDType>(samples: &[Sample], dims: Vec<usize>) -> Result<Tensor> {
    let per: usize = dims[1..].iter().product();
    let mut data: Vec<T> = Vec::with_capacity(per * samples.len());
    for s in samples {
        data.extend(s.image.to_vec::<T>()?);
    }
    Ok(Tensor::from_vec(data, dims, &Device::Cpu)?)
}
