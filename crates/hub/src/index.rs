//! The registry index (`index.json`): models with their architecture, preprocessing, files,
//! metrics, license and training command. The format is documented in `crates/hub/README.md`.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The newest index format this crate reads (the `format_version` field).
pub const FORMAT_VERSION: u32 = 1;

/// A registry index: the whole `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    /// Index format version; this crate reads [`FORMAT_VERSION`] and older.
    #[serde(default = "format_version")]
    pub format_version: u32,
    /// The models, any order; one name may appear with several versions.
    pub models: Vec<Entry>,
}

fn format_version() -> u32 {
    FORMAT_VERSION
}

impl Default for Index {
    fn default() -> Self {
        Index {
            format_version: FORMAT_VERSION,
            models: Vec::new(),
        }
    }
}

/// One model version of a registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Model name (`lenet5`): letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// Version (`1`, `1.2`, `2024-06-01`): same characters as names.
    pub version: String,
    /// One line for humans.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// What to build before loading the weights.
    pub architecture: Architecture,
    /// How inputs must be prepared.
    pub preprocessing: Preprocessing,
    /// The files: exactly one `.safetensors` (the state dict), optionally `.json` files.
    pub files: Vec<FileEntry>,
    /// Measured quality.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<Metric>,
    /// License of the weights (SPDX id where there is one).
    pub license: String,
    /// Who trained the weights: `mlfw`, `pytorch`, or `placeholder` for a stand-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trained_by: Option<String>,
    /// The exact command that produced the weights (`mlfw train --model lenet5 ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_command: Option<String>,
    /// How the file's tensor names map to the zoo's: absent (already the zoo's, PyTorch's
    /// names) or `timm` (a `timm/*` release, renamed on load; see [`crate::timm`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_map: Option<String>,
}

/// The zoo architecture an entry's weights belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Architecture {
    /// Zoo model name, as the vision registry knows it (`lenet5`, `resnet18`, ...).
    pub model: String,
    /// Number of output classes.
    pub num_classes: usize,
    /// One input's shape `[C, H, W]` (a batch is `[N, C, H, W]`).
    pub input_shape: Vec<usize>,
}

impl Architecture {
    /// Input channels (`input_shape[0]`).
    pub fn in_channels(&self) -> usize {
        self.input_shape.first().copied().unwrap_or(0)
    }
}

/// How an image becomes the model's input: resize to `size`, scale to `[0, 1]`,
/// then normalize per channel with `mean` and `std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// `[H, W]` the image is resized (or center-cropped) to.
    pub size: Vec<usize>,
    /// Per-channel mean of `[0, 1]` pixels.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation of `[0, 1]` pixels.
    pub std: Vec<f32>,
}

/// One file of an entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Its name in the cache folder: a plain file name, no separators or `..`.
    pub name: String,
    /// Where to fetch it: absolute (`https://...`) or relative to the index's location.
    pub url: String,
    /// SHA-256, 64 lowercase hex digits.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// One measured metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// Dataset registry name (`mnist-mini`).
    pub dataset: String,
    /// Split (`test`, `train`).
    pub split: String,
    /// Top-1 accuracy in `[0, 1]`.
    pub accuracy: f64,
}

