//! # mlfw-cli
//!
//! The ring that wires training runs, as a library: [`learner::Learner`] trains any
//! [`mlfw_nn::Module`] with any [`mlfw_optim::Optimizer`], schedule and pair of
//! [`mlfw_data::DataLoader`]s (or other [`learner::BatchSource`]s, such as the language
//! models' random text windows, [`lm_train::TextWindows`]) — epochs, validation, callbacks
//! (progress, early stopping, TensorBoard, perplexity), a run folder with checkpoints, exact
//! resume, Ctrl-C and NaN stop. The `mlfw` binary (`src/main.rs`) only parses flags and calls
//! into this library: both trainers, images and language models, are a `Learner` set up.
//!
//! ```no_run
//! use mlfw_cli::learner::Learner;
//! use mlfw_core::Device;
//! use mlfw_data::{DataLoader, FakeData};
//! use mlfw_optim::{Sgd, SgdConfig};
//! use mlfw_nn::Module;
//! # fn main() -> mlfw_cli::error::Result<()> {
//! let model = mlfw_vision::models::LeNet5::new(10, 1, &Device::Cpu)?;
//! let opt = Sgd::new(model.parameters(), SgdConfig::new(0.01))?;
//! let train = DataLoader::new(FakeData::mnist_like(256, 0)).batch_size(32).shuffle(0);
//! let val = DataLoader::new(FakeData::mnist_like(64, 1)).batch_size(64);
//! let summary = Learner::new(Box::new(model), Box::new(opt), train, val)
//!     .epochs(2)
//!     .fit()?;
//! println!("val accuracy {:.3}", summary.accuracy);
//! # Ok(()) }
//! ```

pub mod checkpoint;
pub mod checkpoint_check;
pub mod clock;
pub mod cmd;
pub mod compile_step;
pub mod data;
pub mod device;
pub mod error;
pub mod evaluate;
pub mod learner;
pub mod lm_bench;
pub mod lm_train;
pub mod memory;
pub mod metrics;
pub mod models;
pub mod onnx_model;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod run_dir;
pub mod run_lock;
pub mod tensorboard_log;
pub mod trainer;

use std::sync::LazyLock;
use std::time::Instant;

/// When the process started (for the start-up time in `train --json`); the binary forces it
/// first thing in `main`.
pub static START: LazyLock<Instant> = LazyLock::new(Instant::now);

// The binary installs the counting allocator; the unit tests of `memory` need it too.
#[cfg(test)]
#[global_allocator]
static TEST_ALLOC: memory::CountingAlloc = memory::CountingAlloc;
