//! QMNIST (Yadav & Bottou 2019): MNIST's 60,000 training digits and 60,000 test digits
//! reconstructed from NIST, as IDX files; labels are `[N, 8]` big-endian int32 rows (class,
//! NIST series, writer id, ...), of which the class (column 0) is used.
//!
//! Files (torchvision's layout): `ROOT/QMNIST/raw/qmnist-{train,test}-images-idx3-ubyte.gz`
//! and `qmnist-{train,test}-labels-idx2-int.gz`.

use std::path::{Path, PathBuf};

use crate::download::DownloadOptions;
use crate::error::{Error, Result};
use crate::idx::{read_idx, read_maybe_gz};
use crate::image_dataset::ImageDataset;
use crate::image_set::ImageSet;
use crate::info::{gray, DatasetInfo, DIGITS};
use crate::resources::{Source, QMNIST_SOURCE};

/// QMNIST's metadata: 60,000/60,000 28x28 digits, MNIST's normalization.
pub fn qmnist_info() -> DatasetInfo {
    gray("qmnist", 0.1307, 0.3081, 60_000, 60_000, &DIGITS)
}

/// The (images, labels) file names of a split.
pub fn qmnist_file_names(train: bool) -> (&'static str, &'static str) {
    if train {
        (
            "qmnist-train-images-idx3-ubyte.gz",
            "qmnist-train-labels-idx2-int.gz",
        )
    } else {
        (
            "qmnist-test-images-idx3-ubyte.gz",
            "qmnist-test-labels-idx2-int.gz",
        )
    }
}

/// QMNIST loaders (a namespace, like torchvision's class).
pub struct Qmnist;

impl Qmnist {
    /// `ROOT/QMNIST/raw`.
    pub fn raw_dir(root: &Path) -> PathBuf {
        root.join("QMNIST").join("raw")
    }

    /// Loads a split from `ROOT/QMNIST/raw`, downloading missing files first when `download`
    /// is given (mirrors — `None` for the official ones — and options) from `source`
    /// (normally [`QMNIST_SOURCE`]). Errors: missing files (listing the paths), malformed files.
    ///
    /// # Errors
    /// [`Error::MissingFiles`] when files are absent and not downloaded (or the download failed);
    /// [`Error::Format`] naming the file for malformed IDX data or image and label counts that
    /// disagree.
    pub fn load(
        root: &Path,
        train: bool,
        source: &Source,
        download: Option<(Option<&[String]>, &DownloadOptions)>,
    ) -> Result<ImageDataset> {
        let (i, l) = qmnist_file_names(train);
        let p = source.fetch("qmnist", &[i, l], &Self::raw_dir(root), download)?;
        read_pair(&p[0], &p[1])
    }

    /// Loads a split from the official mirrors' files in `ROOT/QMNIST/raw`, downloading them
    /// when missing.
    ///
    /// # Errors
    /// As [`Qmnist::load`].
    pub fn download(
        root: &Path,
        train: bool,
        mirrors: Option<&[String]>,
        opts: &DownloadOptions,
    ) -> Result<ImageDataset> {
        Self::load(root, train, &QMNIST_SOURCE, Some((mirrors, opts)))
    }

    /// Loads a split from a folder holding the standard file names (no download).
    ///
    /// # Errors
    /// As [`Qmnist::load`], without a download.
    pub fn from_dir(dir: &Path, train: bool) -> Result<ImageDataset> {
        let (i, l) = qmnist_file_names(train);
        QMNIST_SOURCE
            .fetch("qmnist", &[i, l], dir, None)
            .and_then(|p| read_pair(&p[0], &p[1]))
    }
}

fn read_pair(images: &Path, labels: &Path) -> Result<ImageDataset> {
    let img = read_idx(images)?;
    if img.dims.len() != 3 {
        return Err(Error::format(
            images,
            format!("expected images of dims [N, H, W], got {:?}", img.dims),
        ));
    }
    let lab = read_int_labels(labels)?;
    if lab.len() != img.dims[0] {
        return Err(Error::format(
            labels,
            format!("{} labels but {} images", lab.len(), img.dims[0]),
        ));
    }
    let set = ImageSet::new(
        img.data,
        lab,
        [1, img.dims[1], img.dims[2]],
        Some(10),
        &labels.display().to_string(),
    )?;
    Ok(ImageDataset::new(set, qmnist_info()))
}

/// Reads a QMNIST labels file (IDX, element type `0x0C` = big-endian int32, dims `[N, C]`)
/// and returns column 0 (the class). The header's size is checked against the file's length
/// before anything else is allocated (the decompressed bytes are bounded by the memory
/// available). Errors name the file.
///
/// # Errors
/// [`Error::Format`] naming the file: not IDX int32 `[N, C]`, a size that disagrees with the file's
/// length, or a corrupt gzip stream; [`Error::Io`] when unreadable.
pub fn read_int_labels(path: &Path) -> Result<Vec<i64>> {
    let bytes = read_maybe_gz(path)?;
    let bad = |m: String| Error::format(path, m);
    if bytes.len() < 12 || bytes[..4] != [0, 0, 0x0C, 2] {
        return Err(bad(
            "not a QMNIST labels file (expected the IDX header 00 00 0C 02: int32, 2 dims)".into(),
        ));
    }
    let dim = |k: usize| u32::from_be_bytes([bytes[k], bytes[k + 1], bytes[k + 2], bytes[k + 3]]);
    let (n, cols) = (dim(4) as u64, dim(8) as u64);
    let need = n.checked_mul(cols).and_then(|v| v.checked_mul(4));
    if cols == 0 || need != Some(bytes.len() as u64 - 12) {
        return Err(bad(format!(
            "dims [{n}, {cols}] need {} data bytes, the file holds {}",
            need.map_or("too many".into(), |v| v.to_string()),
            bytes.len() - 12
        )));
    }
    let row = cols as usize * 4;
    Ok(bytes[12..]
        .chunks_exact(row)
        .map(|r| i32::from_be_bytes([r[0], r[1], r[2], r[3]]) as i64)
        .collect())
}