impl Index {
    /// Parses and validates an index; `origin` (URL or path) names it in errors, and a bad or
    /// missing field is named by its JSON path (`models[0].files[0].sha256`).
    ///
    /// # Errors
    /// [`Error::Index`] naming `origin` and the field's JSON path: not JSON, a missing or mistyped
    /// field, or what [`Index::validate`] rejects.
    pub fn parse(text: &str, origin: &str) -> Result<Index> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::index(origin, "", format!("not valid JSON: {e}")))?;
        if let Some(v) = value.get("format_version").and_then(|v| v.as_u64()) {
            if v > FORMAT_VERSION as u64 {
                return Err(Error::index(
                    origin,
                    "format_version",
                    format!(
                        "format {v} is newer than this mlfw reads ({FORMAT_VERSION}); upgrade mlfw"
                    ),
                ));
            }
        }
        let index: Index = from_value(value, origin)?;
        index.validate(origin)?;
        Ok(index)
    }

    /// Checks every entry (see [`Entry::validate`]) and that no `NAME@VERSION` repeats.
    ///
    /// # Errors
    /// [`Error::Index`] naming the entry (see [`Entry::validate`]) or the repeated `NAME@VERSION`.
    pub fn validate(&self, origin: &str) -> Result<()> {
        for (i, e) in self.models.iter().enumerate() {
            e.validate(origin, &format!("models[{i}]"))?;
            if self.models[..i]
                .iter()
                .any(|o| o.name == e.name && o.version == e.version)
            {
                return Err(Error::index(
                    origin,
                    format!("models[{i}]"),
                    format!("`{}` is listed twice", e.id()),
                ));
            }
        }
        Ok(())
    }

    /// The entry `name` at `version`, or at its newest version when `version` is `None`.
    pub fn find(&self, name: &str, version: Option<&str>) -> Option<&Entry> {
        self.models
            .iter()
            .filter(|e| e.name == name && version.is_none_or(|v| e.version == v))
            .max_by(|a, b| compare_versions(&a.version, &b.version))
    }

    /// Replaces the entry with the same name and version, or appends it.
    pub fn upsert(&mut self, entry: Entry) {
        match self
            .models
            .iter_mut()
            .find(|e| e.name == entry.name && e.version == entry.version)
        {
            Some(e) => *e = entry,
            None => self.models.push(entry),
        }
    }

    /// Pretty JSON, ending in a newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

impl Entry {
    /// `NAME@VERSION`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }

    /// The state-dict file (the one `.safetensors` file).
    ///
    /// # Errors
    /// [`Error::Invalid`] when the entry lists no `.safetensors` file or several.
    pub fn weights(&self) -> Result<&FileEntry> {
        let mut it = self
            .files
            .iter()
            .filter(|f| f.name.ends_with(".safetensors"));
        match (it.next(), it.next()) {
            (Some(f), None) => Ok(f),
            _ => Err(Error::invalid(format!(
                "model `{}`: expected exactly one .safetensors file",
                self.id()
            ))),
        }
    }

    /// The best accuracy among the metrics, with its dataset and split.
    pub fn best_metric(&self) -> Option<&Metric> {
        self.metrics
            .iter()
            .max_by(|a, b| a.accuracy.total_cmp(&b.accuracy))
    }

