//! `mlfw graph`: print a zoo model's captured graph — its inference forward pass, or with
//! `--train` its whole training step (forward, cross-entropy loss, backward) — as a table,
//! and optionally write it as Graphviz DOT.

use clap::Args;
use mlfw_core::{DType, Device, Tensor};
use mlfw_nn::{trace_module, trace_train_step};

use crate::error::{CliError, Result};
use crate::models;

/// Arguments of `mlfw graph`.
#[derive(Args, Debug)]
pub struct GraphArgs {
    /// Model: any zoo model — lenet5 (or lenet), mlp, resnet18, resnet18_cifar, resnet34,
    /// resnet34_cifar, resnet50, vgg11_bn, mobilenet_v2, efficientnet_b0, vit_b_16.
    #[arg(long, default_value = "lenet5")]
    pub model: String,
    /// Capture the training step (forward, loss, backward) instead of inference.
    #[arg(long)]
    pub train: bool,
    /// Also write the graph as Graphviz DOT to this file (`dot -Tsvg FILE`).
    #[arg(long, value_name = "FILE")]
    pub dot: Option<std::path::PathBuf>,
    /// Apply the simplifying passes (dead code, common subexpressions, constants, identities).
    #[arg(long)]
    pub simplify: bool,
    /// Input shape C,H,W [default: the model's usual input].
    #[arg(long, value_delimiter = ',', num_args = 1..=3)]
    pub input: Option<Vec<usize>>,
    /// Number of classes.
    #[arg(long, default_value_t = 10)]
    pub num_classes: usize,
}

/// Runs `mlfw graph`.
///
/// # Errors
/// An unknown model or a bad `--input`; `--num-classes` of 0; tracing the model failing;
/// writing the `--dot` file failing.
pub fn run(a: GraphArgs) -> Result<()> {
    let name = models::canonical(&a.model)?;
    let input = models::input_or_default(name, a.input.as_deref())?;
    if a.num_classes == 0 {
        return Err(CliError::msg("--num-classes must be at least 1"));
    }
    let mut model = models::build(name, input, a.num_classes)?;
    let x = Tensor::zeros([1, input[0], input[1], input[2]], DType::F32, &Device::Cpu)?;
    let mut g = if a.train {
        model.train(true);
        let t = Tensor::zeros([1], DType::I64, &Device::Cpu)?;
        trace_train_step(model.as_ref(), &x, &t, true)?
    } else {
        model.train(false);
        let _g = mlfw_autograd::no_grad();
        trace_module(model.as_ref(), &x, true)?
    };
    if a.simplify {
        g.simplify()?;
    }
    print!("{g}");
    let what = if a.train {
        "training step"
    } else {
        "inference"
    };
    println!(
        "{name} {what}: {} ops, {} parameters and buffers, {} nodes",
        g.op_count(),
        g.params().len(),
        g.nodes.len()
    );
    if let Some(path) = &a.dot {
        let tmp = path.with_extension("dot.tmp");
        std::fs::write(&tmp, g.to_dot())
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| CliError::msg(format!("cannot write {}: {e}", path.display())))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
