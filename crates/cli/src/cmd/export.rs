//! `mlfw export`: a zoo model with its weights as an ONNX file (opset 17, dynamic batch),
//! for inference runtimes and other frameworks.

use std::path::PathBuf;

use clap::Args;
use mlfw_core::{DType, Device, Tensor};

use crate::error::{CliError, Result};
use crate::models;

/// Arguments of `mlfw export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Model: any zoo model — lenet5 (or lenet), mlp, resnet18, resnet18_cifar, resnet34,
    /// resnet34_cifar, resnet50, vgg11_bn, mobilenet_v2, efficientnet_b0, vit_b_16.
    #[arg(long, default_value = "lenet5")]
    pub model: String,
    /// Weights to export (safetensors with PyTorch keys, e.g. a run's best.safetensors).
    #[arg(
        long,
        required_unless_present = "pretrained",
        conflicts_with = "pretrained"
    )]
    pub weights: Option<PathBuf>,
    /// Export the hub's pretrained weights for the model.
    #[arg(long)]
    pub pretrained: bool,
    /// Output format (only `onnx`).
    #[arg(long, default_value = "onnx")]
    pub format: String,
    /// The file to write.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Input shape C,H,W [default: the model's usual input].
    #[arg(long, value_delimiter = ',', num_args = 1..=3)]
    pub input: Option<Vec<usize>>,
    /// Number of classes the weights were trained for.
    #[arg(long, default_value_t = 10)]
    pub num_classes: usize,
}

/// Runs `mlfw export`.
///
/// # Errors
/// A `--format` other than onnx; an unknown model or a bad `--input`; `--num-classes` of 0;
/// weights that cannot be loaded; the ONNX export or writing `--out` failing.
pub fn run(a: ExportArgs) -> Result<()> {
    if !a.format.eq_ignore_ascii_case("onnx") {
        return Err(CliError::msg(format!(
            "unknown --format `{}`; supported: onnx",
            a.format
        )));
    }
    let name = models::canonical(&a.model)?;
    let input = models::input_or_default(name, a.input.as_deref())?;
    if a.num_classes == 0 {
        return Err(CliError::msg("--num-classes must be at least 1"));
    }
    let (mut model, source) = models::load(name, input, a.num_classes, a.weights.as_deref())?;
    model.train(false);
    let x = Tensor::zeros([1, input[0], input[1], input[2]], DType::F32, &Device::Cpu)?;
    {
        let _g = mlfw_autograd::no_grad();
        mlfw_hub::onnx::export_module(model.as_ref(), &x, &a.out).map_err(|e| {
            CliError::msg(e).context(format!("exporting {name} to {}", a.out.display()))
        })?;
    }
    let [c, h, w] = input;
    println!(
        "{}: {name} ({source}) as ONNX opset {}, input `input` [N, {c}, {h}, {w}], output `output` [N, {}]",
        a.out.display(),
        mlfw_hub::onnx::EXPORT_OPSET,
        a.num_classes
    );
    Ok(())
}
