//! EMNIST (Cohen et al. 2017): handwritten characters from NIST SD 19 in MNIST's format, in
//! six splits. As in torchvision, images are kept as stored (transposed relative to MNIST)
//! and `letters` labels run 1..=26 with class 0 `N/A`.
//!
//! Files (torchvision's layout): `ROOT/EMNIST/raw/emnist-<split>-{train,test}-{images-idx3,
//! labels-idx1}-ubyte[.gz]`, extracted on first use from the official `gzip.zip` (kept in
//! the same folder).

use std::path::{Path, PathBuf};

use crate::download::DownloadOptions;
use crate::error::{Error, Result};
use crate::image_dataset::ImageDataset;
use crate::info::{gray, DatasetInfo};
use crate::mnist::read_mnist_pair;
use crate::resources::Source;
use crate::zip::read_zip_member;

/// The six EMNIST splits.
pub const EMNIST_SPLITS: [&str; 6] = [
    "byclass", "bymerge", "balanced", "letters", "digits", "mnist",
];

/// The class names of `split` (torchvision's `classes_split_dict`). Errors: an unknown split.
///
/// # Errors
/// [`Error::Invalid`] listing the valid splits for an unknown `split`.
pub fn emnist_classes(split: &str) -> Result<Vec<String>> {
    let digits = ('0'..='9').map(String::from);
    let upper = ('A'..='Z').map(String::from);
    let lower = |merged: bool| {
        ('a'..='z')
            .filter(move |c| !merged || !"cijklmopsuvwxyz".contains(*c))
            .map(String::from)
    };
    Ok(match split {
        "byclass" => digits.chain(upper).chain(lower(false)).collect(),
        "bymerge" | "balanced" => digits.chain(upper).chain(lower(true)).collect(),
        "letters" => std::iter::once("N/A".to_string())
            .chain(lower(false))
            .collect(),
        "digits" | "mnist" => digits.collect(),
        other => {
            return Err(Error::invalid(format!(
                "unknown EMNIST split `{other}`; valid: {}",
                EMNIST_SPLITS.join(", ")
            )))
        }
    })
}

/// The metadata of EMNIST `split` (registry name `emnist-<split>`; MNIST's normalization).
///
/// # Errors
/// [`Error::Invalid`] for an unknown `split`.
pub fn emnist_info(split: &str) -> Result<DatasetInfo> {
    let classes = emnist_classes(split)?;
    let (train, test) = match split {
        "byclass" | "bymerge" => (697_932, 116_323),
        "balanced" => (112_800, 18_800),
        "letters" => (124_800, 20_800),
        "digits" => (240_000, 40_000),
        _ => (60_000, 10_000),
    };
    let names: Vec<&str> = classes.iter().map(String::as_str).collect();
    Ok(gray(
        &format!("emnist-{split}"),
        0.1307,
        0.3081,
        train,
        test,
        &names,
    ))
}

/// The (images, labels) base names (without `.gz`) of a split's train or test files.
pub fn emnist_file_names(split: &str, train: bool) -> (String, String) {
    let t = if train { "train" } else { "test" };
    (
        format!("emnist-{split}-{t}-images-idx3-ubyte"),
        format!("emnist-{split}-{t}-labels-idx1-ubyte"),
    )
}

/// EMNIST loaders (a namespace, like torchvision's class).
pub struct Emnist;

impl Emnist {
    /// `ROOT/EMNIST/raw`.
    pub fn raw_dir(root: &Path) -> PathBuf {
        root.join("EMNIST").join("raw")
    }

    /// Loads `split` from `ROOT/EMNIST/raw`: the extracted files, else the two members of
    /// `gzip.zip` (downloaded from `source`, normally
    /// [`EMNIST_SOURCE`](crate::resources::EMNIST_SOURCE), when missing and
    /// `download` is given), extracted next to it.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown `split`; [`Error::MissingFiles`] when the files are absent
    /// and not downloaded (or the download failed); [`Error::Format`] naming the file for a
    /// malformed zip member or IDX file.
    pub fn load(
        root: &Path,
        split: &str,
        train: bool,
        source: &Source,
        download: Option<(Option<&[String]>, &DownloadOptions)>,
    ) -> Result<ImageDataset> {
        let dir = Self::raw_dir(root);
        if find(&dir, split, train)?.is_none() {
            let zip = source.fetch(&format!("emnist-{split}"), &["gzip.zip"], &dir, download)?;
            let (i, l) = emnist_file_names(split, train);
            for base in [i, l] {
                let member = format!("gzip/{base}.gz");
                let bytes = read_zip_member(&zip[0], &member)?;
                write_atomic(&dir.join(format!("{base}.gz")), &bytes)?;
            }
        }
        Self::from_dir(&dir, split, train)
    }

    /// Loads `split` from a folder holding the extracted files (raw or `.gz`; no download).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown `split`; [`Error::MissingFiles`] listing the exact paths;
    /// [`Error::Format`] for malformed IDX files.
    pub fn from_dir(dir: &Path, split: &str, train: bool) -> Result<ImageDataset> {
        let info = emnist_info(split)?;
        let Some((images, labels)) = find(dir, split, train)? else {
            let (i, l) = emnist_file_names(split, train);
            return Err(Error::MissingFiles {
                dataset: info.name,
                expected: vec![dir.join(format!("{i}.gz")), dir.join(format!("{l}.gz"))],
                reason: "not found".into(),
            });
        };
        let set = read_mnist_pair(&images, &labels, info.num_classes)?;
        Ok(ImageDataset::new(set, info))
    }
}

/// The (images, labels) paths of a split in `dir` (raw preferred over `.gz`), if both exist.
fn find(dir: &Path, split: &str, train: bool) -> Result<Option<(PathBuf, PathBuf)>> {
    emnist_classes(split)?;
    let one = |base: &str| {
        [dir.join(base), dir.join(format!("{base}.gz"))]
            .into_iter()
            .find(|p| p.is_file())
    };
    let (i, l) = emnist_file_names(split, train);
    Ok(one(&i).zip(one(&l)))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming", &tmp, e))
}
