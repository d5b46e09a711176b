//! CIFAR-10 and CIFAR-100 from the official binary archives.
//!
//! Under a root folder the files are found as `ROOT/cifar-10-batches-bin/*.bin` (extracted) or
//! read straight from `ROOT/cifar-10-binary.tar.gz`; likewise `cifar-100-binary/` and
//! `cifar-100-binary.tar.gz`. [`Cifar10::from_dir`] also accepts a folder holding the `.bin`
//! files themselves.

use std::path::Path;

use crate::cifar_files::{
    expected_paths, parse_files, read_split, CifarLayout, CIFAR100_LAYOUT, CIFAR10_LAYOUT,
};
use crate::download::DownloadOptions;
use crate::error::{Error, Result};
use crate::image_dataset::ImageDataset;
use crate::image_set::ImageSet;
use crate::info::{cifar100_info, cifar10_info, DatasetInfo};
use crate::resources::{Source, CIFAR100_SOURCE, CIFAR10_SOURCE};

/// Which CIFAR-100 labels to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cifar100Labels {
    /// The 100 fine classes (the default, as torchvision).
    #[default]
    Fine,
    /// The 20 coarse superclasses.
    Coarse,
}

/// CIFAR-10: 10 classes of 3x32x32 images.
pub struct Cifar10;

/// CIFAR-100: 100 fine (or 20 coarse) classes of 3x32x32 images.
pub struct Cifar100;

fn load(
    layout: &CifarLayout,
    dir: &Path,
    train: bool,
    label_column: usize,
    info: DatasetInfo,
    reason: &str,
) -> Result<ImageDataset> {
    let Some(files) = read_split(layout, dir, train)? else {
        return Err(Error::MissingFiles {
            dataset: layout.name.to_string(),
            expected: expected_paths(layout, dir, train),
            reason: reason.to_string(),
        });
    };
    let source = files.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
    let mut records = parse_files(&files, layout.label_limits)?;
    let labels = std::mem::take(&mut records.labels[label_column]);
    let set = ImageSet::new(records.pixels, labels, [3, 32, 32], Some(info.num_classes), &source)?;
    Ok(ImageDataset::new(set, info))
}

fn load_or_download(
    layout: &CifarLayout,
    source: &Source,
    root: &Path,
    train: bool,
    label_column: usize,
    info: DatasetInfo,
    mirrors: Option<&[String]>,
    opts: &DownloadOptions,
) -> Result<ImageDataset> {
    if read_split_present(layout, root, train) {
        return load(layout, root, train, label_column, info, "not found");
    }
    let res = match mirrors {
        Some(m) => source.download_from(m, layout.archive, root, opts),
        None => source.download(layout.archive, root, opts),
    };
    let reason = match res {
        Ok(_) => "not found".to_string(),
        Err(e) => format!("download failed: {e}"),
    };
    load(layout, root, train, label_column, info, &reason)
}

/// Whether a split's files (extracted or archived) are present under `dir`.
fn read_split_present(layout: &CifarLayout, dir: &Path, train: bool) -> bool {
    let files = if train { layout.train } else { layout.test };
    dir.join(layout.archive).is_file()
        || [dir.join(layout.folder), dir.to_path_buf()]
            .iter()
            .any(|d| files.iter().all(|f| d.join(f).is_file()))
}

impl Cifar10 {
    /// Loads a split from under `root` (extracted folder or archive), without downloading.
    ///
    /// Errors: files missing ([`Error::MissingFiles`] with the exact paths), a record file of
    /// the wrong length, a label out of range, or a corrupt archive (each naming the file).
    pub fn new(root: impl AsRef<Path>, train: bool) -> Result<ImageDataset> {
        load(&CIFAR10_LAYOUT, root.as_ref(), train, 0, cifar10_info(), "download disabled")
    }

    /// Loads a split from under `root`, downloading `cifar-10-binary.tar.gz` there if missing
    /// (from `mirrors`, or the official ones when `None`).
    pub fn download(
        root: impl AsRef<Path>,
        train: bool,
        mirrors: Option<&[String]>,
        opts: &DownloadOptions,
    ) -> Result<ImageDataset> {
        let (layout, info) = (&CIFAR10_LAYOUT, cifar10_info());
        load_or_download(layout, &CIFAR10_SOURCE, root.as_ref(), train, 0, info, mirrors, opts)
    }

    /// Loads a split from a folder holding the `.bin` files, the extracted folder, or the archive.
    pub fn from_dir(dir: impl AsRef<Path>, train: bool) -> Result<ImageDataset> {
        load(&CIFAR10_LAYOUT, dir.as_ref(), train, 0, cifar10_info(), "not found")
    }
}

fn column(labels: Cifar100Labels) -> usize {
    match labels {
        Cifar100Labels::Coarse => 0,
        Cifar100Labels::Fine => 1,
    }
}

fn info100(labels: Cifar100Labels) -> DatasetInfo {
    cifar100_info(labels == Cifar100Labels::Coarse)
}

impl Cifar100 {
    /// Loads a split from under `root` (extracted folder or archive), without downloading.
    ///
    /// Errors as [`Cifar10::new`].
    pub fn new(root: impl AsRef<Path>, train: bool, labels: Cifar100Labels) -> Result<ImageDataset> {
        let (c, info) = (column(labels), info100(labels));
        load(&CIFAR100_LAYOUT, root.as_ref(), train, c, info, "download disabled")
    }

    /// Loads a split from under `root`, downloading `cifar-100-binary.tar.gz` there if missing
    /// (from `mirrors`, or the official ones when `None`).
    pub fn download(
        root: impl AsRef<Path>,
        train: bool,
        labels: Cifar100Labels,
        mirrors: Option<&[String]>,
        opts: &DownloadOptions,
    ) -> Result<ImageDataset> {
        let (layout, c, info) = (&CIFAR100_LAYOUT, column(labels), info100(labels));
        load_or_download(layout, &CIFAR100_SOURCE, root.as_ref(), train, c, info, mirrors, opts)
    }

    /// Loads a split from a folder holding `train.bin`/`test.bin`, the extracted folder, or the
    /// archive.
    pub fn from_dir(
        dir: impl AsRef<Path>,
        train: bool,
        labels: Cifar100Labels,
    ) -> Result<ImageDataset> {
        let (c, info) = (column(labels), info100(labels));
        load(&CIFAR100_LAYOUT, dir.as_ref(), train, c, info, "not found")
    }
}
