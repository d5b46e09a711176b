//! `mlfw plot RUN... [--out DIR]`: redraw training curves, several runs overlaid.

use std::path::PathBuf;

use clap::Args;

use crate::error::{CliError, Result};
use crate::{metrics, plot};

/// Arguments of `mlfw plot`.
#[derive(Args, Debug)]
pub struct PlotArgs {
    /// Run folders (each with metrics.jsonl).
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Where to write loss/accuracy PNG and SVG [default: the run folder for one run, ./plots
    /// for several].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Reads each run's metrics and draws the charts.
///
/// # Errors
/// A run folder without finished epochs in `metrics.jsonl`, or one that cannot be read;
/// writing the charts failing.
pub fn run(args: PlotArgs) -> Result<()> {
    let mut runs = Vec::new();
    for dir in &args.runs {
        let rows = metrics::read(dir)?;
        if rows.is_empty() {
            return Err(CliError::msg(format!(
                "{}: no metrics.jsonl with finished epochs (is it a run folder?)",
                dir.display()
            )));
        }
        let name = dir
            .file_name()
            .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into());
        runs.push((name, rows));
    }
    let out = args.out.unwrap_or_else(|| match args.runs.as_slice() {
        [one] => one.clone(),
        _ => PathBuf::from("plots"),
    });
    for f in plot::write_curves(&out, &runs)? {
        println!("{}", f.display());
    }
    Ok(())
}
