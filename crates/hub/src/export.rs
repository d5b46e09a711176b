//! Turning a training run folder into a registry entry: copies the weights and merges an
//! entry into `OUT/index.json`, so any static file server can host the folder as a registry.
//!
//! A run folder (written by `mlfw train`) holds `config.json` ([`RunConfig`]),
//! `metrics.jsonl` (one JSON object per evaluation), and `best.safetensors` and/or
//! `last.safetensors`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::index::{self, Architecture, Entry, FileEntry, Index, Metric, Preprocessing};

/// The fields of a run folder's `config.json` the hub reads (others are ignored). Also the
/// convention for Hugging Face repos without an mlfw `index.json`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct RunConfig {
    /// Zoo architecture (`lenet5`).
    pub model: String,
    /// Number of classes.
    pub num_classes: usize,
    /// Dataset registry name (`mnist-mini`); gives defaults for shape, mean and std.
    #[serde(default)]
    pub dataset: Option<String>,
    /// The full training command, as one string or as argv (`mlfw train` writes it as
    /// `command_line`, an argv array).
    #[serde(default, alias = "command_line")]
    pub command: Option<CommandLine>,
    /// One input's `[C, H, W]` (default: the dataset's).
    #[serde(default)]
    pub input_shape: Option<Vec<usize>>,
    /// Normalization mean per channel (default: the dataset's).
    #[serde(default)]
    pub mean: Option<Vec<f32>>,
    /// Normalization std per channel (default: the dataset's).
    #[serde(default)]
    pub std: Option<Vec<f32>>,
    /// License of the weights.
    #[serde(default)]
    pub license: Option<String>,
}

/// A command line as written in `config.json`: a string, or an argv array.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum CommandLine {
    /// `"mlfw train --model lenet5"`.
    Line(String),
    /// `["mlfw", "train", "--model", "lenet5"]`.
    Argv(Vec<String>),
}

impl CommandLine {
    /// The command as one shell line (argv items quoted where needed).
    pub fn to_line(&self) -> String {
        match self {
            CommandLine::Line(s) => s.clone(),
            CommandLine::Argv(v) => v
                .iter()
                .map(|a| {
                    if !a.is_empty()
                        && a.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+".contains(&b))
                    {
                        a.clone()
                    } else {
                        format!("'{}'", a.replace('\'', "'\\''"))
                    }
                })
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

impl RunConfig {
    /// Parses `config.json` text; `origin` names it in errors (with the bad field's path).
    ///
    /// # Errors
    /// [`Error::Index`] naming `origin` and the bad field's JSON path, for text that is not JSON or
    /// a field of the wrong type.
    pub fn parse(text: &str, origin: &str) -> Result<RunConfig> {
        let value = serde_json::from_str(text)
            .map_err(|e| Error::index(origin, "", format!("not valid JSON: {e}")))?;
        index::from_value(value, origin)
    }

    /// An entry (with no files yet) for this run: shapes, mean and std default to the
    /// dataset's when the config does not give them.
    ///
    /// # Errors
    /// [`Error::Index`] naming `origin` and the field, for a missing model or dataset, or input
    /// shape, mean or std that neither the config nor the dataset gives.
    pub fn to_entry(&self, name: &str, version: &str, origin: &str) -> Result<Entry> {
        let info = self
            .dataset
            .as_deref()
            .and_then(|d| mlfw_data::dataset_info(d).ok());
        let input_shape = match (&self.input_shape, &info) {
            (Some(s), _) => s.clone(),
            (None, Some(i)) => vec![i.channels, i.height, i.width],
            (None, None) => {
                return Err(Error::index(
                    origin,
                    "input_shape",
                    "missing, and no known `dataset` to take it from",
                ))
            }
        };
        let pick = |v: &Option<Vec<f32>>, field: &str, d: Option<Vec<f32>>| {
            v.clone().or(d).ok_or_else(|| {
                Error::index(
                    origin,
                    field,
                    "missing, and no known `dataset` to take it from",
                )
            })
        };
        let mean = pick(&self.mean, "mean", info.as_ref().map(|i| i.mean.clone()))?;
        let std = pick(&self.std, "std", info.as_ref().map(|i| i.std.clone()))?;
        Ok(Entry {
            name: name.to_string(),
            version: version.to_string(),
            description: String::new(),
            architecture: Architecture {
                model: self.model.clone(),
                num_classes: self.num_classes,
                input_shape: input_shape.clone(),
            },
            preprocessing: Preprocessing {
                size: input_shape.iter().skip(1).copied().collect(),
                mean,
                std,
            },
            files: Vec::new(),
            key_map: None,
            metrics: Vec::new(),
            license: self.license.clone().unwrap_or_else(|| "unknown".into()),
            trained_by: None,
            train_command: self.command.as_ref().map(CommandLine::to_line),
        })
    }
}

/// Which weights of a run to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightsChoice {
    /// `best.safetensors` (the best evaluation), else `last.safetensors`.
    #[default]
    Best,
    /// `last.safetensors` (the final weights).
    Last,
}

/// Options of [`export`].
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The entry's version (default `1`).
    pub version: String,
    /// Which weights (default [`WeightsChoice::Best`]).
    pub weights: WeightsChoice,
    /// The weights' file name in `out_dir` (default `NAME-DATASET.safetensors`).
    pub file_name: Option<String>,
    /// License of the weights (default: `config.json`'s, else `MIT OR Apache-2.0`).
    pub license: Option<String>,
    /// Who trained them (default `mlfw`; `placeholder` marks a stand-in).
    pub trained_by: String,
    /// One line for humans.
    pub description: String,
    /// When set, the file URL is `BASE_URL/FILE` instead of relative to the index.
    pub base_url: Option<String>,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            version: "1".into(),
            weights: WeightsChoice::Best,
            file_name: None,
            license: None,
            trained_by: "mlfw".into(),
            description: String::new(),
            base_url: None,
        }
    }
}

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The entry merged into the index.
    pub entry: Entry,
    /// The weights file written.
    pub weights: PathBuf,
    /// The index written (`OUT/index.json`).
    pub index: PathBuf,
}

