//! `ImageFolder`: a dataset with one sub-folder per class (torchvision's `ImageFolder`).

use crate::transforms::{ImageTransform, Img, Rng};
use image::DynamicImage;
use mlfw_core::{Error, Result};

use crate::pixel_budget;
use mlfw_data::{Dataset, DatasetInfo, Sample};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File extensions `ImageFolder` reads (case-insensitive).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// How decoded images are converted before the transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMode {
    /// 8-bit RGB, as torchvision's default loader (`convert("RGB")`).
    #[default]
    Rgb,
    /// 8-bit gray (`convert("L")`).
    Gray,
    /// Whatever the file holds (8-bit gray, gray+alpha, RGB or RGBA).
    Keep,
}

/// Images under `root/<class>/**/<file>.{png,jpg,jpeg}`; classes are the sub-folder names,
/// sorted, numbered from 0 (as torchvision). Files are listed sorted, recursively.
///
/// Images are decoded in `get` (so in loader workers): converted per [`ColorMode`], passed
/// through the transform (an [`ImageTransform`] on [`Img::Image`]), and turned into an f32
/// `[C, H, W]` tensor in `[0, 1]` if the transform did not already make a tensor. A file that
/// cannot be decoded is an error naming it, unless [`ImageFolderBuilder::skip_invalid`] was set:
/// then every file is decoded once when the dataset is built and unreadable ones are left out
/// with a warning (see [`ImageFolder::skipped`]).
#[derive(Clone)]
pub struct ImageFolder {
    root: PathBuf,
    classes: Vec<String>,
    samples: Vec<(PathBuf, i64)>,
    skipped: Vec<(PathBuf, String)>,
    color: ColorMode,
    transform: Option<Arc<dyn ImageTransform>>,
}

impl std::fmt::Debug for ImageFolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageFolder")
            .field("root", &self.root)
            .field("classes", &self.classes.len())
            .field("samples", &self.samples.len())
            .field("skipped", &self.skipped.len())
            .finish()
    }
}

/// Options for [`ImageFolder`]; finish with [`build`](ImageFolderBuilder::build).
#[derive(Clone)]
pub struct ImageFolderBuilder {
    root: PathBuf,
    color: ColorMode,
    transform: Option<Arc<dyn ImageTransform>>,
    skip_invalid: bool,
    allow_empty: bool,
}

impl ImageFolderBuilder {
    /// The colour conversion (RGB by default).
    pub fn color(mut self, c: ColorMode) -> Self {
        self.color = c;
        self
    }

    /// The transform applied to each decoded image.
    pub fn transform(mut self, t: impl ImageTransform + 'static) -> Self {
        self.transform = Some(Arc::new(t));
        self
    }

    /// Decodes every file at build time and skips unreadable ones with a warning on stderr.
    pub fn skip_invalid(mut self, on: bool) -> Self {
        self.skip_invalid = on;
        self
    }

    /// Accepts class folders without images (torchvision's `allow_empty`).
    pub fn allow_empty(mut self, on: bool) -> Self {
        self.allow_empty = on;
        self
    }

