//! `mlfw bench`: training-step and inference throughput of a model on random inputs, and the
//! process's peak resident memory.

use std::time::Instant;

use clap::Args;
use mlfw_core::{DType, Device, Tensor};
use mlfw_nn::functional as F;
use mlfw_optim::{Optim, SgdConfig};
use serde_json::json;

use crate::error::{CliError, Result};
use crate::learner::{LossFn, StandardStep, Step, TrainStep};
use crate::memory::peak_rss_mb;
use crate::{device, models};

/// Arguments of `mlfw bench`.
#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Model: any zoo model — lenet5 (or lenet), mlp, resnet18, resnet18_cifar, resnet34,
    /// resnet34_cifar, resnet50, vgg11_bn, mobilenet_v2, efficientnet_b0, vit_b_16; language
    /// models char-lstm, gpt-mini (tokens/s on tinyshakespeare).
    #[arg(long, default_value = "lenet5")]
    pub model: String,
    /// Images per step [default: 64; language models: 32 windows of 128 characters].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    /// Untimed steps first.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Input shape C,H,W [default: the model's usual input, 1,28,28 for lenet5 and mlp].
    #[arg(long, value_delimiter = ',', num_args = 1..=3)]
    pub input: Option<Vec<usize>>,
    /// Print one JSON object (train_images_per_s, infer_images_per_s, peak_rss_mb; language
    /// models: train_tokens_per_s, infer_tokens_per_s).
    #[arg(long)]
    pub json: bool,
    /// Mixed precision for the forward passes: none, bf16 or f16 (as `mlfw train --amp`).
    #[arg(long, default_value = "none")]
    pub amp: String,
    /// Time the training step compiled (`mlfw_optim::CompiledStep`; eager when it cannot be
    /// captured, with one line saying why).
    #[arg(long)]
    pub compile: bool,
}

/// The most timed or warm-up steps one bench may take.
const MAX_STEPS: usize = 1_000_000;

/// Runs `mlfw bench`.
///
/// # Errors
/// `--batch-size` or `--steps` of 0, or `--steps`/`--warmup` above the maximum; an unknown
/// model or a bad `--input`; batches that do not fit in memory; an unusable `--device`; a bad
/// `--amp`; a training or inference step failing.
pub fn run(a: BenchArgs) -> Result<()> {
    if a.batch_size == Some(0) || a.steps == 0 {
        return Err(CliError::msg("--batch-size and --steps must be at least 1"));
    }
    if a.steps > MAX_STEPS || a.warmup > MAX_STEPS {
        return Err(CliError::msg(format!(
            "--steps and --warmup may be at most {MAX_STEPS}"
        )));
    }
    if let Some(lm) = mlfw_nn::lm::lm_canonical(&a.model) {
        if a.input.is_some() || a.amp != "none" {
            return Err(CliError::msg(format!(
                "--input and --amp are only for image models; {lm} would ignore them: drop them"
            )));
        }
        let device = device::open(&a.device)?;
        if a.compile {
            crate::compile_step::say_eager(crate::compile_step::LM_NOT_COMPILED);
        }
        let b = a.batch_size.unwrap_or(32);
        return crate::lm_bench::run(lm, b, a.steps, a.warmup, &device, a.json);
    }
    let name = models::canonical(&a.model)?;
    let input = models::input_or_default(name, a.input.as_deref())?;
    let b = a.batch_size.unwrap_or(64);
    crate::data::check_batches_fit(b, input, 1)?;
    let device = device::open(&a.device)?;
    mlfw_core::manual_seed(0);
    let mut model = models::build(name, input, 10)?;
    model.to_device(&device)?;
    crate::memory::check_model_batch(model.as_mut(), input, b, true, &device)?;
    let x = Tensor::randn(
        0.0,
        1.0,
        [b, input[0], input[1], input[2]],
        DType::F32,
        &device,
    )?;
    let y = Tensor::randint(0, 10, [b], &device)?;

    let mut opt = Optim::new(model.parameters(), SgdConfig::new(0.01).momentum(0.9))?;
    model.train(true);
    let amp = crate::run_dir::amp_dtype(&a.amp)?;
    let autocast = || amp.map(mlfw_core::autocast::autocast).transpose();
    let why_not = amp.is_some().then_some("--amp is not compiled");
    let mut compiled = a
        .compile
        .then(|| crate::compile_step::compile(model.as_ref(), &x, &y, why_not))
        .flatten();
    // The trainer's own step (the Learner's `StandardStep`), or the compiled one.
    let loss: LossFn = Box::new(F::cross_entropy);
    let train = time_steps(a.warmup, a.steps, || {
        if let Some(c) = compiled.as_mut() {
            return c.step(&x, &y, &mut opt).map(|_| ()).map_err(Into::into);
        }
        let s = Step {
            model: model.as_mut(),
            optimizer: &mut opt,
            loss: &loss,
            input: &x,
            target: &y,
            amp,
            scaler: None,
            ddp: None,
        };
        StandardStep.step(s).map(|_| ())
    })?;
    model.train(false);
    let infer = {
        let _g = mlfw_autograd::no_grad();
        time_steps(a.warmup, a.steps, || {
            let _amp = autocast()?;
            sync(&model.forward(&x)?)
        })?
    };
    let (train_ips, infer_ips) = (b as f64 / train, b as f64 / infer);
    let rss = peak_rss_mb();
    if a.json {
        let v = json!({
            "model": name,
            "device": device.to_string(),
            "batch_size": b,
            "steps": a.steps,
            "warmup": a.warmup,
            "train_step_ms": train * 1e3,
            "train_images_per_s": train_ips,
            "infer_step_ms": infer * 1e3,
            "infer_images_per_s": infer_ips,
            "peak_rss_mb": rss,
            "compiled": compiled.is_some(),
        });
        println!("{v}");
    } else {
        println!(
            "{name} on {device}, batch {b}, median of {} steps after {} warm-up{}",
            a.steps,
            a.warmup,
            if compiled.is_some() { ", compiled" } else { "" }
        );
        println!("{:<10} {:>12} {:>12}", "", "ms/step", "images/s");
        println!("{:<10} {:>12.2} {:>12.0}", "train", train * 1e3, train_ips);
        println!(
            "{:<10} {:>12.2} {:>12.0}",
            "inference",
            infer * 1e3,
            infer_ips
        );
        match rss {
            Some(mb) => println!("peak RSS   {mb:.1} MB"),
            None => println!("peak RSS   unknown (no /proc/self/status)"),
        }
    }
    Ok(())
}

/// Waits for `t`'s device work by reading one element back.
fn sync(t: &Tensor) -> Result<()> {
    if t.device() != Device::Cpu {
        t.flatten(0, -1)?.narrow(0, 0, 1)?.to_vec::<f32>()?;
    }
    Ok(())
}

/// Runs `f` `warmup` times, then `steps` timed times; returns the median seconds.
fn time_steps(warmup: usize, steps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}
