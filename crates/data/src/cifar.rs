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

/// One CIFAR variant with its label choice.
struct Spec {
    layout: &'static CifarLayout,
    source: &'static Source,
    label_column: usize,
    info: DatasetInfo,
}

fn cifar10_spec() -> Spec {
    Spec {
        layout: &CIFAR10_LAYOUT,
        source: &CIFAR10_SOURCE,
        label_column: 0,
        info: cifar10_info(),
    }
}

fn cifar100_spec(labels: Cifar100Labels) -> Spec {
    let coarse = labels == Cifar100Labels::Coarse;
    Spec {
        layout: &CIFAR100_LAYOUT,
        source: &CIFAR100_SOURCE,
        // Records hold the coarse label byte first, then the fine one.
        label_column: if coarse { 0 } else { 1 },
        info: cifar100_info(coarse),
    }
}

fn load(spec: Spec, dir: &Path, train: bool, reason: &str) -> Result<ImageDataset> {
    let layout = spec.layout;
    let Some(files) = read_split(layout, dir, train)? else {
        return Err(Error::MissingFiles {
            dataset: layout.name.to_string(),
            expected: expected_paths(layout, dir, train),
            reason: reason.to_string(),
        });
    };
    let source = files
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut records = parse_files(&files, layout.label_limits)?;
    let labels = std::mem::take(&mut records.labels[spec.label_column]);
    let classes = Some(spec.info.num_classes);
    let set = ImageSet::new(records.pixels, labels, [3, 32, 32], classes, &source)?;
    Ok(ImageDataset::new(set, spec.info))
}

fn load_or_download(
    spec: Spec,
    root: &Path,
    train: bool,
    mirrors: Option<&[String]>,
    opts: &DownloadOptions,
) -> Result<ImageDataset> {
    if read_split_present(spec.layout, root, train) {
        return load(spec, root, train, "not found");
    }
    let archive = spec.layout.archive;
    let res = match mirrors {
        Some(m) => spec.source.download_from(m, archive, root, opts),
        None => spec.source.download(archive, root, opts),
    };
    let reason = match res {
        Ok(_) => "not found".to_string(),
        Err(e) => format!("download failed: {e}"),
    };
    load(spec, root, train, &reason)
}

/// Whether a split's files (extracted or archived) are present under `dir`.
fn read_split_present(layout: &CifarLayout, dir: &Path, train: bool) -> bool {
    let files = if train { layout.train } else { layout.test };
    dir.join(layout.archive).is_file()
        || [dir.join(layout.folder), dir.to_path_buf()]
            .iter()
            .any(|d| files.iter().all(|f| d.join(f).is_file()))
}

// Namespaces for loaders (like torchvision's classes): `new` returns the dataset.
#[allow(clippy::new_ret_no_self)]
impl Cifar10 {
    /// Loads a split from under `root` (extracted folder or archive), without downloading.
    ///
    /// # Errors
    /// Files missing ([`Error::MissingFiles`] with the exact paths), a record file of
    /// the wrong length, a label out of range, or a corrupt archive (each naming the file).
    pub fn new(root: impl AsRef<Path>, train: bool) -> Result<ImageDataset> {
        load(cifar10_spec(), root.as_ref(), train, "download disabled")
    }

    /// Loads a split from under `root`, downloading `cifar-10-binary.tar.gz` there if missing
    /// (from `mirrors`, or the official ones when `None`).
    ///
    /// # Errors
    /// As [`Cifar10::new`]; when the archive is missing and cannot be fetched,
    /// [`Error::MissingFiles`] naming the archive and the download's error (every mirror failed, or
    /// a checksum mismatch).
    pub fn download(
        root: impl AsRef<Path>,
        train: bool,
        mirrors: Option<&[String]>,
        opts: &DownloadOptions,
    ) -> Result<ImageDataset> {
        load_or_download(cifar10_spec(), root.as_ref(), train, mirrors, opts)
    }

    /// Loads a split from a folder holding the `.bin` files, the extracted folder, or the archive.
    ///
    /// # Errors
    /// As [`Cifar10::new`], for files under `dir`.
    pub fn from_dir(dir: impl AsRef<Path>, train: bool) -> Result<ImageDataset> {
        load(cifar10_spec(), dir.as_ref(), train, "not found")
    }
}

#[allow(clippy::new_ret_no_self)]
impl Cifar100 {
    /// Loads a split from under `root` (extracted folder or archive), without downloading.
    ///
    /// # Errors
    /// As [`Cifar10::new`].
    pub fn new(
        root: impl AsRef<Path>,
        train: bool,
        labels: Cifar100Labels,
    ) -> Result<ImageDataset> {
        load(
            cifar100_spec(labels),
            root.as_ref(),
            train,
            "download disabled",
        )
    }

    /// Loads a split from under `root`, downloading `cifar-100-binary.tar.gz` there if missing
    /// (from `mirrors`, or the official ones when `None`).
    ///
    /// # Errors
    /// As [`Cifar10::download`].
    pub fn download(
        root: impl AsRef<Path>,
        train: bool,
        labels: Cifar100Labels,
        mirrors: Option<&[String]>,
        opts: &DownloadOptions,
    ) -> Result<ImageDataset> {
        load_or_download(cifar100_spec(labels), root.as_ref(), train, mirrors, opts)
    }

    /// Loads a split from a folder holding `train.bin`/`test.bin`, the extracted folder, or the
    /// archive.
    ///
    /// # Errors
    /// As [`Cifar10::new`], for files under `dir`.
    pub fn from_dir(
        dir: impl AsRef<Path>,
        train: bool,
        labels: Cifar100Labels,
    ) -> Result<ImageDataset> {
        load(cifar100_spec(labels), dir.as_ref(), train, "not found")
    }
}
