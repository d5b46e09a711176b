//! Training as a library, the way a program (not the `mlfw` command) writes it: LeNet-5 on the
//! built-in mnist-mini with SGD, early stopping, TensorBoard and a run folder (metrics,
//! best/last weights, checkpoints for exact resume, curves).
//!
//! `cargo run --release -p mlfw-cli --example fit [-- RUN_DIR [EPOCHS]]`

use mlfw_cli::learner::{EarlyStopping, Learner};
use mlfw_cli::tensorboard_log::TensorBoard;
use mlfw_core::Device;
use mlfw_data::{DataLoader, MnistMini};
use mlfw_nn::Module;
use mlfw_optim::{Sgd, SgdConfig};
use mlfw_vision::models::LeNet5;

fn main() -> mlfw_cli::error::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(
        || std::env::temp_dir().join(format!("mlfw-fit-{}", std::process::id())),
        Into::into,
    );
    let epochs = args.next().map_or(Ok(2), |e| e.parse())?;

    mlfw_core::manual_seed(0);
    let model = LeNet5::new(10, 1, &Device::Cpu)?;
    let opt = Sgd::new(model.parameters(), SgdConfig::new(0.05).momentum(0.9))?;
    let train = DataLoader::new(MnistMini::new(true)?)
        .batch_size(64)
        .shuffle(0);
    let val = DataLoader::new(MnistMini::new(false)?).batch_size(500);
    let summary = Learner::new(Box::new(model), Box::new(opt), train, val)
        .epochs(epochs)
        .names("lenet5", "mnist-mini")
        .callback(EarlyStopping::new(2, 0.0)?)
        .callback(TensorBoard::new())
        .run_dir(&dir)?
        .fit()?;
    println!(
        "val accuracy {:.3} after {} epochs; run folder {}",
        summary.accuracy,
        summary.epochs,
        dir.display()
    );
    Ok(())
}