/// Exports the run in `run_dir` as model `name`: copies its weights into `out_dir` and adds
/// (or replaces) the `NAME@VERSION` entry of `out_dir/index.json`, creating it if needed.
///
/// # Errors
/// A missing or malformed `config.json` (naming the field), no weights file, weights
/// that are not valid safetensors, an unknown architecture, an unsafe name, an existing index
/// that is malformed or whose other entries use the same file name with other bytes.
pub fn export(
    run_dir: &Path,
    name: &str,
    out_dir: &Path,
    opts: &ExportOptions,
) -> Result<Exported> {
    index::check_name("model name", name)?;
    index::check_name("version", &opts.version)?;
    let cfg_path = run_dir.join("config.json");
    let cfg_text =
        std::fs::read_to_string(&cfg_path).map_err(|e| Error::io("reading", &cfg_path, e))?;
    let origin = cfg_path.display().to_string();
    let config = RunConfig::parse(&cfg_text, &origin)?;
    let mut entry = config.to_entry(name, &opts.version, &origin)?;
    crate::arch::check(&entry)?;

    let src = weights_file(run_dir, opts.weights)?;
    let bytes = std::fs::read(&src).map_err(|e| Error::io("reading", &src, e))?;
    mlfw_core::safetensors::load_bytes(
        &bytes,
        &src.display().to_string(),
        &mlfw_core::Device::Cpu,
    )?;
    let file_name = opts
        .file_name
        .clone()
        .unwrap_or_else(|| match &config.dataset {
            Some(d) => format!("{name}-{d}.safetensors"),
            None => format!("{name}.safetensors"),
        });
    index::check_name("file name", &file_name)?;
    if !file_name.ends_with(".safetensors") {
        return Err(Error::invalid(format!(
            "file name `{file_name}` must end in .safetensors"
        )));
    }
    let sha256 = mlfw_data::download::sha256_bytes(&bytes);
    let url = match &opts.base_url {
        Some(b) => format!("{}/{file_name}", b.trim_end_matches('/')),
        None => file_name.clone(),
    };
    entry.files = vec![FileEntry {
        name: file_name.clone(),
        url: url.clone(),
        sha256: sha256.clone(),
        size: bytes.len() as u64,
    }];
    entry.metrics = read_metrics(run_dir, opts.weights, config.dataset.as_deref())?;
    entry.trained_by = Some(opts.trained_by.clone());
    entry.description = opts.description.clone();
    if let Some(l) = &opts.license {
        entry.license = l.clone();
    } else if config.license.is_none() {
        entry.license = "MIT OR Apache-2.0".into();
    }

    std::fs::create_dir_all(out_dir).map_err(|e| Error::io("creating", out_dir, e))?;
    let index_path = out_dir.join("index.json");
    let mut index = match std::fs::read_to_string(&index_path) {
        Ok(t) => Index::parse(&t, &index_path.display().to_string())?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index::default(),
        Err(e) => return Err(Error::io("reading", &index_path, e)),
    };
    for other in &index.models {
        if other.name == entry.name && other.version == entry.version {
            continue;
        }
        if let Some(f) = other
            .files
            .iter()
            .find(|f| f.url == url && f.sha256 != sha256)
        {
            return Err(Error::invalid(format!(
                "{}: `{}` already holds the weights of `{}`; choose another file name or version",
                index_path.display(),
                f.name,
                other.id()
            )));
        }
    }
    entry.validate(&origin, "entry")?;
    index.upsert(entry.clone());
    index.validate(&index_path.display().to_string())?;
    let weights = out_dir.join(&file_name);
    mlfw_core::safetensors::write_atomic(&weights, &bytes)?;
    mlfw_core::safetensors::write_atomic(&index_path, index.to_json().as_bytes())?;
    Ok(Exported {
        entry,
        weights,
        index: index_path,
    })
}

