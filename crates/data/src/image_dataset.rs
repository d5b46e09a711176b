//! `ImageDataset`: an in-memory image dataset (what every built-in loader returns).

use std::sync::Arc;

use mlfw_core::{Device, Tensor};

use crate::collate::{batch_from_pixels, image_tensor, Batch, ImageFormat};
use crate::dataset::{default_seed, Dataset, Sample};
use crate::error::{Error, Result};
use crate::image_set::ImageSet;
use crate::info::DatasetInfo;
use crate::rng::Rng;
use crate::transform::Transform;

/// Images held in memory as u8 plus labels, converted to tensors on `get`.
///
/// Cloning is cheap (the pixels are shared). Samples are `[C, H, W]` f32 in `[0, 1]` by default
/// ([`ImageFormat::U8`] for raw bytes), then passed through the optional [`Transform`].
#[derive(Clone)]
pub struct ImageDataset {
    images: Arc<ImageSet>,
    info: DatasetInfo,
    format: ImageFormat,
    transform: Option<Arc<dyn Transform>>,
}

impl std::fmt::Debug for ImageDataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageDataset")
            .field("name", &self.info.name)
            .field("len", &self.images.len())
            .field("image_shape", &self.images.image_shape())
            .field("format", &self.format)
            .field("transform", &self.transform.is_some())
            .finish()
    }
}

impl ImageDataset {
    /// Wraps validated images with their metadata.
    pub fn new(images: ImageSet, info: DatasetInfo) -> Self {
        ImageDataset {
            images: Arc::new(images),
            info,
            format: ImageFormat::F32,
            transform: None,
        }
    }

    /// Applies `transform` to every image in `get` (replacing any previous one).
    pub fn with_transform(self, transform: impl Transform + 'static) -> Self {
        self.with_transform_arc(Arc::new(transform))
    }

    /// Like [`with_transform`](Self::with_transform), for an already shared transform.
    pub fn with_transform_arc(mut self, transform: Arc<dyn Transform>) -> Self {
        self.transform = Some(transform);
        self
    }

    /// Removes the transform.
    pub fn without_transform(mut self) -> Self {
        self.transform = None;
        self
    }

    /// Sets the image format samples come out in (before the transform).
    pub fn with_format(mut self, format: ImageFormat) -> Self {
        self.format = format;
        self
    }

    /// The raw images and labels (u8 CHW pixels), for fast paths that skip tensors.
    pub fn images(&self) -> &ImageSet {
        &self.images
    }

    /// The dataset's metadata.
    pub fn metadata(&self) -> &DatasetInfo {
        &self.info
    }

    /// The image format samples come out in.
    pub fn format(&self) -> ImageFormat {
        self.format
    }

    fn out_of_range(&self, index: usize) -> Error {
        Error::invalid(format!(
            "index {index} out of range for dataset `{}` of {} samples",
            self.info.name,
            self.images.len()
        ))
    }
}

impl Dataset for ImageDataset {
    fn len(&self) -> usize {
        self.images.len()
    }

    fn get(&self, index: usize) -> Result<Sample> {
        self.get_seeded(index, default_seed(index))
    }

    fn get_seeded(&self, index: usize, seed: u64) -> Result<Sample> {
        let pixels = self
            .images
            .image(index)
            .ok_or_else(|| self.out_of_range(index))?;
        let label = self.images.labels()[index];
        let mut image = image_tensor(pixels, self.images.image_shape(), self.format)?;
        if let Some(t) = &self.transform {
            image = t.apply(image, &mut Rng::new(seed))?;
        }
        Ok(Sample { image, label })
    }

    fn get_batch(&self, indices: &[usize], seeds: &[u64]) -> Result<Batch> {
        if self.transform.is_some() {
            let samples = indices
                .iter()
                .zip(seeds)
                .map(|(&i, &s)| self.get_seeded(i, s))
                .collect::<Result<Vec<_>>>()?;
            return crate::collate::collate(samples, indices.to_vec());
        }
        // No transform: build the batch tensor straight from the u8 pixels, in one pass.
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.images.len()) {
            return Err(self.out_of_range(bad));
        }
        let set = &self.images;
        let images = batch_from_pixels(indices.len(), set.image_shape(), self.format, |k| {
            set.image(indices[k]).unwrap_or(&[])
        })?;
        let labels: Vec<i64> = indices.iter().map(|&i| set.labels()[i]).collect();
        let labels = Tensor::from_vec(labels, vec![indices.len()], &Device::Cpu)?;
        Ok(Batch {
            images,
            labels,
            indices: indices.to_vec(),
        })
    }

    fn info(&self) -> Option<DatasetInfo> {
        Some(self.info.clone())
    }
}
