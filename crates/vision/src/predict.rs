//! Prediction: image files → preprocessed tensor → top-k classes with probabilities.

use crate::image_folder::{decode, ColorMode};
use crate::registry::ModelInfo;
use crate::transforms::{CenterCrop, Compose, ImageTransform, Img, Normalize, Resize, ToTensor};
use image::DynamicImage;
use mlfw_core::{safetensors, Device, Error, Result, Tensor};
use mlfw_nn::Module;
use std::path::{Path, PathBuf};

/// One of the top-k classes of an image.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Class index.
    pub class: usize,
    /// Class name, when names were given.
    pub label: Option<String>,
    /// Softmax probability.
    pub prob: f32,
}

/// The preprocessing `info` implies: colour conversion to the model's channels (gray for 1,
/// RGB for 3), resize (shorter side to `H / 0.875` + centre crop for ImageNet models, else
/// straight to `H × W`), `ToTensor`, `Normalize(mean, std)`.
///
/// # Errors
/// `Error::Msg` when `info`'s input shape or normalisation cannot be built into transforms (a zero
/// size, mean/std counts other than the channels).
pub fn preprocess_pipeline(info: &ModelInfo) -> Result<Compose> {
    let [_, h, w] = info.input_shape;
    let resize = if info.center_crop {
        Compose::new()
            .then(Resize::new((h as f64 / 0.875).round() as usize))
            .then(CenterCrop::new(h, w))
    } else {
        Compose::new().then(Resize::exact(h, w))
    };
    Ok(resize
        .then(ToTensor)
        .then(Normalize::new(info.mean.clone(), info.std.clone())?))
}

/// Converts `img` to the model's channel count; errors for channel counts other than 1 or 3.
fn to_channels(img: DynamicImage, c: usize, model: &str) -> Result<DynamicImage> {
    match c {
        1 => Ok(DynamicImage::ImageLuma8(img.to_luma8())),
        3 => Ok(DynamicImage::ImageRgb8(img.to_rgb8())),
        _ => Err(Error::msg(format!(
            "{model} takes {c}-channel input; image files can only be converted to 1 (gray) or 3 (RGB) channels"
        ))),
    }
}

/// One image → `[C, H, W]` f32 tensor ready for the model.
///
/// # Errors
/// `Error::Msg` when the image cannot be converted to the model's channel count, or as
/// [`preprocess_pipeline`].
pub fn preprocess_image(img: DynamicImage, info: &ModelInfo) -> Result<Tensor> {
    let img = to_channels(img, info.input_shape[0], info.name)?;
    preprocess_pipeline(info)?
        .apply_seeded(Img::Image(img), 0)?
        .into_tensor()
}

/// Image files → `[N, C, H, W]` batch. Errors name the file that cannot be read.
///
/// # Errors
/// `Error::Msg` for an empty list; `Error::File` naming the file that cannot be read or decoded.
pub fn load_images(paths: &[PathBuf], info: &ModelInfo) -> Result<Tensor> {
    if paths.is_empty() {
        return Err(Error::msg("predict: no image given"));
    }
    let xs = paths
        .iter()
        .map(|p| {
            preprocess_image(decode(p, ColorMode::Keep)?, info).map_err(|e| e.context(p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    Tensor::stack(&xs, 0)
}

/// Checks that a batch `x` fits the model described by `info`.
///
/// # Errors
/// `Error::Msg` when `x` is not `[N, C, H, W]`, has other channels than the model's, or (for a
/// fixed-size model) another height and width.
pub fn check_batch(x: &Tensor, info: &ModelInfo) -> Result<()> {
    let [c, h, w] = info.input_shape;
    let ok_size = |xh: usize, xw: usize| {
        if info.any_size {
            xh >= info.min_size && xw >= info.min_size
        } else {
            (xh, xw) == (h, w)
        }
    };
    match *x.dims() {
        [_, xc, xh, xw] if xc == c && ok_size(xh, xw) => Ok(()),
        [_, xc, _, _] if xc != c => Err(Error::msg(format!(
            "{} takes {c}-channel images, got a batch {} with {xc} channels",
            info.name,
            x.shape()
        ))),
        [_, _, xh, xw] => Err(Error::msg(if info.any_size {
            format!(
                "{} takes images of at least {m}x{m}, got {xh}x{xw}",
                info.name,
                m = info.min_size
            )
        } else {
            format!("{} takes {h}x{w} images, got {xh}x{xw}", info.name)
        })),
        _ => Err(Error::msg(format!(
            "{}: expected a batch [N, {c}, {h}, {w}], got {}",
            info.name,
            x.shape()
        ))),
    }
}

/// Runs `model` (switch it to eval mode first) on batch `x` without gradients and returns the
/// `k` most probable classes per image (`k` capped at the number of classes).
///
/// # Errors
/// `Error::Msg` when `k` is 0; as [`check_batch`]; errors of the model's forward.
pub fn predict_batch(
    model: &dyn Module,
    x: &Tensor,
    info: &ModelInfo,
    k: usize,
    class_names: Option<&[String]>,
) -> Result<Vec<Vec<Prediction>>> {
    if k == 0 {
        return Err(Error::msg("predict: k must be at least 1"));
    }
    check_batch(x, info)?;
    let _g = mlfw_autograd::no_grad();
    let probs = model.forward(x)?.softmax(1)?.to_device(&Device::Cpu)?;
    let n = probs.dims()[1];
    let v = probs.to_dtype(mlfw_core::DType::F32)?.to_vec::<f32>()?;
    Ok(v.chunks(n.max(1))
        .map(|row| {
            let mut idx: Vec<usize> = (0..n).collect();
            idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            idx.into_iter()
                .take(k.min(n))
                .map(|c| Prediction {
                    class: c,
                    label: class_names.and_then(|names| names.get(c).cloned()),
                    prob: row[c],
                })
                .collect()
        })
        .collect())
}

/// Image files → top-k predictions per file, in order.
///
/// # Errors
/// As [`load_images`] and [`predict_batch`].
pub fn predict_files(
    model: &dyn Module,
    info: &ModelInfo,
    paths: &[PathBuf],
    k: usize,
    class_names: Option<&[String]>,
) -> Result<Vec<Vec<Prediction>>> {
    let x = load_images(paths, info)?;
    predict_batch(model, &x, info, k, class_names)
}

/// Loads a safetensors state dict into `model` (strictly). Weights made for another
/// architecture are an error naming the file, the model, and the mismatching keys.
///
/// # Errors
/// `Error::File` naming the file when it is missing or not safetensors; `Error::Msg` naming the
/// file, the model (and the architecture the file says it holds) and the mismatching keys when the
/// weights do not fit.
pub fn load_weights(model: &dyn Module, info: &ModelInfo, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let f = safetensors::load(path, &Device::Cpu)?;
    let arch = f.metadata.get("model").cloned();
    model.load_state_dict(&f.into_map(), true).map_err(|e| {
        let hint = arch.map_or(String::new(), |a| {
            format!(" (the file says it holds `{a}`)")
        });
        e.context(format!(
            "weights {} do not fit model `{}`{hint}",
            path.display(),
            info.name
        ))
    })?;
    Ok(())
}
