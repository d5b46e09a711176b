//! Datasets as the commands use them: metadata, the model's input size, normalization (done on
//! the device, per batch) and training augmentation (done per sample in loader workers).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use mlfw_core::{Device, Tensor};
use mlfw_data::{load_by_name, DataLoader, Dataset, DatasetInfo, ImageDataset, LoadOptions, Split};
use mlfw_vision::folder_splits::{
    eval_transform, open_folder_splits, train_transform, FolderOptions, FolderSplits,
};
use mlfw_vision::transforms::{Compose, RandomCrop, RandomHorizontalFlip, Resize};

use crate::error::{CliError, Result};
use crate::models;

/// The name `--dataset folder:PATH` gives a folder dataset (its path is in the spec).
pub const FOLDER: &str = "folder";

/// The folder of a `folder:PATH` (or `imagefolder:PATH`) dataset argument.
pub fn folder_path(dataset: &str) -> Option<&Path> {
    dataset
        .strip_prefix("folder:")
        .or_else(|| dataset.strip_prefix("imagefolder:"))
        .map(Path::new)
}

/// The flags of a `folder:PATH` dataset (shared by train, eval and predict).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FolderArgs {
    /// Fraction of each class of a folder:PATH dataset held out for validation (seeded by
    /// --seed), when PATH has no train/ and val/ sub-folders.
    #[arg(long)]
    pub val_split: Option<f64>,
    /// Leave unreadable images of a folder dataset out (each named in a warning) instead of
    /// stopping with an error naming the file.
    #[arg(long)]
    pub skip_bad_images: bool,
    /// Image size of a folder dataset: shorter side resized to size/0.875, centre crop
    /// size x size [default: the model's, 224 for the ImageNet models].
    #[arg(long)]
    pub image_size: Option<usize>,
}

impl FolderArgs {
    /// The folder options with the split seeded by `seed`.
    pub fn options(&self, seed: u64) -> FolderOptions {
        FolderOptions {
            val_split: self.val_split,
            seed,
            skip_bad_images: self.skip_bad_images,
        }
    }
}

/// A dataset prepared for a model.
#[derive(Debug, Clone)]
pub struct DataSpec {
    /// Canonical dataset name ([`FOLDER`] for `folder:PATH`).
    pub name: &'static str,
    /// Its metadata (classes, image shape, mean/std).
    pub info: DatasetInfo,
    /// The `[C, H, W]` input the model is fed.
    pub input: [usize; 3],
    /// Folder holding the files (`--data-dir`), if given.
    pub data_dir: Option<PathBuf>,
    /// The opened image folder of a `folder:PATH` dataset.
    pub folder: Option<Arc<FolderSplits>>,
}

impl DataSpec {
    /// The spec of `dataset` for `model` (canonical names). The options of a `folder:PATH`
    /// dataset say how to split and read it, and the image size (default: the model's, 224 for the ImageNet models), which the
    /// ImageNet preprocessing crops to after resizing the shorter side to `size / 0.875`.
    /// Normalization uses the model's mean and std (ImageNet's for the pretrained models).
    ///
    /// # Errors
    /// An image-size, val-split or skip-bad-images flag given for a dataset that is not
    /// `folder:PATH`; an unknown dataset; a folder dataset that cannot be read or split.
    pub fn open(
        dataset: &str,
        model: &str,
        data_dir: Option<PathBuf>,
        folder: &FolderOptions,
        image_size: Option<usize>,
    ) -> Result<Self> {
        if let Some(root) = folder_path(dataset) {
            return Self::folder(root, model, folder, image_size);
        }
        let flags = [
            ("--image-size", image_size.is_some()),
            ("--val-split", folder.val_split.is_some()),
            ("--skip-bad-images", folder.skip_bad_images),
        ];
        if let Some((flag, _)) = flags.iter().find(|(_, set)| *set) {
            return Err(CliError::msg(format!(
                "{flag} applies to --dataset folder:PATH only ({dataset} has its own sizes \
                 and splits)"
            )));
        }
        let name = mlfw_data::registry::canonical_name(dataset)?;
        let info = mlfw_data::dataset_info(name)?;
        let input = models::input_shape(model, info.image_shape());
        Ok(DataSpec {
            name,
            info,
            input,
            data_dir,
            folder: None,
        })
    }

