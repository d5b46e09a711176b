//! `mlfw predict IMAGE...`: the top-k classes of image files, with probabilities.

use std::path::PathBuf;

use clap::Args;
use mlfw_vision::predict;
use serde_json::json;

use crate::data::{DataSpec, FolderArgs};
use crate::error::Result;
use crate::{device, models, onnx_model};

/// Arguments of `mlfw predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Image files (PNG, JPEG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Model: lenet5 (or lenet), mlp, resnet18, resnet18_cifar, resnet34, resnet34_cifar,
    /// resnet50, vgg11_bn, mobilenet_v2, efficientnet_b0, vit_b_16, or an ONNX file
    /// (`path/to/model.onnx`, weights included).
    #[arg(long, default_value = "lenet5")]
    pub model: String,
    /// Weights (safetensors with PyTorch keys, e.g. a run's best.safetensors).
    /// Required unless --pretrained, or --model is an .onnx file.
    #[arg(long, conflicts_with = "pretrained")]
    pub weights: Option<PathBuf>,
    /// Use the hub's pretrained weights for the model.
    #[arg(long)]
    pub pretrained: bool,
    /// Dataset the weights were trained on (class names, input size, normalization); for
    /// folder:PATH the class names are its sub-folders'.
    #[arg(long, default_value = "mnist-mini")]
    pub dataset: String,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 3)]
    pub topk: usize,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Folder-dataset options.
    #[command(flatten)]
    pub folder: FolderArgs,
    /// Print one JSON object per image.
    #[arg(long)]
    pub json: bool,
}

/// Runs `mlfw predict`.
///
/// # Errors
/// An unknown model or dataset; weights or an ONNX file that cannot be loaded; an unusable
/// `--device`; an image that cannot be read or decoded; the forward pass failing.
pub fn run(a: PredictArgs) -> Result<()> {
    let name = onnx_model::resolve(&a.model, a.weights.is_some(), a.pretrained)?;
    let onnx = onnx_model::is_onnx(&a.model);
    let mut spec = DataSpec::open(
        &a.dataset,
        name,
        None,
        &a.folder.options(0),
        a.folder.image_size,
    )?;
    let device = device::open(&a.device)?;
    let (mut model, _) = onnx_model::load_any(&a.model, name, &mut spec, a.weights.as_deref())?;
    model.to_device(&device)?;
    model.train(false);
    let info = if onnx {
        onnx_model::predict_info(&spec)
    } else {
        models::predict_info(
            name,
            spec.input,
            spec.info.num_classes,
            &spec.info.mean,
            &spec.info.std,
        )?
    };
    let x = predict::load_images(&a.images, &info)?.to(&device)?;
    let classes = &spec.info.classes;
    let preds = predict::predict_batch(model.as_ref(), &x, &info, a.topk, Some(classes))?;
    for (path, top) in a.images.iter().zip(preds) {
        let label = |p: &predict::Prediction| p.label.clone().unwrap_or(p.class.to_string());
        if a.json {
            let top: Vec<_> = top
                .iter()
                .map(|p| json!({"class": p.class, "label": label(p), "prob": p.prob}))
                .collect();
            println!(
                "{}",
                json!({"image": path.display().to_string(), "top": top})
            );
        } else {
            let s: Vec<String> = top
                .iter()
                .map(|p| format!("{} {:.4}", label(p), p.prob))
                .collect();
            println!("{}: {}", path.display(), s.join(", "));
        }
    }
    Ok(())
}
