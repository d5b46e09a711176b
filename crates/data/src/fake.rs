//! `FakeData`: seeded random images and labels of any shape, for tests and benchmarks.

use std::sync::Arc;

use mlfw_core::{Device, Tensor};

use crate::collate::{batch_from_pixels, image_tensor, Batch, ImageFormat};
use crate::dataset::{default_seed, Dataset, Sample};
use crate::error::{Error, Result};
use crate::image_set::ImageSet;
use crate::info::{fake_info, DatasetInfo};
use crate::rng::{derive_seed, Rng};
use crate::transform::Transform;

/// Random u8 images and labels, generated on demand from `(seed, index)`, like torchvision's
/// `FakeData`: the same index always gives the same sample, and nothing is held in memory.
#[derive(Clone)]
pub struct FakeData {
    len: usize,
    shape: [usize; 3],
    num_classes: usize,
    seed: u64,
    format: ImageFormat,
    transform: Option<Arc<dyn Transform>>,
}

impl std::fmt::Debug for FakeData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeData")
            .field("len", &self.len)
            .field("shape", &self.shape)
            .field("num_classes", &self.num_classes)
            .field("seed", &self.seed)
            .finish()
    }
}

impl FakeData {
    /// `len` images of `shape` `[C, H, W]` with labels in `0..num_classes`, drawn from `seed`.
    ///
    /// # Errors
    /// A zero-sized shape or `num_classes == 0`.
    pub fn new(len: usize, shape: [usize; 3], num_classes: usize, seed: u64) -> Result<Self> {
        if shape.contains(&0) || num_classes == 0 {
            return Err(Error::invalid(format!(
                "FakeData needs a non-empty shape and at least one class, got {shape:?} and \
                 {num_classes} classes"
            )));
        }
        Ok(FakeData {
            len,
            shape,
            num_classes,
            seed,
            format: ImageFormat::F32,
            transform: None,
        })
    }

    /// `len` MNIST-shaped samples (1x28x28, 10 classes).
    pub fn mnist_like(len: usize, seed: u64) -> Self {
        FakeData {
            len,
            shape: [1, 28, 28],
            num_classes: 10,
            seed,
            format: ImageFormat::F32,
            transform: None,
        }
    }

    /// Applies `transform` to every image in `get`.
    pub fn with_transform(mut self, transform: impl Transform + 'static) -> Self {
        self.transform = Some(Arc::new(transform));
        self
    }

    /// Sets the image format samples come out in (before the transform).
    pub fn with_format(mut self, format: ImageFormat) -> Self {
        self.format = format;
        self
    }

    /// The raw pixels and label of sample `index` (no bounds check).
    pub fn raw(&self, index: usize) -> (Vec<u8>, i64) {
        let mut rng = Rng::new(derive_seed(&[self.seed, index as u64]));
        let label = rng.below(self.num_classes as u64) as i64;
        let mut pixels = vec![0u8; self.shape.iter().product()];
        rng.fill_bytes(&mut pixels);
        (pixels, label)
    }

    /// Generates every sample into memory (e.g. to share one fixed set between runs).
    ///
    /// # Errors
    /// None in practice: the checks of [`ImageSet::new`] are already met by [`FakeData::new`]'s.
    pub fn to_image_set(&self) -> Result<ImageSet> {
        let mut pixels = Vec::with_capacity(self.len * self.shape.iter().product::<usize>());
        let mut labels = Vec::with_capacity(self.len);
        for i in 0..self.len {
            let (p, l) = self.raw(i);
            pixels.extend_from_slice(&p);
            labels.push(l);
        }
        ImageSet::new(
            pixels,
            labels,
            self.shape,
            Some(self.num_classes),
            "FakeData",
        )
    }

    fn check(&self, index: usize) -> Result<()> {
        if index < self.len {
            Ok(())
        } else {
            Err(Error::invalid(format!(
                "index {index} out of range for FakeData of {}",
                self.len
            )))
        }
    }
}

impl Dataset for FakeData {
    fn len(&self) -> usize {
        self.len
    }

    fn get(&self, index: usize) -> Result<Sample> {
        self.get_seeded(index, default_seed(index))
    }

    fn get_seeded(&self, index: usize, seed: u64) -> Result<Sample> {
        self.check(index)?;
        let (pixels, label) = self.raw(index);
        let mut image = image_tensor(&pixels, self.shape, self.format)?;
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
        for &i in indices {
            self.check(i)?;
        }
        let raws: Vec<(Vec<u8>, i64)> = indices.iter().map(|&i| self.raw(i)).collect();
        let images = batch_from_pixels(raws.len(), self.shape, self.format, |k| &raws[k].0)?;
        let labels: Vec<i64> = raws.iter().map(|r| r.1).collect();
        let labels = Tensor::from_vec(labels, vec![indices.len()], &Device::Cpu)?;
        Ok(Batch {
            images,
            labels,
            indices: indices.to_vec(),
        })
    }

    fn info(&self) -> Option<DatasetInfo> {
        Some(fake_info(self.shape, self.num_classes, self.len, self.len))
    }
}
