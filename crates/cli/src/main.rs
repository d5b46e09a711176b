//! `mlfw`: train, evaluate and run image classifiers from the command line.
//!
//! `main` only parses arguments and dispatches; each subcommand lives in `cmd/`. Errors are
//! printed as `error: ...` and turned into a non-zero exit status, never a panic.

mod checkpoint;
mod checkpoint_check;
mod cmd;
mod compile_step;
mod data;
mod device;
mod error;
mod evaluate;
mod lm_bench;
mod lm_train;
mod memory;
mod metrics;
mod models;
mod onnx_model;
mod optim;
mod plot;
mod progress;
mod run_dir;
mod run_lock;
mod tensorboard_log;
mod trainer;

use std::process::ExitCode;
use std::sync::LazyLock;
use std::time::Instant;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Deep learning in Rust: train, evaluate and run image classifiers.
#[derive(Parser, Debug)]
#[command(name = "mlfw", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model on a dataset, writing a run folder (config, metrics, checkpoints, plots).
    Train(cmd::train::TrainArgs),
    /// Evaluate weights on a dataset split: accuracy, loss, per-class accuracy, confusion matrix.
    Eval(cmd::eval::EvalArgs),
    /// Classify image files: top-k classes with probabilities.
    Predict(cmd::predict::PredictArgs),
    /// Redraw the training curves of one or more runs, overlaid.
    Plot(cmd::plot::PlotArgs),
    /// List and download datasets.
    #[command(subcommand)]
    Data(cmd::data::DataCommand),
    /// Pretrained models: pull, list, info, rm, export.
    #[command(subcommand)]
    Hub(cmd::hub::HubCommand),
    /// Measure training and inference throughput and peak memory.
    Bench(cmd::bench::BenchArgs),
    /// Print a model's captured graph (inference, or the training step with --train).
    Graph(cmd::graph::GraphArgs),
    /// Write a model with its weights as an ONNX file (opset 17, dynamic batch).
    Export(cmd::export::ExportArgs),
    /// Sample text from a trained language model (char-lstm, gpt-mini).
    Generate(cmd::generate::GenerateArgs),
}

#[global_allocator]
static ALLOC: memory::CountingAlloc = memory::CountingAlloc;

/// When the process started (for the start-up time in `train --json`).
pub static START: LazyLock<Instant> = LazyLock::new(Instant::now);

fn run(cli: Cli, matches: &clap::ArgMatches) -> error::Result<()> {
    match cli.command {
        Command::Train(a) => {
            let sub = matches.subcommand_matches("train").unwrap_or(matches);
            cmd::train::run(a, sub)
        }
        Command::Eval(a) => cmd::eval::run(a),
        Command::Predict(a) => cmd::predict::run(a),
        Command::Plot(a) => cmd::plot::run(a),
        Command::Data(c) => cmd::data::run(c),
        Command::Hub(c) => cmd::hub::run(c),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Graph(a) => cmd::graph::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Generate(a) => cmd::generate::run(a),
    }
}

fn main() -> ExitCode {
    LazyLock::force(&START);
    mlfw_core::cpu::tune_allocator();
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match run(cli, &matches) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.message());
            ExitCode::from(e.code())
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_definition_is_valid() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