    /// Checks names, digests, file kinds and shapes; `at` is the entry's JSON path for errors.
    ///
    /// # Errors
    /// [`Error::Index`] naming `origin` and `at.field`: an unsafe name or version, an empty model,
    /// zero classes, a malformed sha256, a file that is neither `.safetensors` nor `.json`, bad
    /// shapes.
    pub fn validate(&self, origin: &str, at: &str) -> Result<()> {
        let bad = |field: &str, msg: String| Error::index(origin, format!("{at}.{field}"), msg);
        let named = |field: &str, e: Error| bad(field, e.to_string());
        check_name("model name", &self.name).map_err(|e| named("name", e))?;
        check_name("version", &self.version).map_err(|e| named("version", e))?;
        if self.architecture.model.trim().is_empty() {
            return Err(bad("architecture.model", "is empty".into()));
        }
        if self.architecture.num_classes == 0 {
            return Err(bad("architecture.num_classes", "must be at least 1".into()));
        }
        if let Some(m) = self.key_map.as_deref().filter(|m| *m != "timm") {
            return Err(bad(
                "key_map",
                format!("is `{m}`; the only key map is `timm`"),
            ));
        }
        if self.architecture.input_shape.len() != 3 || self.architecture.input_shape.contains(&0) {
            return Err(bad(
                "architecture.input_shape",
                format!(
                    "expected [C, H, W] with positive sizes, got {:?}",
                    self.architecture.input_shape
                ),
            ));
        }
        let p = &self.preprocessing;
        if p.size.len() != 2 || p.size.contains(&0) {
            return Err(bad(
                "preprocessing.size",
                format!("expected [H, W], got {:?}", p.size),
            ));
        }
        if p.size[..] != self.architecture.input_shape[1..] {
            return Err(bad(
                "preprocessing.size",
                format!(
                    "is {:?}, but architecture.input_shape {:?} takes {:?} images",
                    p.size,
                    self.architecture.input_shape,
                    &self.architecture.input_shape[1..]
                ),
            ));
        }
        let c = self.architecture.in_channels();
        for (field, v) in [("mean", &p.mean), ("std", &p.std)] {
            if v.len() != c && v.len() != 1 {
                return Err(bad(
                    &format!("preprocessing.{field}"),
                    format!(
                        "expected 1 or {c} values (one per channel), got {}",
                        v.len()
                    ),
                ));
            }
        }
        if p.std.iter().any(|s| s.is_nan() || *s <= 0.0) {
            return Err(bad("preprocessing.std", "values must be positive".into()));
        }
        if self.files.is_empty() {
            return Err(bad("files", "lists no file".into()));
        }
        for (j, f) in self.files.iter().enumerate() {
            let at_f = |field: &str| format!("files[{j}].{field}");
            check_name("file name", &f.name).map_err(|e| named(&at_f("name"), e))?;
            if !(f.name.ends_with(".safetensors") || f.name.ends_with(".json")) {
                return Err(bad(
                    &at_f("name"),
                    format!(
                        "`{}`: only .safetensors and .json files are allowed",
                        f.name
                    ),
                ));
            }
            if f.url.trim().is_empty() {
                return Err(bad(&at_f("url"), "is empty".into()));
            }
            if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(
                    &at_f("sha256"),
                    format!("expected 64 hex digits, got `{}`", f.sha256),
                ));
            }
            if self.files[..j].iter().any(|o| o.name == f.name) {
                return Err(bad(&at_f("name"), format!("`{}` is listed twice", f.name)));
            }
        }
        self.weights().map_err(|e| bad("files", e.to_string()))?;
        for (j, m) in self.metrics.iter().enumerate() {
            if !(0.0..=1.0).contains(&m.accuracy) {
                return Err(bad(
                    &format!("metrics[{j}].accuracy"),
                    format!("expected a fraction in [0, 1], got {}", m.accuracy),
                ));
            }
        }
        Ok(())
    }
}

/// Deserializes `value`, naming the JSON path of a bad or missing field in the error.
pub(crate) fn from_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    origin: &str,
) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // Name a missing field with its full path too: `models[0]` + `sha256`.
        let field = match missing_field(&inner) {
            Some(f) if path == "." || path.is_empty() => f.to_string(),
            Some(f) => format!("{path}.{f}"),
            None => path,
        };
        Error::index(origin, field, inner)
    })
}

fn missing_field(msg: &str) -> Option<&str> {
    msg.strip_prefix("missing field `")?.split('`').next()
}

