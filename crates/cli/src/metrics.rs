//! Per-epoch metrics of a run, kept as `metrics.csv` and `metrics.jsonl` in the run folder.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{CliError, Result};

/// The metrics of one finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch number, counted from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps.
    pub train_loss: f64,
    /// Training accuracy (on the augmented batches, as seen during training).
    pub train_acc: f64,
    /// Loss on the validation (test) split.
    pub val_loss: f64,
    /// Accuracy on the validation (test) split.
    pub val_acc: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Wall-clock seconds of the epoch (training and validation).
    pub time_s: f64,
    /// Training throughput in images per second.
    pub images_per_s: f64,
}

const CSV_HEADER: &str = "epoch,train_loss,train_acc,val_loss,val_acc,lr,time_s,images_per_s";

impl EpochMetrics {
    fn csv_row(&self) -> String {
        format!(
            "{},{},{},{},{},{},{:.3},{:.1}",
            self.epoch,
            self.train_loss,
            self.train_acc,
            self.val_loss,
            self.val_acc,
            self.lr,
            self.time_s,
            self.images_per_s
        )
    }
}

/// Reads `metrics.jsonl` in `dir` (an empty list when the file does not exist).
///
/// # Errors
/// The file cannot be read, or a line is not a metrics row (file and line named).
pub fn read(dir: &Path) -> Result<Vec<EpochMetrics>> {
    let path = dir.join("metrics.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(CliError::msg(format!("{}: {e}", path.display()))),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| CliError::msg(format!("{}:{}: {e}", path.display(), i + 1)))
        })
        .collect()
}

/// Rewrites both files in `dir` with exactly `rows` (used when resuming), atomically.
///
/// # Errors
/// A file cannot be written (path and OS error named).
pub fn rewrite(dir: &Path, rows: &[EpochMetrics]) -> Result<()> {
    let mut csv = format!("{CSV_HEADER}\n");
    let mut jsonl = String::new();
    for r in rows {
        csv.push_str(&r.csv_row());
        csv.push('\n');
        jsonl.push_str(&serde_json::to_string(r)?);
        jsonl.push('\n');
    }
    mlfw_core::safetensors::write_atomic(dir.join("metrics.csv"), csv.as_bytes())?;
    mlfw_core::safetensors::write_atomic(dir.join("metrics.jsonl"), jsonl.as_bytes())?;
    Ok(())
}

/// Appends one epoch's row to both files in `dir` (creating them, with the CSV header).
///
/// # Errors
/// A file cannot be opened or written (path and OS error named).
pub fn append(dir: &Path, row: &EpochMetrics) -> Result<()> {
    let open = |name: &str| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(name))
            .map_err(|e| CliError::msg(format!("{}: {e}", dir.join(name).display())))
    };
    let mut csv = open("metrics.csv")?;
    if csv.metadata()?.len() == 0 {
        writeln!(csv, "{CSV_HEADER}")?;
    }
    writeln!(csv, "{}", row.csv_row())?;
    let mut jsonl = open("metrics.jsonl")?;
    writeln!(jsonl, "{}", serde_json::to_string(row)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(epoch: usize) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_loss: 0.5,
            train_acc: 0.8,
            val_loss: 0.4,
            val_acc: 0.9,
            lr: 0.01,
            time_s: 1.0,
            images_per_s: 1000.0,
        }
    }

    #[test]
    fn append_read_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &row(1)).unwrap();
        append(dir.path(), &row(2)).unwrap();
        assert_eq!(read(dir.path()).unwrap(), vec![row(1), row(2)]);
        rewrite(dir.path(), &[row(1)]).unwrap();
        assert_eq!(read(dir.path()).unwrap(), vec![row(1)]);
        let csv = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 2);
        assert!(csv.starts_with("epoch,train_loss"));
    }
}