/// `best.safetensors` or `last.safetensors` of the run, per `choice`, falling back to the other.
fn weights_file(run_dir: &Path, choice: WeightsChoice) -> Result<PathBuf> {
    let order = match choice {
        WeightsChoice::Best => ["best.safetensors", "last.safetensors"],
        WeightsChoice::Last => ["last.safetensors", "best.safetensors"],
    };
    order
        .iter()
        .map(|n| run_dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::invalid(format!(
                "{}: no {} (nor {}) in the run folder",
                run_dir.display(),
                order[0],
                order[1]
            ))
        })
}

/// Accuracy keys read from `metrics.jsonl`, with the split each implies.
const ACCURACY_KEYS: &[(&str, &str)] = &[
    ("test_accuracy", "test"),
    ("val_accuracy", "test"),
    ("accuracy", "test"),
    ("test_acc", "test"),
    ("val_acc", "test"),
    ("acc", "test"),
];

/// The metric of the exported weights from `metrics.jsonl`: the best accuracy for
/// [`WeightsChoice::Best`], the last for `Last`. No file or no accuracy: no metric.
/// Accuracies above 1 are read as percentages.
fn read_metrics(
    run_dir: &Path,
    choice: WeightsChoice,
    dataset: Option<&str>,
) -> Result<Vec<Metric>> {
    let path = run_dir.join("metrics.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("reading", &path, e)),
    };
    let mut found: Vec<Metric> = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            Error::index(
                path.display().to_string(),
                format!("line {}", i + 1),
                e.to_string(),
            )
        })?;
        let Some((acc, split)) = ACCURACY_KEYS
            .iter()
            .find_map(|(k, s)| v.get(*k).and_then(|a| a.as_f64()).map(|a| (a, *s)))
        else {
            continue;
        };
        let acc = if acc > 1.0 { acc / 100.0 } else { acc };
        found.push(Metric {
            dataset: v
                .get("dataset")
                .and_then(|d| d.as_str())
                .or(dataset)
                .unwrap_or("unknown")
                .to_string(),
            split: v
                .get("split")
                .and_then(|d| d.as_str())
                .unwrap_or(split)
                .to_string(),
            accuracy: acc.clamp(0.0, 1.0),
        });
    }
    let chosen = match choice {
        WeightsChoice::Best => found
            .into_iter()
            .max_by(|a, b| a.accuracy.total_cmp(&b.accuracy)),
        WeightsChoice::Last => found.pop(),
    };
    Ok(chosen.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_quoted() {
        let c = CommandLine::Argv(vec![
            "mlfw".into(),
            "train".into(),
            "--note".into(),
            "a b".into(),
        ]);
        assert_eq!(c.to_line(), "mlfw train --note 'a b'");
    }

    #[test]
    fn reads_the_cli_run_config() {
        let c = RunConfig::parse(
            r#"{"model":"lenet5","dataset":"mnist-mini","device":"cpu","epochs":3,"batch_size":64,
            "mean":[0.1307],"std":[0.3081],"input_shape":[1,28,28],"num_classes":10,
            "command_line":["mlfw","train","--model","lenet5","--dataset","mnist-mini"],
            "created":"2026-01-01T00:00:00Z"}"#,
            "cfg",
        )
        .unwrap();
        let e = c.to_entry("lenet5", "1", "cfg").unwrap();
        assert_eq!(
            e.train_command.as_deref(),
            Some("mlfw train --model lenet5 --dataset mnist-mini")
        );
        assert_eq!(e.preprocessing.std, vec![0.3081]);
    }

    #[test]
    fn config_defaults_from_dataset() {
        let c = RunConfig::parse(
            r#"{"model":"lenet5","num_classes":10,"dataset":"mnist-mini","command":"mlfw train","epochs":3}"#,
            "cfg",
        )
        .unwrap();
        let e = c.to_entry("lenet5", "1", "cfg").unwrap();
        assert_eq!(e.architecture.input_shape, vec![1, 28, 28]);
        assert_eq!(e.preprocessing.size, vec![28, 28]);
        assert_eq!(e.train_command.as_deref(), Some("mlfw train"));
        let bad = RunConfig::parse(r#"{"model":"lenet5","num_classes":"ten"}"#, "cfg").unwrap_err();
        assert!(bad.to_string().contains("num_classes"), "{bad}");
    }
}
