//! The MNIST family (MNIST, Fashion-MNIST, KMNIST) from IDX files, raw or gzipped.
//!
//! Files are looked up as torchvision lays them out, `ROOT/MNIST/raw/train-images-idx3-ubyte`
//! (or `.gz`), `ROOT/FashionMNIST/raw/...`, `ROOT/KMNIST/raw/...`, or directly in a folder
//! holding the four standard file names ([`Mnist::from_dir`]).

use std::path::{Path, PathBuf};

use crate::download::DownloadOptions;
use crate::error::{Error, Result};
use crate::idx::read_idx;
use crate::image_dataset::ImageDataset;
use crate::image_set::ImageSet;
use crate::info::{fashion_mnist_info, kmnist_info, mnist_info, DatasetInfo};
use crate::resources::{Source, FASHION_MNIST_SOURCE, KMNIST_SOURCE, MNIST_SOURCE};

/// Which member of the MNIST family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MnistVariant {
    /// Handwritten digits.
    Mnist,
    /// Zalando's clothing images.
    Fashion,
    /// Kuzushiji (cursive Japanese) characters.
    Kmnist,
}

/// The standard base names of a split's (images, labels) files, without `.gz`.
pub fn mnist_file_names(train: bool) -> (&'static str, &'static str) {
    if train {
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
    } else {
        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    }
}

impl MnistVariant {
    /// The folder under the data root, as torchvision names it (`MNIST`, `FashionMNIST`, `KMNIST`).
    pub fn folder(self) -> &'static str {
        match self {
            MnistVariant::Mnist => "MNIST",
            MnistVariant::Fashion => "FashionMNIST",
            MnistVariant::Kmnist => "KMNIST",
        }
    }

    /// Metadata (classes, normalization statistics, ...).
    pub fn info(self) -> DatasetInfo {
        match self {
            MnistVariant::Mnist => mnist_info(),
            MnistVariant::Fashion => fashion_mnist_info(),
            MnistVariant::Kmnist => kmnist_info(),
        }
    }

    /// Official mirrors and MD5 digests.
    pub fn source(self) -> &'static Source {
        match self {
            MnistVariant::Mnist => &MNIST_SOURCE,
            MnistVariant::Fashion => &FASHION_MNIST_SOURCE,
            MnistVariant::Kmnist => &KMNIST_SOURCE,
        }
    }

    /// `ROOT/<folder>/raw`, where files are read from and downloaded to.
    pub fn raw_dir(self, root: &Path) -> PathBuf {
        root.join(self.folder()).join("raw")
    }

    /// Loads a split from `ROOT/<folder>/raw`, without downloading.
    ///
    /// # Errors
    /// Files missing ([`Error::MissingFiles`], listing the exact paths) or malformed.
    pub fn load(self, root: &Path, train: bool) -> Result<ImageDataset> {
        self.load_dir_or_missing(&self.raw_dir(root), train, "download disabled".into())
    }

    /// Loads a split from `ROOT/<folder>/raw`, downloading the missing files first
    /// (from `mirrors`, or the official ones when `None`).
    ///
    /// # Errors
    /// As [`MnistVariant::load`] after the download; a failed download is [`Error::MissingFiles`]
    /// listing the paths and the download's error (where to place the files by hand).
    pub fn load_or_download(
        self,
        root: &Path,
        train: bool,
        mirrors: Option<&[String]>,
        opts: &DownloadOptions,
    ) -> Result<ImageDataset> {
        let dir = self.raw_dir(root);
        if find_files(&dir, train).is_some() {
            return self.load_dir(&dir, train);
        }
        let (images, labels) = mnist_file_names(train);
        for base in [images, labels] {
            let name = format!("{base}.gz");
            let res = match mirrors {
                Some(m) => self.source().download_from(m, &name, &dir, opts),
                None => self.source().download(&name, &dir, opts),
            };
            if let Err(e) = res {
                return self.load_dir_or_missing(&dir, train, format!("download failed: {e}"));
            }
        }
        self.load_dir(&dir, train)
    }

    /// Loads a split from a folder holding the standard file names (raw or `.gz`).
    ///
    /// # Errors
    /// [`Error::MissingFiles`] listing the exact paths; [`Error::Format`] naming the file for
    /// malformed IDX data, counts that disagree or labels out of range.
    pub fn load_dir(self, dir: &Path, train: bool) -> Result<ImageDataset> {
        self.load_dir_or_missing(dir, train, "not found".into())
    }

    fn load_dir_or_missing(self, dir: &Path, train: bool, reason: String) -> Result<ImageDataset> {
        let Some((images, labels)) = find_files(dir, train) else {
            let (i, l) = mnist_file_names(train);
            return Err(Error::MissingFiles {
                dataset: self.info().name,
                expected: vec![dir.join(format!("{i}.gz")), dir.join(format!("{l}.gz"))],
                reason,
            });
        };
        let set = read_mnist_pair(&images, &labels, self.info().num_classes)?;
        Ok(ImageDataset::new(set, self.info()))
    }
}

