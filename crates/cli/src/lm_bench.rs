//! `mlfw bench --model char-lstm|gpt-mini`: training tokens/s on tinyshakespeare with the
//! recipe of PyTorch's `bench/torch_text.py` (random windows of 128 characters, Adam 2e-3,
//! gradient clip 1.0; the median step after the warm-up), inference tokens/s, and peak RSS.

use std::time::Instant;

use mlfw_core::Device;
use mlfw_data::{Rng, TextDataset};
use mlfw_nn::lm::build_lm;
use mlfw_optim::{AdamConfig, Optim};
use serde_json::json;

use crate::error::Result;
use crate::learner::{ClippedStep, LossFn, Step, TrainStep};
use crate::lm_train::{lm_loss, CLIP, SEQ_LEN};

/// Benchmarks language model `name` (canonical) with `batch` windows per step.
///
/// # Errors
/// The tinyshakespeare text unavailable; an unknown model `name`; a training or inference step
/// failing (on `device`).
pub fn run(
    name: &str,
    batch: usize,
    steps: usize,
    warmup: usize,
    device: &Device,
    as_json: bool,
) -> Result<()> {
    let data = TextDataset::tinyshakespeare()?;
    mlfw_core::manual_seed(0);
    let mut model = build_lm(name, data.vocab.len(), &Device::Cpu)?;
    model.to_device(device)?;
    model.train(true);
    let mut opt = Optim::new(model.parameters(), AdamConfig::new(2e-3))?;
    // The training step `mlfw train` takes (forward, loss, backward, clip, Adam).
    let (mut step, loss): (_, LossFn) = (ClippedStep { max_norm: CLIP }, Box::new(lm_loss));
    let mut rng = Rng::new(0);
    let mut times = Vec::with_capacity(steps);
    let mut last_loss = f64::NAN;
    for i in 0..warmup + steps {
        let (x, y) = data.batch(true, batch, SEQ_LEN, &mut rng, device)?;
        let t = Instant::now();
        last_loss = step
            .step(Step {
                model: model.as_mut(),
                optimizer: &mut opt,
                loss: &loss,
                input: &x,
                target: &y,
                amp: None,
                scaler: None,
                ddp: None,
            })?
            .loss;
        if i >= warmup {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let train = times[times.len() / 2];
    model.train(false);
    let infer = {
        let _g = mlfw_autograd::no_grad();
        let (x, _) = data.batch(false, batch, SEQ_LEN, &mut rng, device)?;
        let mut ts = Vec::new();
        for _ in 0..warmup.max(1) + steps.min(10) {
            let t = Instant::now();
            model.forward(&x)?.sum_all()?.item_f64()?;
            ts.push(t.elapsed().as_secs_f64());
        }
        ts.sort_by(f64::total_cmp);
        ts[ts.len() / 2]
    };
    let tokens = (batch * SEQ_LEN) as f64;
    let rss = crate::memory::peak_rss_mb();
    if as_json {
        let v = json!({
            "model": name,
            "device": device.to_string(),
            "batch_size": batch,
            "seq_len": SEQ_LEN,
            "steps": steps,
            "warmup": warmup,
            "train_step_ms": train * 1e3,
            "train_tokens_per_s": tokens / train,
            "infer_tokens_per_s": tokens / infer,
            "last_loss": last_loss,
            "peak_rss_mb": rss,
        });
        println!("{v}");
    } else {
        println!(
            "{name} on {device}, batch {batch} x {SEQ_LEN} characters, median of {steps} steps after {warmup} warm-up"
        );
        println!("{:<10} {:>12} {:>12}", "", "ms/step", "tokens/s");
        println!(
            "{:<10} {:>12.2} {:>12.0}",
            "train",
            train * 1e3,
            tokens / train
        );
        println!(
            "{:<10} {:>12.2} {:>12.0}",
            "inference",
            infer * 1e3,
            tokens / infer
        );
        match rss {
            Some(mb) => println!("peak RSS   {mb:.1} MB"),
            None => println!("peak RSS   unknown (no /proc/self/status)"),
        }
    }
    Ok(())
}
