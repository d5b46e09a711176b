//! Datasets as the commands use them: metadata, the model's input size, normalization (done on
//! the device, per batch) and training augmentation (done per sample in loader workers).

use std::path::PathBuf;

use mlfw_core::{Device, Tensor};
use mlfw_data::{load_by_name, DataLoader, Dataset, DatasetInfo, ImageDataset, LoadOptions, Split};
use mlfw_vision::transforms::{Compose, RandomCrop, RandomHorizontalFlip, Resize};

use crate::error::{CliError, Result};
use crate::models;

/// A dataset prepared for a model.
#[derive(Debug, Clone)]
pub struct DataSpec {
    /// Canonical dataset name.
    pub name: &'static str,
    /// Its metadata (classes, image shape, mean/std).
    pub info: DatasetInfo,
    /// The `[C, H, W]` input the model is fed.
    pub input: [usize; 3],
    /// Folder holding the files (`--data-dir`), if given.
    pub data_dir: Option<PathBuf>,
}

impl DataSpec {
    /// The spec of `dataset` for `model` (canonical names).
    pub fn new(dataset: &str, model: &str, data_dir: Option<PathBuf>) -> Result<Self> {
        let name = mlfw_data::registry::canonical_name(dataset)?;
        let info = mlfw_data::dataset_info(name)?;
        let input = models::input_shape(model, info.image_shape());
        Ok(DataSpec {
            name,
            info,
            input,
            data_dir,
        })
    }

    /// Names of the training augmentation for this dataset (CIFAR: crop with padding 4, flip).
    pub fn augmentation(&self) -> Vec<String> {
        if self.name.starts_with("cifar") {
            let [_, h, w] = self.input;
            vec![
                format!("RandomCrop({h}x{w}, padding=4)"),
                "RandomHorizontalFlip(p=0.5)".to_string(),
            ]
        } else {
            vec![]
        }
    }

    /// Loads `split`, resized to the model's input and (for training) augmented.
    pub fn load(&self, split: Split, augment: bool) -> Result<ImageDataset> {
        let mut opts = LoadOptions::default();
        if let Some(dir) = &self.data_dir {
            opts = opts.data_dir(dir.clone());
        }
        let [_, h, w] = self.input;
        let mut t = Compose::new();
        if [h, w] != [self.info.height, self.info.width] {
            t = t.then(Resize::exact(h, w));
        }
        if augment && self.name.starts_with("cifar") {
            t = t
                .then(RandomCrop::new(h, w).padding(4))
                .then(RandomHorizontalFlip::new(0.5));
        }
        if !t.is_empty() {
            opts = opts.transform(t);
        }
        Ok(load_by_name(self.name, split, &opts)?)
    }

    /// A loader over `split`: shuffled with `seed` for training, in order otherwise.
    pub fn loader(
        &self,
        split: Split,
        batch_size: usize,
        workers: usize,
        seed: u64,
    ) -> Result<DataLoader> {
        let train = split.is_train();
        let ds = self.load(split, train)?;
        // Each worker keeps 2 batches queued and builds a third; the consumer holds one.
        let in_flight = 3 * workers.max(1) + 1;
        check_batches_fit(batch_size.min(ds.len()), self.input, in_flight)?;
        let loader = DataLoader::new(ds)
            .batch_size(batch_size)
            .num_workers(workers);
        Ok(if train {
            loader.shuffle(seed)
        } else {
            loader.seed(seed)
        })
    }
}

/// Errors, naming the flags, unless `in_flight` batches of `batch` f32 images of shape `input`
/// (`[C, H, W]`) and their labels fit in the memory available: the least a run needs, checked
/// before anything is allocated.
pub fn check_batches_fit(batch: usize, input: [usize; 3], in_flight: usize) -> Result<()> {
    if input.contains(&0) {
        return Err(CliError::msg(format!(
            "--input {},{},{}: every size must be at least 1",
            input[0], input[1], input[2]
        )));
    }
    let bytes = input
        .iter()
        .try_fold(batch as u64, |acc, &d| acc.checked_mul(d as u64))
        .and_then(|n| n.checked_add(batch as u64 * 2))
        .and_then(|n| n.checked_mul(4))
        .and_then(|n| n.checked_mul(in_flight as u64));
    let what = format!(
        "{in_flight} batch(es) in flight of --batch-size {batch} {}x{}x{} images",
        input[0], input[1], input[2]
    );
    mlfw_data::memory::check_fits(bytes, &what, "lower --batch-size (or --workers, --input)")
        .map_err(|e| CliError::msg(e.to_string()))
}

/// Per-channel normalization `(x - mean) / std` of `[N, C, H, W]` batches, on a device.
#[derive(Debug, Clone)]
pub struct Normalize {
    mean: Tensor,
    std: Tensor,
}

impl Normalize {
    /// Normalization with the dataset's statistics, kept on `device`.
    pub fn new(mean: &[f32], std: &[f32], device: &Device) -> Result<Self> {
        let c = mean.len();
        Ok(Normalize {
            mean: Tensor::from_vec(mean.to_vec(), [1, c, 1, 1], device)?,
            std: Tensor::from_vec(std.to_vec(), [1, c, 1, 1], device)?,
        })
    }

    /// Moves `images` to the device and normalizes them.
    pub fn apply(&self, images: &Tensor) -> Result<Tensor> {
        let x = images.to(&self.mean.device())?;
        Ok(x.sub(&self.mean)?.div(&self.std)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_resized_to_the_model_input() {
        let spec = DataSpec::new("fake", "resnet18", None).unwrap();
        assert_eq!(spec.input, [1, 32, 32]);
        assert!(spec.augmentation().is_empty());
        let ds = spec.load(Split::Test, false).unwrap();
        assert_eq!(ds.get(0).unwrap().image.dims(), &[1, 32, 32]);
        let cifar = DataSpec::new("cifar10", "resnet18_cifar", None).unwrap();
        assert_eq!(cifar.augmentation().len(), 2);
    }

    #[test]
    fn normalize_matches_the_formula() {
        let n = Normalize::new(&[0.5], &[0.25], &Device::Cpu).unwrap();
        let x = Tensor::from_vec(vec![0.0f32, 1.0], [1, 1, 1, 2], &Device::Cpu).unwrap();
        assert_eq!(
            n.apply(&x).unwrap().to_vec::<f32>().unwrap(),
            vec![-2.0, 2.0]
        );
    }
}