/// The (images, labels) paths of a split in `dir`, preferring raw files over `.gz`.
fn find_files(dir: &Path, train: bool) -> Option<(PathBuf, PathBuf)> {
    let find = |base: &str| {
        [dir.join(base), dir.join(format!("{base}.gz"))]
            .into_iter()
            .find(|p| p.is_file())
    };
    let (i, l) = mnist_file_names(train);
    Some((find(i)?, find(l)?))
}

/// Reads an IDX images file (`[N, H, W]`) and labels file (`[N]`) into an [`ImageSet`].
///
/// # Errors
/// Errors name the file: malformed IDX, wrong rank, counts that disagree, labels out of range.
pub fn read_mnist_pair(images: &Path, labels: &Path, num_classes: usize) -> Result<ImageSet> {
    let img = read_idx(images)?;
    let lab = read_idx(labels)?;
    mnist_from_idx(img, lab, num_classes, images, labels)
}

/// Builds an [`ImageSet`] from parsed IDX images and labels; paths are for messages.
pub(crate) fn mnist_from_idx(
    img: crate::idx::IdxArray,
    lab: crate::idx::IdxArray,
    num_classes: usize,
    images: &Path,
    labels: &Path,
) -> Result<ImageSet> {
    if img.dims.len() != 3 {
        return Err(Error::format(
            images,
            format!("expected images of dims [N, H, W], got {:?}", img.dims),
        ));
    }
    if lab.dims.len() != 1 {
        return Err(Error::format(
            labels,
            format!("expected labels of dims [N], got {:?}", lab.dims),
        ));
    }
    if lab.dims[0] != img.dims[0] {
        return Err(Error::format(
            labels,
            format!(
                "{} labels but {} has {} images",
                lab.dims[0],
                images.display(),
                img.dims[0]
            ),
        ));
    }
    let labels_i64: Vec<i64> = lab.data.iter().map(|&l| l as i64).collect();
    ImageSet::new(
        img.data,
        labels_i64,
        [1, img.dims[1], img.dims[2]],
        Some(num_classes),
        &labels.display().to_string(),
    )
}

/// MNIST handwritten digits (10 classes, 1x28x28).
pub struct Mnist;
/// Fashion-MNIST (10 classes, 1x28x28).
pub struct FashionMnist;
/// Kuzushiji-MNIST (10 classes, 1x28x28).
pub struct Kmnist;

macro_rules! mnist_loaders {
    ($ty:ident, $variant:expr, $folder:literal) => {
        // A namespace for loaders (like torchvision's classes): `new` returns the dataset.
        #[allow(clippy::new_ret_no_self)]
        impl $ty {
            #[doc = concat!("Loads a split from `ROOT/", $folder, "/raw` without downloading.")]
            ///
            /// # Errors
            /// As [`MnistVariant::load`].
            pub fn new(root: impl AsRef<Path>, train: bool) -> Result<ImageDataset> {
                $variant.load(root.as_ref(), train)
            }

            #[doc = concat!("Loads a split from `ROOT/", $folder, "/raw`, downloading missing files")]
            /// first (from `mirrors`, or the official ones when `None`). When the download fails
            /// the error says where to place the files.
            ///
            /// # Errors
            /// As [`MnistVariant::load_or_download`].
            pub fn download(
                root: impl AsRef<Path>,
                train: bool,
                mirrors: Option<&[String]>,
                opts: &DownloadOptions,
            ) -> Result<ImageDataset> {
                $variant.load_or_download(root.as_ref(), train, mirrors, opts)
            }

            /// Loads a split from a folder holding the standard file names (raw or `.gz`).
            ///
            /// # Errors
            /// As [`MnistVariant::load_dir`].
            pub fn from_dir(dir: impl AsRef<Path>, train: bool) -> Result<ImageDataset> {
                $variant.load_dir(dir.as_ref(), train)
            }
        }
    };
}

mnist_loaders!(Mnist, MnistVariant::Mnist, "MNIST");
mnist_loaders!(FashionMnist, MnistVariant::Fashion, "FashionMNIST");
mnist_loaders!(Kmnist, MnistVariant::Kmnist, "KMNIST");
