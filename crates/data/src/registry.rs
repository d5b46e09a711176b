//! Datasets by name: `mnist-mini`, `mnist`, `fashion-mnist`, `kmnist`, `qmnist`,
//! `emnist-<split>` (byclass, bymerge, balanced, letters, digits, mnist), `cifar10`,
//! `cifar100`, `svhn`, `stl10`, `fake`, as the `mlfw` command line names them.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cifar::{Cifar10, Cifar100, Cifar100Labels};
use crate::collate::ImageFormat;
use crate::download::DownloadOptions;
use crate::emnist::Emnist;
use crate::error::{Error, Result};
use crate::fake::FakeData;
use crate::home::data_root;
use crate::image_dataset::ImageDataset;
use crate::info::{cifar100_info, cifar10_info, fake_info, DatasetInfo, Split};
use crate::mini::MnistMini;
use crate::mnist::MnistVariant;
use crate::qmnist::Qmnist;
use crate::resources::{EMNIST_SOURCE, QMNIST_SOURCE, STL10_SOURCE, SVHN_SOURCE};
use crate::rng::derive_seed;
use crate::stl10::Stl10;
use crate::svhn::Svhn;
use crate::transform::Transform;

/// Every dataset name the registry knows, in display order.
pub const DATASET_NAMES: [&str; 16] = [
    "mnist-mini",
    "mnist",
    "fashion-mnist",
    "kmnist",
    "qmnist",
    "emnist-byclass",
    "emnist-bymerge",
    "emnist-balanced",
    "emnist-letters",
    "emnist-digits",
    "emnist-mnist",
    "cifar10",
    "cifar100",
    "svhn",
    "stl10",
    "fake",
];

/// Every dataset name the registry knows.
pub fn dataset_names() -> &'static [&'static str] {
    &DATASET_NAMES
}

/// The canonical name for `name` (case-insensitive; `_` for `-`; `cifar-10` for `cifar10`...),
/// or an error listing the valid names.
///
/// # Errors
/// [`Error::UnknownDataset`] listing the valid names.
pub fn canonical_name(name: &str) -> Result<&'static str> {
    let n = name.trim().to_ascii_lowercase().replace('_', "-");
    let n = match n.as_str() {
        "fashionmnist" => "fashion-mnist",
        "cifar-10" => "cifar10",
        "cifar-100" => "cifar100",
        "mnistmini" => "mnist-mini",
        "fakedata" | "fake-data" => "fake",
        "stl-10" => "stl10",
        other => other,
    };
    DATASET_NAMES
        .iter()
        .copied()
        .find(|&k| k == n)
        .ok_or_else(|| Error::UnknownDataset {
            name: name.to_string(),
            valid: DATASET_NAMES.to_vec(),
        })
}

fn mnist_variant(name: &str) -> Option<MnistVariant> {
    match name {
        "mnist" => Some(MnistVariant::Mnist),
        "fashion-mnist" => Some(MnistVariant::Fashion),
        "kmnist" => Some(MnistVariant::Kmnist),
        _ => None,
    }
}

/// Metadata of the dataset called `name` (fine labels for `cifar100`).
///
/// # Errors
/// [`Error::UnknownDataset`] listing the valid names.
pub fn dataset_info(name: &str) -> Result<DatasetInfo> {
    let name = canonical_name(name)?;
    Ok(match name {
        "mnist-mini" => crate::info::mnist_mini_info(),
        "cifar10" => cifar10_info(),
        "cifar100" => cifar100_info(false),
        "fake" => fake_info([1, 28, 28], 10, FAKE_TRAIN_LEN, FAKE_TEST_LEN),
        "qmnist" => crate::qmnist::qmnist_info(),
        "svhn" => crate::svhn::svhn_info(),
        "stl10" => crate::stl10::stl10_info(),
        n if n.starts_with("emnist-") => crate::emnist::emnist_info(&n[7..])?,
        n => mnist_variant(n)
            .map(MnistVariant::info)
            .unwrap_or_else(crate::info::mnist_info),
    })
}

const FAKE_TRAIN_LEN: usize = 60_000;
const FAKE_TEST_LEN: usize = 10_000;

/// How [`load_by_name`] finds, fetches and presents a dataset.
#[derive(Clone)]
pub struct LoadOptions {
    /// Data root; `None` means [`data_root`] (`$MLFW_HOME/datasets`).
    pub root: Option<PathBuf>,
    /// A folder holding the dataset's files directly (`--data-dir`); wins over `root` and never
    /// downloads.
    pub data_dir: Option<PathBuf>,
    /// Download missing files into the root (default true).
    pub download: bool,
    /// Progress, timeout and retries for downloads.
    pub download_options: DownloadOptions,
    /// Mirrors (base URLs) to use instead of the official ones.
    pub mirrors: Option<Vec<String>>,
    /// CIFAR-100 label set (default fine).
    pub cifar100_labels: Cifar100Labels,
    /// Image format of samples (default f32 in `[0, 1]`).
    pub format: ImageFormat,
    /// Transform applied to every image.
    pub transform: Option<Arc<dyn Transform>>,
    /// Size of `fake` (default 60,000 train / 10,000 test).
    pub fake_len: Option<usize>,
    /// Seed of `fake` (default 0).
    pub fake_seed: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            root: None,
            data_dir: None,
            download: true,
            download_options: DownloadOptions::default(),
            mirrors: None,
            cifar100_labels: Cifar100Labels::Fine,
            format: ImageFormat::F32,
            transform: None,
            fake_len: None,
            fake_seed: 0,
        }
    }
}

