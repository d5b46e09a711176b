//! `mlfw eval`: accuracy, loss, per-class accuracy and the confusion matrix of weights on a
//! dataset split.

use std::path::PathBuf;

use clap::Args;
use mlfw_data::Split;
use serde_json::json;

use crate::data::{DataSpec, FolderArgs, Normalize};
use crate::error::{CliError, Result};
use crate::evaluate::{evaluate, EvalResult};
use crate::{device, onnx_model};

/// Arguments of `mlfw eval`.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model: lenet5 (or lenet), mlp, resnet18, resnet18_cifar, resnet34, resnet34_cifar,
    /// resnet50, vgg11_bn, mobilenet_v2, efficientnet_b0, vit_b_16, or an ONNX file
    /// (`path/to/model.onnx`, weights included).
    #[arg(long, default_value = "lenet5")]
    pub model: String,
    /// Weights to evaluate (safetensors with PyTorch keys, e.g. a run's best.safetensors).
    /// Required unless --pretrained, or --model is an .onnx file.
    #[arg(long, conflicts_with = "pretrained")]
    pub weights: Option<PathBuf>,
    /// Use the hub's pretrained weights for the model.
    #[arg(long)]
    pub pretrained: bool,
    /// Dataset: mnist-mini (built in), mnist, fashion-mnist, kmnist, qmnist, emnist-SPLIT
    /// (byclass, bymerge, balanced, letters, digits, mnist), cifar10, cifar100, svhn, stl10, fake,
    /// or folder:PATH (split test: PATH/val/ or the --val-split part).
    #[arg(long, default_value = "mnist-mini")]
    pub dataset: String,
    /// Folder holding the dataset's files (no download).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Split: train or test.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Samples per forward pass.
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// Data-loading worker threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Folder-dataset options.
    #[command(flatten)]
    pub folder: FolderArgs,
    /// Seed of a folder dataset's --val-split (the training run's --seed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object (accuracy, loss, per-class accuracy, confusion matrix).
    #[arg(long)]
    pub json: bool,
}

/// Runs `mlfw eval`.
///
/// # Errors
/// `--batch-size` 0; an unknown model or dataset, or a bad split; weights or an ONNX file that cannot be
/// loaded; an unusable `--device`; batches that do not fit in memory; evaluation failing.
pub fn run(a: EvalArgs) -> Result<()> {
    if a.batch_size == 0 {
        return Err(CliError::msg("--batch-size must be at least 1"));
    }
    let model_name = onnx_model::resolve(&a.model, a.weights.is_some(), a.pretrained)?;
    let split: Split = a.split.parse()?;
    let mut spec = DataSpec::open(
        &a.dataset,
        model_name,
        a.data_dir.clone(),
        &a.folder.options(a.seed),
        a.folder.image_size,
    )?;
    let device = device::open(&a.device)?;
    let (mut model, source) =
        onnx_model::load_any(&a.model, model_name, &mut spec, a.weights.as_deref())?;
    model.to_device(&device)?;
    let loader = spec.loader(split, a.batch_size, a.workers, 0)?;
    let batch = a.batch_size.min(loader.dataset().len());
    crate::memory::check_model_batch(model.as_mut(), spec.input, batch, false, &device)?;
    let norm = Normalize::new(&spec.info.mean, &spec.info.std, &device)?;
    let r = evaluate(
        model.as_mut(),
        &loader,
        &norm,
        &device,
        spec.info.num_classes,
    )?;
    if a.json {
        let v = json!({
            "accuracy": r.accuracy,
            "loss": r.loss,
            "samples": r.samples,
            "per_class_accuracy": r.per_class_accuracy(),
            "confusion": r.confusion,
            "classes": spec.info.classes,
            "model": model_name,
            "weights": source,
            "dataset": spec.config_name(),
            "split": split.to_string(),
        });
        println!("{v}");
    } else {
        print_report(&r, &spec, model_name, &source, split);
    }
    Ok(())
}

fn print_report(r: &EvalResult, spec: &DataSpec, model: &str, source: &str, split: Split) {
    println!(
        "{model} ({source}) on {} {split}, {} images: accuracy {:.4}, loss {:.4}",
        spec.config_name(),
        r.samples,
        r.accuracy,
        r.loss
    );
    let classes = &spec.info.classes;
    if classes.len() > 20 {
        return;
    }
    println!("\nper-class accuracy:");
    for (c, acc) in classes.iter().zip(r.per_class_accuracy()) {
        println!("  {c:>12}  {acc:.4}");
    }
    println!("\nconfusion matrix (rows: true class, columns: predicted):");
    let w = r
        .confusion
        .iter()
        .flatten()
        .max()
        .map_or(1, |m| m.to_string().len())
        .max(3);
    print!("{:>12} ", "");
    for i in 0..classes.len() {
        print!(" {i:>w$}");
    }
    println!();
    for (i, row) in r.confusion.iter().enumerate() {
        let name: String = classes[i].chars().take(12).collect();
        print!("{name:>12} ");
        for v in row {
            print!(" {v:>w$}");
        }
        println!();
    }
}
