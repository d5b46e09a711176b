//! `mlfw data list` and `mlfw data download NAME [--root DIR]`.

use std::path::PathBuf;

use clap::Subcommand;
use mlfw_data::{dataset_info, load_by_name, LoadOptions, Split, DATASET_NAMES};

use crate::error::{CliError, Result};

/// Subcommands of `mlfw data`.
#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// List the datasets mlfw knows, with classes, sizes and image shape.
    List,
    /// Download a dataset (train and test splits) and verify its checksums.
    Download {
        /// mnist, fashion-mnist, kmnist, cifar10 or cifar100.
        name: String,
        /// Data root [default: $MLFW_HOME/datasets, i.e. ~/.cache/mlfw/datasets].
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

/// Runs a `data` subcommand.
///
/// # Errors
/// An unknown dataset name; a download or its verification failing.
pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::List => list(),
        DataCommand::Download { name, root } => download(&name, root),
    }
}

fn list() -> Result<()> {
    println!(
        "{:<16} {:>7} {:>7} {:>7}  {:<9} notes",
        "name", "classes", "train", "test", "image"
    );
    for name in DATASET_NAMES {
        let i = dataset_info(name)?;
        let note = match name {
            "mnist-mini" => "built in, works offline",
            "fake" => "random images, for testing",
            _ => "downloaded on first use",
        };
        println!(
            "{:<16} {:>7} {:>7} {:>7}  {:<9} {note}",
            name,
            i.num_classes,
            i.train_len,
            i.test_len,
            format!("{}x{}x{}", i.channels, i.height, i.width),
        );
    }
    println!(
        "{:<14} {:>7} {:>7} {:>7}  {:<9} built in, works offline; also text:FILE",
        "tinyshakespeare", 65, 1_003_854, 111_540, "chars"
    );
    println!("data root: {}", mlfw_data::data_root().display());
    Ok(())
}

fn download(name: &str, root: Option<PathBuf>) -> Result<()> {
    let canonical = mlfw_data::registry::canonical_name(name)?;
    if matches!(canonical, "mnist-mini" | "fake") {
        println!("{canonical} needs no download (built in)");
        return Ok(());
    }
    let root = root.unwrap_or_else(mlfw_data::data_root);
    let opts = LoadOptions::default().root(root.clone());
    for split in [Split::Train, Split::Test] {
        let ds = load_by_name(canonical, split, &opts)
            .map_err(|e| CliError::msg(e).context(format!("downloading {canonical} {split}")))?;
        println!(
            "{canonical} {split}: {} samples",
            mlfw_data::Dataset::len(&ds)
        );
    }
    println!("{canonical} is ready under {}", root.display());
    Ok(())
}
