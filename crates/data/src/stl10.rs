//! STL-10 (Coates et al. 2011), binary version: 96x96 colour images of 10 classes, 5,000
//! train and 8,000 test (the 100,000 unlabeled images are not loaded). Each image is 3 planes
//! of 96x96 bytes stored column-major; labels are bytes 1..=10 (mapped to 0..=9).
//!
//! Read from `ROOT/STL10/stl10_binary.tar.gz` (members `stl10_binary/{train,test}_{X,y}.bin`)
//! or from a folder holding the extracted `{train,test}_{X,y}.bin`.

use std::path::{Path, PathBuf};

use crate::cifar_files::read_from_archive;
use crate::download::DownloadOptions;
use crate::error::{Error, Result};
use crate::idx::read_maybe_gz;
use crate::image_dataset::ImageDataset;
use crate::image_set::ImageSet;
use crate::info::DatasetInfo;
use crate::resources::{Source, STL10_SOURCE};
use crate::svhn::column_major_planes;

const SIDE: usize = 96;
const IMAGE_BYTES: usize = 3 * SIDE * SIDE;

/// STL-10's metadata.
pub fn stl10_info() -> DatasetInfo {
    DatasetInfo {
        name: "stl10".into(),
        num_classes: 10,
        channels: 3,
        height: SIDE,
        width: SIDE,
        mean: vec![0.4467, 0.4398, 0.4066],
        std: vec![0.2603, 0.2566, 0.2713],
        train_len: 5_000,
        test_len: 8_000,
        classes: [
            "airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    }
}

fn member_names(train: bool) -> (&'static str, &'static str) {
    if train {
        ("train_X.bin", "train_y.bin")
    } else {
        ("test_X.bin", "test_y.bin")
    }
}

/// STL-10 loaders (a namespace, like torchvision's class).
pub struct Stl10;

impl Stl10 {
    /// `ROOT/STL10`.
    pub fn dir(root: &Path) -> PathBuf {
        root.join("STL10")
    }

    /// Loads a split from `ROOT/STL10/stl10_binary.tar.gz`, downloading the archive from
    /// `source` (normally [`STL10_SOURCE`]) first when missing and `download` is given.
    ///
    /// # Errors
    /// [`Error::MissingFiles`] when the archive is absent and not downloaded (or the download
    /// failed); [`Error::Format`] naming the archive when corrupt, a member missing or of an
    /// impossible size.
    pub fn load(
        root: &Path,
        train: bool,
        source: &Source,
        download: Option<(Option<&[String]>, &DownloadOptions)>,
    ) -> Result<ImageDataset> {
        let p = source.fetch(
            "stl10",
            &["stl10_binary.tar.gz"],
            &Self::dir(root),
            download,
        )?;
        let (x, y) = member_names(train);
        let xs = read_from_archive(&p[0], "stl10_binary", &[x], IMAGE_BYTES as u64)?;
        let ys = read_from_archive(&p[0], "stl10_binary", &[y], 1)?;
        let (xname, xb) = &xs[0];
        build(xb, &ys[0].1, xname)
    }

    /// Loads a split from a folder holding the extracted `{train,test}_{X,y}.bin`.
    ///
    /// # Errors
    /// [`Error::MissingFiles`] listing the exact paths; [`Error::Format`] for files that are not
    /// whole records.
    pub fn from_dir(dir: &Path, train: bool) -> Result<ImageDataset> {
        let (x, y) = member_names(train);
        let p = STL10_SOURCE.fetch("stl10", &[x, y], dir, None)?;
        let (xb, yb) = (read_maybe_gz(&p[0])?, read_maybe_gz(&p[1])?);
        build(&xb, &yb, &p[0].display().to_string())
    }
}

/// Images from `x` (column-major planes) and labels 1..=10 from `y`; `name` for messages.
fn build(x: &[u8], y: &[u8], name: &str) -> Result<ImageDataset> {
    if !x.len().is_multiple_of(IMAGE_BYTES) || x.len() / IMAGE_BYTES != y.len() {
        return Err(Error::format(
            name,
            format!(
                "{} image bytes (whole {IMAGE_BYTES}-byte images expected) for {} labels",
                x.len(),
                y.len()
            ),
        ));
    }
    let labels = y
        .iter()
        .enumerate()
        .map(|(i, &l)| match l {
            1..=10 => Ok(l as i64 - 1),
            _ => Err(Error::format(
                name,
                format!("label {i} is {l}; STL-10 labels are 1..=10"),
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    let pixels = column_major_planes(x, y.len() * 3, SIDE, SIDE);
    let set = ImageSet::new(pixels, labels, [3, SIDE, SIDE], Some(10), name)?;
    Ok(ImageDataset::new(set, stl10_info()))
}