impl LoadOptions {
    /// Sets the data root.
    pub fn root(mut self, root: impl Into<PathBuf>) -> Self {
        self.root = Some(root.into());
        self
    }

    /// Sets a folder holding the files directly (no download).
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Enables or disables downloading missing files.
    pub fn download(mut self, download: bool) -> Self {
        self.download = download;
        self
    }

    /// Sets the download options.
    pub fn download_options(mut self, opts: DownloadOptions) -> Self {
        self.download_options = opts;
        self
    }

    /// Uses these mirrors (base URLs) instead of the official ones.
    pub fn mirrors(mut self, mirrors: Vec<String>) -> Self {
        self.mirrors = Some(mirrors);
        self
    }

    /// Selects the CIFAR-100 label set.
    pub fn cifar100_labels(mut self, labels: Cifar100Labels) -> Self {
        self.cifar100_labels = labels;
        self
    }

    /// Sets the image format of samples.
    pub fn format(mut self, format: ImageFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets the transform applied to every image.
    pub fn transform(mut self, transform: impl Transform + 'static) -> Self {
        self.transform = Some(Arc::new(transform));
        self
    }

    /// Sets the size of the `fake` dataset.
    pub fn fake_len(mut self, len: usize) -> Self {
        self.fake_len = Some(len);
        self
    }
}

/// Loads the dataset called `name` (see [`DATASET_NAMES`]), split `split`.
///
/// Files are read from `opts.data_dir` when set, else from under the data root, downloading
/// them there first when missing and `opts.download` is on. `mnist-mini` and `fake` need no
/// file. Errors: an unknown name (listing the valid ones), missing files (saying where to put
/// them), or malformed files (naming the file and the problem).
///
/// # Errors
/// [`Error::UnknownDataset`] for an unknown `name`; then the loader's errors:
/// [`Error::MissingFiles`] (with the paths, and why the download did not happen or failed),
/// [`Error::Format`] naming a malformed file.
pub fn load_by_name(name: &str, split: Split, opts: &LoadOptions) -> Result<ImageDataset> {
    let name = canonical_name(name)?;
    let train = split.is_train();
    let root = opts.root.clone().unwrap_or_else(data_root);
    let mirrors = opts.mirrors.as_deref();
    let dl = &opts.download_options;
    let fetch = opts.download.then_some((mirrors, dl));
    let split_name = if train { "train" } else { "test" };
    let ds = match (name, &opts.data_dir) {
        ("mnist-mini", _) => MnistMini::new(train)?,
        ("fake", _) => {
            let len = opts
                .fake_len
                .unwrap_or(if train { FAKE_TRAIN_LEN } else { FAKE_TEST_LEN });
            let fake = FakeData::mnist_like(len, derive_seed(&[opts.fake_seed, train as u64]));
            ImageDataset::new(fake.to_image_set()?, fake_info([1, 28, 28], 10, len, len))
        }
        ("cifar10", Some(dir)) => Cifar10::from_dir(dir, train)?,
        ("cifar10", None) if opts.download => Cifar10::download(&root, train, mirrors, dl)?,
        ("cifar10", None) => Cifar10::new(&root, train)?,
        ("cifar100", Some(dir)) => Cifar100::from_dir(dir, train, opts.cifar100_labels)?,
        ("cifar100", None) if opts.download => {
            Cifar100::download(&root, train, opts.cifar100_labels, mirrors, dl)?
        }
        ("cifar100", None) => Cifar100::new(&root, train, opts.cifar100_labels)?,
        ("qmnist", Some(dir)) => Qmnist::from_dir(dir, train)?,
        ("qmnist", None) => Qmnist::load(&root, train, &QMNIST_SOURCE, fetch)?,
        ("svhn", Some(dir)) => Svhn::from_dir(dir, split_name)?,
        ("svhn", None) => Svhn::load(&root, split_name, &SVHN_SOURCE, fetch)?,
        ("stl10", Some(dir)) => Stl10::from_dir(dir, train)?,
        ("stl10", None) => Stl10::load(&root, train, &STL10_SOURCE, fetch)?,
        (n, Some(dir)) if n.starts_with("emnist-") => Emnist::from_dir(dir, &n[7..], train)?,
        (n, None) if n.starts_with("emnist-") => {
            Emnist::load(&root, &n[7..], train, &EMNIST_SOURCE, fetch)?
        }
        (n, dir) => {
            let v =
                mnist_variant(n).ok_or_else(|| Error::invalid(format!("no loader for `{n}`")))?;
            match dir {
                Some(dir) => v.load_dir(dir, train)?,
                None if opts.download => v.load_or_download(&root, train, mirrors, dl)?,
                None => v.load(&root, train)?,
            }
        }
    };
    let ds = ds.with_format(opts.format);
    Ok(match &opts.transform {
        Some(t) => ds.with_transform_arc(Arc::clone(t)),
        None => ds,
    })
}