    /// Lists the classes and files.
    ///
    /// # Errors
    /// `Error::File` when `root` is not a readable folder, it has no class sub-folder, or a class
    /// has no image (unless `allow_empty`).
    pub fn build(self) -> Result<ImageFolder> {
        let root = self.root;
        let file_err = |p: &Path, msg: String| Error::File {
            path: p.display().to_string(),
            msg,
        };
        let mut classes = Vec::new();
        let entries = std::fs::read_dir(&root)
            .map_err(|e| file_err(&root, format!("cannot read the dataset folder: {e}")))?;
        for e in entries {
            let e = e.map_err(|e| file_err(&root, format!("cannot list: {e}")))?;
            if e.path().is_dir() {
                classes.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        classes.sort();
        if classes.is_empty() {
            return Err(file_err(
                &root,
                "no class sub-folder found (expected root/<class>/<image>)".into(),
            ));
        }
        let mut samples = Vec::new();
        let mut skipped = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let mut files = Vec::new();
            list_images(&root.join(class), &mut files)?;
            files.sort();
            if files.is_empty() && !self.allow_empty {
                return Err(file_err(
                    &root.join(class),
                    format!(
                        "class `{class}` has no image file (extensions: {}); add images to \
                         it or remove the folder (in code, `allow_empty(true)` accepts it)",
                        IMAGE_EXTENSIONS.join(", ")
                    ),
                ));
            }
            for f in files {
                if self.skip_invalid {
                    if let Err(e) = decode(&f, self.color) {
                        eprintln!("warning: mlfw-vision ImageFolder: skipping {e}");
                        skipped.push((f, e.to_string()));
                        continue;
                    }
                }
                samples.push((f, label as i64));
            }
        }
        Ok(ImageFolder {
            root,
            classes,
            samples,
            skipped,
            color: self.color,
            transform: self.transform,
        })
    }
}

/// Appends the image files under `dir` (recursively, following links).
fn list_images(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::File {
        path: dir.display().to_string(),
        msg: format!("cannot read folder: {e}"),
    })?;
    for e in entries {
        let p = e
            .map_err(|e| Error::File {
                path: dir.display().to_string(),
                msg: format!("cannot list: {e}"),
            })?
            .path();
        if p.is_dir() {
            list_images(&p, out)?;
        } else if is_image_file(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// Whether `p` has an extension `ImageFolder` reads.
pub fn is_image_file(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Decodes `path` and converts it per `color`.
///
/// The header's width and height are checked against the pixel budget
/// ([`crate::pixel_budget`], env `MLFW_MAX_IMAGE_PIXELS`) before any pixel is decoded.
///
/// # Errors
/// Errors name the file: not a regular file (a FIFO is refused before it is opened), cannot
/// be read or decoded, or declares more pixels than the budget.
pub fn decode(path: &Path, color: ColorMode) -> Result<DynamicImage> {
    decode_with_budget(path, color, pixel_budget::max_image_pixels()?)
}

/// [`decode`] with an explicit pixel budget (`None`: no limit) instead of the environment's.
///
/// # Errors
/// As [`decode`].
pub fn decode_with_budget(
    path: &Path,
    color: ColorMode,
    budget: Option<u64>,
) -> Result<DynamicImage> {
    let origin = path.display().to_string();
    let err = |msg: String| Error::File {
        path: origin.clone(),
        msg,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot open image: {e}")))?;
    if !meta.is_file() {
        return Err(err(
            "is not a regular file (a FIFO, socket, device or folder)".into(),
        ));
    }
    let open = || {
        image::ImageReader::open(path)
            .map_err(|e| err(format!("cannot open image: {e}")))?
            .with_guessed_format()
            .map_err(|e| err(format!("cannot read image: {e}")))
    };
    let (w, h) = open()?
        .into_dimensions()
        .map_err(|e| err(format!("cannot decode image: {e}")))?;
    pixel_budget::check_pixels(&origin, w, h, budget)?;
    let mut reader = open()?;
    reader.limits(pixel_budget::decoder_limits(budget));
    let img = reader
        .decode()
        .map_err(|e| err(format!("cannot decode image: {e}")))?;
    Ok(match color {
        ColorMode::Rgb => DynamicImage::ImageRgb8(img.to_rgb8()),
        ColorMode::Gray => DynamicImage::ImageLuma8(img.to_luma8()),
        ColorMode::Keep => img,
    })
}

impl ImageFolder {
    /// The dataset under `root` with default options (RGB, no transform, errors on bad files).
    ///
    /// # Errors
    /// As [`ImageFolderBuilder::build`].
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        Self::builder(root).build()
    }

    /// Options for a dataset under `root`.
    pub fn builder(root: impl AsRef<Path>) -> ImageFolderBuilder {
        ImageFolderBuilder {
            root: root.as_ref().to_path_buf(),
            color: ColorMode::Rgb,
            transform: None,
            skip_invalid: false,
            allow_empty: false,
        }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Class names, sorted; a sample's label indexes this list.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Class name → label (torchvision's `class_to_idx`).
    pub fn class_to_idx(&self) -> HashMap<String, usize> {
        self.classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect()
    }

    /// `(file, label)` of every sample, in order.
    pub fn samples(&self) -> &[(PathBuf, i64)] {
        &self.samples
    }

    /// Files left out by `skip_invalid`, with the reason.
    pub fn skipped(&self) -> &[(PathBuf, String)] {
        &self.skipped
    }

    /// Replaces the transform.
    pub fn with_transform(mut self, t: impl ImageTransform + 'static) -> Self {
        self.transform = Some(Arc::new(t));
        self
    }

    /// The decoded (colour-converted) image of sample `index`, before the transform.
    ///
    /// # Errors
    /// `Error::IndexOutOfRange` for `index >= len`; `Error::File` naming the file when it cannot be
    /// read or decoded.
    pub fn image(&self, index: usize) -> Result<DynamicImage> {
        let (path, _) = self.samples.get(index).ok_or(Error::IndexOutOfRange {
            op: "ImageFolder",
            index: index as i64,
            size: self.samples.len(),
        })?;
        // Unreadable files were left out at build time with `skip_invalid`: say how.
        decode(path, self.color).map_err(|e| match e {
            Error::File { path, msg } => Error::File {
                path,
                msg: format!(
                    "{msg} (ImageFolder's skip_invalid(true), `--skip-bad-images` in `mlfw`, \
                     leaves unreadable files out)"
                ),
            },
            e => e,
        })
    }

    /// Sample `index` with augmentation drawn from `seed`.
    ///
    /// # Errors
    /// As [`ImageFolder::image`], then the transform's errors.
    pub fn sample(&self, index: usize, seed: u64) -> Result<Sample> {
        let img = Img::Image(self.image(index)?);
        let out = match &self.transform {
            Some(t) => t.apply_img(img, &mut Rng::new(seed)).map_err(|e| {
                e.context(format!("transforming {}", self.samples[index].0.display()))
            })?,
            None => img,
        };
        Ok(Sample {
            image: out.into_tensor()?,
            label: self.samples[index].1,
        })
    }
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn get(&self, index: usize) -> mlfw_data::Result<Sample> {
        Ok(self.sample(index, mlfw_data::dataset::default_seed(index))?)
    }

    fn get_seeded(&self, index: usize, seed: u64) -> mlfw_data::Result<Sample> {
        Ok(self.sample(index, seed)?)
    }

    /// Classes and channels; height and width are 0 (files may differ in size).
    fn info(&self) -> Option<DatasetInfo> {
        let channels = match self.color {
            ColorMode::Gray => 1,
            _ => 3,
        };
        Some(DatasetInfo {
            name: format!("imagefolder:{}", self.root.display()),
            num_classes: self.classes.len(),
            channels,
            height: 0,
            width: 0,
            mean: vec![0.5; channels],
            std: vec![0.5; channels],
            train_len: self.samples.len(),
            test_len: 0,
            classes: self.classes.clone(),
        })
    }
}
