//! `mlfw predict IMAGE...`: the top-k classes of image files, with probabilities.

use std::path::PathBuf;

use clap::Args;
use mlfw_core::{Device, Tensor};
use serde_json::json;

use crate::data::{DataSpec, Normalize};
use crate::error::{CliError, Result};
use crate::{device, models};

/// Arguments of `mlfw predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Image files (PNG, JPEG).
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Model: lenet5 (or lenet), mlp, resnet18, resnet34, resnet18_cifar, vgg11_bn.
    #[arg(long, default_value = "lenet5")]
    pub model: String,
    /// Weights (safetensors with PyTorch keys, e.g. a run's best.safetensors).
    #[arg(
        long,
        required_unless_present = "pretrained",
        conflicts_with = "pretrained"
    )]
    pub weights: Option<PathBuf>,
    /// Use the hub's pretrained weights for the model.
    #[arg(long)]
    pub pretrained: bool,
    /// Dataset the weights were trained on (class names, input size, normalization).
    #[arg(long, default_value = "mnist-mini")]
    pub dataset: String,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 3)]
    pub topk: usize,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Print one JSON object per image.
    #[arg(long)]
    pub json: bool,
}

/// Runs `mlfw predict`.
pub fn run(a: PredictArgs) -> Result<()> {
    let name = models::canonical(&a.model)?;
    let spec = DataSpec::new(&a.dataset, name, None)?;
    let device = device::open(&a.device)?;
    let (mut model, _) = models::load(
        name,
        spec.input,
        spec.info.num_classes,
        a.weights.as_deref(),
    )?;
    model.to_device(&device)?;
    model.train(false);
    let norm = Normalize::new(&spec.info.mean, &spec.info.std, &device)?;
    let batch = Tensor::stack(
        &a.images
            .iter()
            .map(|p| load_image(p, spec.input))
            .collect::<Result<Vec<_>>>()?,
        0,
    )?;
    let probs = {
        let _g = mlfw_autograd::no_grad();
        model.forward(&norm.apply(&batch)?)?.softmax(1)?
    };
    let probs = probs.to(&Device::Cpu)?.to_vec::<f32>()?;
    let k = spec.info.num_classes;
    for (path, row) in a.images.iter().zip(probs.chunks(k)) {
        let mut order: Vec<usize> = (0..k).collect();
        order.sort_by(|&i, &j| row[j].total_cmp(&row[i]).then(i.cmp(&j)));
        let top: Vec<(usize, f32)> = order
            .into_iter()
            .take(a.topk.max(1))
            .map(|c| (c, row[c]))
            .collect();
        let label = |c: usize| spec.info.classes.get(c).cloned().unwrap_or(c.to_string());
        if a.json {
            let top: Vec<_> = top
                .iter()
                .map(|&(c, p)| json!({"class": c, "label": label(c), "prob": p}))
                .collect();
            println!(
                "{}",
                json!({"image": path.display().to_string(), "top": top})
            );
        } else {
            let s: Vec<String> = top
                .iter()
                .map(|&(c, p)| format!("{} {:.4}", label(c), p))
                .collect();
            println!("{}: {}", path.display(), s.join(", "));
        }
    }
    Ok(())
}

/// Reads `path` as a `[C, H, W]` f32 tensor in `[0, 1]` of the model's input size
/// (gray for one channel, RGB for three).
fn load_image(path: &std::path::Path, [c, h, w]: [usize; 3]) -> Result<Tensor> {
    let img = image::open(path).map_err(|e| CliError::msg(format!("{}: {e}", path.display())))?;
    let img = img.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle);
    let data: Vec<f32> = match c {
        1 => img
            .to_luma8()
            .into_raw()
            .iter()
            .map(|&p| p as f32 / 255.0)
            .collect(),
        3 => {
            let rgb = img.to_rgb8().into_raw();
            (0..3)
                .flat_map(|ch| rgb.iter().skip(ch).step_by(3).map(|&p| p as f32 / 255.0))
                .collect()
        }
        _ => {
            return Err(CliError::msg(format!(
                "images can only become 1- or 3-channel input, the model takes {c}"
            )))
        }
    };
    Ok(Tensor::from_vec(data, [c, h, w], &Device::Cpu)?)
}
