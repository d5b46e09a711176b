//! Logs a toy training curve, a histogram, an image grid and text to an event file.
//!
//! `cargo run --example summary_writer -- runs/demo` then `tensorboard --logdir runs`.

use mlfw_core::{DType, Device, Tensor};
use mlfw_tensorboard::{make_grid, SummaryWriter};

fn main() -> mlfw_core::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "runs/demo".into());
    let mut tb = SummaryWriter::new(&dir)?;
    tb.add_text("config", "a **demo** run: `lr = 0.1`", 0)?;
    for step in 0..50u64 {
        let loss = 2.0 * (-(step as f64) / 15.0).exp();
        tb.add_scalars(&[("train/loss", loss), ("train/lr", 0.1)], step)?;
    }
    let w = Tensor::randn(0.0, 1.0, [64, 32], DType::F32, &Device::Cpu)?;
    tb.add_histogram("fc.weight", &w, 49)?;
    let batch = Tensor::rand(0.0, 1.0, [8, 3, 16, 16], DType::F32, &Device::Cpu)?;
    tb.add_image("train/batch", &make_grid(&batch, 4)?, 0)?;
    tb.flush()?;
    println!("{}", tb.path().display());
    Ok(())
}
