//! A class-per-folder image collection as training and validation sets: `root/train/<class>/`
//! and `root/val/<class>/`, or one `root/<class>/` tree split by a seeded, stratified fraction
//! (what `mlfw train --dataset folder:PATH [--val-split F]` reads).

use crate::image_folder::ImageFolder;
use crate::transforms::{CenterCrop, Compose, RandomHorizontalFlip, Resize};
use mlfw_core::{Error, Result};
use mlfw_data::{stratified_split, Dataset, Subset};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to read a folder dataset.
#[derive(Debug, Clone, Default)]
pub struct FolderOptions {
    /// Fraction of each class held out for validation when the folder has no `train/` and
    /// `val/` sub-folders (e.g. 0.1); without it such a folder has no validation set.
    /// Ignored for `train/` + `val/` folders.
    pub val_split: Option<f64>,
    /// Seed of the split.
    pub seed: u64,
    /// Decode every image up front and leave unreadable ones out (with a warning) instead of
    /// failing on them during training.
    pub skip_bad_images: bool,
}

/// Training and validation sets of a folder dataset, with its class names.
pub struct FolderSplits {
    /// Class names (sorted sub-folder names); label `i` is `classes[i]`.
    pub classes: Vec<String>,
    /// The training samples (with the training transform).
    pub train: Arc<dyn Dataset>,
    /// The validation samples (with the evaluation transform); `None` for a flat folder
    /// opened without `val_split` (see [`FolderSplits::val`]).
    pub val: Option<Arc<dyn Dataset>>,
    /// Files left out by `skip_bad_images`, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// `"train/ and val/"`, `"val-split 0.1 (seed 0)"` or `"no validation set"`: where the
    /// two sets came from.
    pub layout: String,
    root: PathBuf,
}

impl std::fmt::Debug for FolderSplits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderSplits")
            .field("root", &self.root)
            .field("classes", &self.classes)
            .field("train", &self.train.len())
            .field("val", &self.val.as_ref().map(|v| v.len()))
            .field("layout", &self.layout)
            .finish()
    }
}

impl FolderSplits {
    /// The validation set. Errors (naming the folder and the flag to pass) for a flat folder
    /// opened without `val_split`.
    ///
    /// # Errors
    /// `Error::File` naming the folder and the flag to pass (`val_split`) when there is no
    /// validation set.
    pub fn val(&self) -> Result<&Arc<dyn Dataset>> {
        self.val.as_ref().ok_or_else(|| Error::File {
            path: self.root.display().to_string(),
            msg: "has no train/ and val/ sub-folders; pass --val-split F (e.g. 0.1) to hold \
                  out a fraction of each class for validation"
                .into(),
        })
    }
}

/// The ImageNet evaluation preprocessing at `size`: resize the shorter side to
/// `round(size / 0.875)` (256 for 224), centre-crop `size × size`.
pub fn eval_transform(size: usize) -> Compose {
    Compose::new()
        .then(Resize::new((size as f64 / 0.875).round() as usize))
        .then(CenterCrop::new(size, size))
}

/// [`eval_transform`] followed by a random horizontal flip (p = 0.5).
pub fn train_transform(size: usize) -> Compose {
    eval_transform(size).then(RandomHorizontalFlip::new(0.5))
}

fn open(dir: &Path, opts: &FolderOptions) -> Result<ImageFolder> {
    let f = ImageFolder::builder(dir)
        .skip_invalid(opts.skip_bad_images)
        .build()?;
    // With skip_bad_images a class can lose every image: as bad as an empty class.
    for (label, class) in f.classes().iter().enumerate() {
        if !f.samples().iter().any(|(_, l)| *l == label as i64) {
            return Err(Error::File {
                path: dir.join(class).display().to_string(),
                msg: format!("class `{class}` has no readable image"),
            });
        }
    }
    Ok(f)
}

/// Opens the folder dataset at `root` with `train` / `eval` image transforms (decoded RGB
/// images in; the result is turned into an f32 `[3, H, W]` tensor in `[0, 1]`).
///
/// Layouts: `root/train/<class>/…` with `root/val/<class>/…` (the same classes), or
/// `root/<class>/…` split by `opts.val_split` (all of it for training without one). Errors
/// (naming the folder): not a folder, no class sub-folder, a class without (readable) images,
/// `train/` and `val/` with different classes, a split fraction outside `(0, 1)`.
///
/// # Errors
/// `Error::File` naming the folder when `root` is not a folder, has only one of `train/` and
/// `val/`, or is flat without `val_split`; as [`crate::image_folder::ImageFolderBuilder::build`]
/// for each folder; a `val_split` fraction outside `(0, 1)`.
pub fn open_folder_splits(
    root: &Path,
    opts: &FolderOptions,
    train: Compose,
    eval: Compose,
) -> Result<FolderSplits> {
    let file_err = |p: &Path, msg: String| Error::File {
        path: p.display().to_string(),
        msg,
    };
    if !root.is_dir() {
        return Err(file_err(root, "is not a folder".into()));
    }
    let (tdir, vdir) = (root.join("train"), root.join("val"));
    if tdir.is_dir() && vdir.is_dir() {
        let t = open(&tdir, opts)?;
        let v = open(&vdir, opts)?;
        if t.classes() != v.classes() {
            return Err(file_err(
                root,
                format!(
                    "train/ and val/ have different classes: {:?} and {:?}",
                    t.classes(),
                    v.classes()
                ),
            ));
        }
        let mut skipped = t.skipped().to_vec();
        skipped.extend_from_slice(v.skipped());
        return Ok(FolderSplits {
            classes: t.classes().to_vec(),
            train: Arc::new(t.with_transform(train)),
            val: Some(Arc::new(v.with_transform(eval))),
            skipped,
            layout: "train/ and val/".into(),
            root: root.to_path_buf(),
        });
    }
    let all = open(root, opts)?;
    let Some(fraction) = opts.val_split else {
        return Ok(FolderSplits {
            classes: all.classes().to_vec(),
            skipped: all.skipped().to_vec(),
            train: Arc::new(all.with_transform(train)),
            val: None,
            layout: "no validation set".into(),
            root: root.to_path_buf(),
        });
    };
    let labels: Vec<i64> = all.samples().iter().map(|(_, l)| *l).collect();
    let (ti, vi) = stratified_split(&labels, fraction, opts.seed)?;
    if ti.is_empty() || vi.is_empty() {
        return Err(file_err(
            root,
            format!(
                "{} images cannot be split into training and validation sets with \
                 --val-split {fraction}; every class needs at least 2 images",
                labels.len()
            ),
        ));
    }
    let t: Arc<dyn Dataset> = Arc::new(all.clone().with_transform(train));
    let v: Arc<dyn Dataset> = Arc::new(all.clone().with_transform(eval));
    Ok(FolderSplits {
        classes: all.classes().to_vec(),
        train: Arc::new(Subset::new(t, ti)?),
        val: Some(Arc::new(Subset::new(v, vi)?)),
        skipped: all.skipped().to_vec(),
        layout: format!("val-split {fraction} (seed {})", opts.seed),
        root: root.to_path_buf(),
    })
}