    fn folder(root: &Path, model: &str, opts: &FolderOptions, size: Option<usize>) -> Result<Self> {
        let mi = models::model_metadata(model, 3)?;
        let size = size.unwrap_or(mi.input_shape[1]);
        if size < mi.min_size || (!mi.any_size && size != mi.input_shape[1]) {
            return Err(CliError::msg(format!(
                "--image-size {size}: {model} takes {}",
                if mi.any_size {
                    format!("images of at least {0}x{0}", mi.min_size)
                } else {
                    format!("{0}x{0} images only", mi.input_shape[1])
                }
            )));
        }
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let splits = open_folder_splits(&root, opts, train_transform(size), eval_transform(size))?;
        if opts.val_split.is_some() && splits.layout == "train/ and val/" {
            eprintln!(
                "warning: {} has train/ and val/ sub-folders: --val-split is not used",
                root.display()
            );
        }
        let info = DatasetInfo {
            name: format!("folder:{}", root.display()),
            num_classes: splits.classes.len(),
            channels: 3,
            height: size,
            width: size,
            mean: mi.mean.clone(),
            std: mi.std.clone(),
            train_len: splits.train.len(),
            test_len: splits.val.as_ref().map_or(0, |v| v.len()),
            classes: splits.classes.clone(),
        };
        Ok(DataSpec {
            name: FOLDER,
            info,
            input: [3, size, size],
            data_dir: None,
            folder: Some(Arc::new(splits)),
        })
    }

    /// The spec of a run's dataset, as its settings describe it (folder datasets: the split,
    /// seed, bad-image policy and image size it was made with).
    ///
    /// # Errors
    /// As [`DataSpec::open`] with the run's settings.
    pub fn for_run(cfg: &crate::run_dir::RunConfig) -> Result<Self> {
        let folder = FolderOptions {
            val_split: cfg.val_split,
            seed: cfg.seed,
            skip_bad_images: cfg.skip_bad_images,
        };
        let size = folder_path(&cfg.dataset).map(|_| cfg.input_shape[1]);
        Self::open(
            &cfg.dataset,
            &cfg.model,
            cfg.data_dir.clone(),
            &folder,
            size,
        )
    }

    /// The dataset as a run's `config.json` records it: the canonical name, or `folder:PATH`
    /// with the absolute path.
    pub fn config_name(&self) -> String {
        match &self.folder {
            Some(_) => self.info.name.clone(),
            None => self.name.to_string(),
        }
    }

    /// Names of the training augmentation for this dataset (CIFAR: crop with padding 4, flip).
    pub fn augmentation(&self) -> Vec<String> {
        if self.folder.is_some() {
            let s = self.input[1];
            vec![
                format!("Resize({})", (s as f64 / 0.875).round()),
                format!("CenterCrop({s}x{s})"),
                "RandomHorizontalFlip(p=0.5)".to_string(),
            ]
        } else if self.name.starts_with("cifar") {
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
    ///
    /// # Errors
    /// The dataset's files missing or unreadable (not downloaded, corrupt).
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
    ///
    /// # Errors
    /// As [`DataSpec::load`]; a folder dataset without a validation split; batches that do not fit
    /// in memory (see [`check_batches_fit`]).
    pub fn loader(
        &self,
        split: Split,
        batch_size: usize,
        workers: usize,
        seed: u64,
    ) -> Result<DataLoader> {
        let train = split.is_train();
        let ds: Arc<dyn Dataset> = match &self.folder {
            Some(f) if train => Arc::clone(&f.train),
            Some(f) => Arc::clone(f.val()?),
            None => Arc::new(self.load(split, train)?),
        };
        // Each worker keeps 2 batches queued and builds a third; the consumer holds one.
        let in_flight = 3 * workers.max(1) + 1;
        check_batches_fit(batch_size.min(ds.len()), self.input, in_flight)?;
        let loader = DataLoader::from_arc(ds)
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
///
/// # Errors
/// A size of 0 in `input`; batches whose size overflows or exceeds the available memory (the
/// message names the flags to lower).
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
    ///
    /// # Errors
    /// `device` is not available.
    pub fn new(mean: &[f32], std: &[f32], device: &Device) -> Result<Self> {
        let c = mean.len();
        Ok(Normalize {
            mean: Tensor::from_vec(mean.to_vec(), [1, c, 1, 1], device)?,
            std: Tensor::from_vec(std.to_vec(), [1, c, 1, 1], device)?,
        })
    }

    /// Moves `images` to the device and normalizes them.
    ///
    /// # Errors
    /// `images` is not `[N, C, H, W]` with this normalization's `C` channels.
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
        let spec =
            DataSpec::open("fake", "resnet18", None, &FolderOptions::default(), None).unwrap();
        assert_eq!(spec.input, [1, 32, 32]);
        assert!(spec.augmentation().is_empty());
        let ds = spec.load(Split::Test, false).unwrap();
        assert_eq!(ds.get(0).unwrap().image.dims(), &[1, 32, 32]);
        let cifar = DataSpec::open(
            "cifar10",
            "resnet18_cifar",
            None,
            &FolderOptions::default(),
            None,
        )
        .unwrap();
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