/// Rejects names that are unsafe as one path component: empty, `.`/`..`, separators,
/// leading `.` or `-`, or characters outside `A-Z a-z 0-9 . _ -`.
///
/// # Errors
/// [`Error::UnsafeName`] naming `what`, the name and the reason.
pub fn check_name(what: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("is empty")
    } else if name.len() > 128 {
        Some("is longer than 128 characters")
    } else if name.contains('/') || name.contains('\\') {
        Some("contains a path separator")
    } else if name.contains("..") {
        Some("contains `..`")
    } else if name.starts_with('.') || name.starts_with('-') {
        Some("starts with `.` or `-`")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        Some("may hold only letters, digits, `.`, `_` and `-`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::UnsafeName {
            what,
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Orders versions by dot/dash-separated parts, numerically where both parts are numbers
/// (`1.10` > `1.9`), else as text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let split = |s: &str| {
        s.split(['.', '-', '_'])
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
    };
    let (pa, pb) = (split(a), split(b));
    for (x, y) in pa.iter().zip(&pb) {
        let o = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(m), Ok(n)) => m.cmp(&n),
            _ => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

/// Splits `NAME[@VERSION]`.
///
/// # Errors
/// [`Error::UnsafeName`] for an unsafe name or version.
pub fn parse_spec(spec: &str) -> Result<(&str, Option<&str>)> {
    let (name, version) = match spec.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    };
    check_name("model name", name)?;
    if let Some(v) = version {
        check_name("version", v)?;
    }
    Ok((name, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> String {
        r#"{"models":[{"name":"m","version":"1","architecture":{"model":"lenet5","num_classes":10,"input_shape":[1,28,28]},
        "preprocessing":{"size":[28,28],"mean":[0.1307],"std":[0.3081]},
        "files":[{"name":"m.safetensors","url":"m.safetensors","sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","size":3}],
        "metrics":[{"dataset":"mnist-mini","split":"test","accuracy":0.97}],"license":"MIT"}]}"#
            .to_string()
    }

    #[test]
    fn parses_and_finds() {
        let i = Index::parse(&sample(), "t").unwrap();
        assert_eq!(i.find("m", None).unwrap().version, "1");
        assert!(i.find("m", Some("2")).is_none());
        let again = Index::parse(&i.to_json(), "t").unwrap();
        assert_eq!(again, i);
    }

    #[test]
    fn bad_field_is_named() {
        let s = sample().replace("\"size\":3", "\"size\":\"three\"");
        let e = Index::parse(&s, "idx.json").unwrap_err().to_string();
        assert!(e.contains("models[0].files[0].size"), "{e}");
        let s = sample().replace("\"sha256\":\"ba78", "\"sha256x\":\"ba78");
        let e = Index::parse(&s, "idx.json").unwrap_err().to_string();
        assert!(e.contains("sha256x"), "{e}");
        let s = sample().replace(",\"license\":\"MIT\"", "");
        let e = Index::parse(&s, "idx.json").unwrap_err().to_string();
        assert!(e.contains("models[0].license"), "{e}");
        let s = sample().replace("ba7816bf", "zz");
        let e = Index::parse(&s, "idx.json").unwrap_err().to_string();
        assert!(e.contains("models[0].files[0].sha256"), "{e}");
        let e = Index::parse("{", "idx.json").unwrap_err().to_string();
        assert!(e.contains("idx.json") && e.contains("JSON"), "{e}");
    }

    #[test]
    fn unsafe_file_names_rejected() {
        for bad in [
            "../x.safetensors",
            "/etc/x.safetensors",
            "a/b.safetensors",
            "a\\b.safetensors",
            "..",
            "run.sh",
        ] {
            let s = sample().replace(
                "\"name\":\"m.safetensors\"",
                &format!("\"name\":{}", serde_json::json!(bad)),
            );
            let e = Index::parse(&s, "i").unwrap_err().to_string();
            assert!(e.contains("models[0].files[0].name"), "{bad}: {e}");
        }
    }

    #[test]
    fn newer_format_rejected() {
        let s = sample().replacen('{', "{\"format_version\":99,", 1);
        let e = Index::parse(&s, "i").unwrap_err().to_string();
        assert!(e.contains("format_version") && e.contains("upgrade"), "{e}");
    }

    #[test]
    fn versions_order() {
        assert_eq!(compare_versions("1.10", "1.9"), Ordering::Greater);
        assert_eq!(compare_versions("2", "10"), Ordering::Less);
        assert_eq!(compare_versions("1", "1.1"), Ordering::Less);
        assert_eq!(parse_spec("a@2").unwrap(), ("a", Some("2")));
        assert!(parse_spec("../a").is_err());
    }
}
