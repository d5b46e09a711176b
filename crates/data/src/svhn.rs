//! SVHN (Street View House Numbers), cropped 32x32 digits, from the official `.mat` files
//! (`X`: uint8 `[32, 32, 3, N]`, `y`: `[N, 1]` with 10 standing for the digit 0, as
//! torchvision maps it).
//!
//! Files: `ROOT/SVHN/{train,test,extra}_32x32.mat` (torchvision keeps them in `ROOT`; mlfw
//! gives each dataset its own folder).

use std::path::{Path, PathBuf};

use crate::download::DownloadOptions;
use crate::error::{Error, Result};
use crate::image_dataset::ImageDataset;
use crate::image_set::ImageSet;
use crate::info::{DatasetInfo, DIGITS};
use crate::mat5::{read_mat, MatData};
use crate::resources::{Source, SVHN_SOURCE};

/// SVHN's metadata: 73,257 train / 26,032 test 3x32x32 digits; torchvision-style statistics.
pub fn svhn_info() -> DatasetInfo {
    DatasetInfo {
        name: "svhn".into(),
        num_classes: 10,
        channels: 3,
        height: 32,
        width: 32,
        mean: vec![0.4377, 0.4438, 0.4728],
        std: vec![0.1980, 0.2010, 0.1970],
        train_len: 73_257,
        test_len: 26_032,
        classes: DIGITS.iter().map(|s| s.to_string()).collect(),
    }
}

/// The `.mat` file of a split: `train`, `test` or `extra`.
///
/// # Errors
/// [`Error::Invalid`] for a split other than `train`, `test` or `extra`.
pub fn svhn_file_name(split: &str) -> Result<&'static str> {
    match split {
        "train" => Ok("train_32x32.mat"),
        "test" => Ok("test_32x32.mat"),
        "extra" => Ok("extra_32x32.mat"),
        other => Err(Error::invalid(format!(
            "unknown SVHN split `{other}`; valid: train, test, extra"
        ))),
    }
}

/// SVHN loaders (a namespace, like torchvision's class).
pub struct Svhn;

impl Svhn {
    /// `ROOT/SVHN`.
    pub fn dir(root: &Path) -> PathBuf {
        root.join("SVHN")
    }

    /// Loads `split` (`train`, `test`, `extra`) from `ROOT/SVHN`, downloading the file from
    /// `source` (normally [`SVHN_SOURCE`]) first when missing and `download` is given.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown `split`; [`Error::MissingFiles`] when the file is absent
    /// and not downloaded (or the download failed); as [`read_svhn`] for its contents.
    pub fn load(
        root: &Path,
        split: &str,
        source: &Source,
        download: Option<(Option<&[String]>, &DownloadOptions)>,
    ) -> Result<ImageDataset> {
        let name = svhn_file_name(split)?;
        let p = source.fetch("svhn", &[name], &Self::dir(root), download)?;
        read_svhn(&p[0])
    }

    /// Loads `split` from a folder holding the `.mat` file (no download).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown `split`; [`Error::MissingFiles`] with the exact path; as
    /// [`read_svhn`] for its contents.
    pub fn from_dir(dir: &Path, split: &str) -> Result<ImageDataset> {
        let name = svhn_file_name(split)?;
        let p = SVHN_SOURCE.fetch("svhn", &[name], dir, None)?;
        read_svhn(&p[0])
    }
}

/// Reads an SVHN `.mat` file into 3x32x32 images (labels 10 → 0).
///
/// # Errors
/// Errors name the file: no `X` or `y`, `X` not uint8 `[H, W, 3, N]`, `y` not `N` labels in
/// 1..=10.
pub fn read_svhn(path: &Path) -> Result<ImageDataset> {
    let arrays = read_mat(path)?;
    let get = |n: &str| {
        arrays
            .iter()
            .find(|a| a.name == n)
            .ok_or_else(|| Error::format(path, format!("no `{n}` array")))
    };
    let (x, y) = (get("X")?, get("y")?);
    let MatData::U8(px) = &x.data else {
        return Err(Error::format(path, "`X` is not uint8"));
    };
    let [h, w, c, n] = x.dims[..] else {
        return Err(Error::format(
            path,
            format!("`X` has dims {:?}, expected [H, W, 3, N]", x.dims),
        ));
    };
    if c != 3 || y.data.len() != n {
        return Err(Error::format(
            path,
            format!(
                "`X` {:?} and `y` {:?} do not describe N RGB images with N labels",
                x.dims, y.dims
            ),
        ));
    }
    let labels = (0..n)
        .map(|i| match y.data.get(i) {
            Some(v) if v.fract() == 0.0 && (1.0..=10.0).contains(&v) => Ok(v as i64 % 10),
            v => Err(Error::format(
                path,
                format!("label {i} is {v:?}; SVHN labels are 1..=10"),
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    let pixels = column_major_planes(px, n * c, h, w);
    let set = ImageSet::new(
        pixels,
        labels,
        [c, h, w],
        Some(10),
        &path.display().to_string(),
    )?;
    Ok(ImageDataset::new(set, svhn_info()))
}

/// `planes` consecutive `h × w` planes stored column-major (the first index, the row, varies
/// fastest: MATLAB's and STL-10's layout) → row-major planes.
pub(crate) fn column_major_planes(src: &[u8], planes: usize, h: usize, w: usize) -> Vec<u8> {
    let mut out = vec![0u8; planes * h * w];
    for (p, plane) in out.chunks_exact_mut(h * w).enumerate() {
        let s = &src[p * h * w..(p + 1) * h * w];
        for r in 0..h {
            for c in 0..w {
                plane[r * w + c] = s[c * h + r];
            }
        }
    }
    out
}
