//! [`HubOptions`]: where the cache is, which registry to read, offline/force, progress.

use std::path::PathBuf;
use std::time::Duration;

use mlfw_data::{DownloadOptions, Progress};

use crate::error::Result;
use crate::source::{Source, HF_ENDPOINT};

/// Options of every hub operation. [`HubOptions::default`] reads no environment variable
/// except `MLFW_HOME` when `home` is `None`; [`HubOptions::from_env`] also reads
/// `MLFW_HUB_REGISTRY`, `MLFW_OFFLINE` and `HF_ENDPOINT` (what the `mlfw` command uses).
#[derive(Debug, Clone)]
pub struct HubOptions {
    /// mlfw's home; the cache is `HOME/hub`. `None`: `$MLFW_HOME`, else `~/.cache/mlfw`.
    pub home: Option<PathBuf>,
    /// A registry searched before the built-in one: an `index.json` URL, `hf://owner/repo[@rev]`,
    /// or a local folder (see [`Source::parse`]).
    pub registry: Option<String>,
    /// Use the cache (and the built-in registry, which needs no network) only.
    pub offline: bool,
    /// Re-fetch files even when the cache holds verified copies.
    pub force: bool,
    /// How downloads report progress on stderr.
    pub progress: Progress,
    /// Hugging Face endpoint (`https://huggingface.co`); tests point it at 127.0.0.1.
    pub hf_endpoint: Option<String>,
    /// Connect/read timeout of each request.
    pub timeout: Duration,
    /// Extra attempts per file after a network error (each resumes the partial file).
    pub retries: u32,
    /// Pause before each extra attempt.
    pub retry_delay: Duration,
}

impl Default for HubOptions {
    fn default() -> Self {
        let d = DownloadOptions::default();
        HubOptions {
            home: None,
            registry: None,
            offline: false,
            force: false,
            progress: Progress::Auto,
            hf_endpoint: None,
            timeout: d.timeout,
            retries: d.retries,
            retry_delay: d.retry_delay,
        }
    }
}

/// `true` for `1`, `true`, `yes`, `on` (any case).
fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

impl HubOptions {
    /// Defaults plus `MLFW_HUB_REGISTRY`, `MLFW_OFFLINE` and `HF_ENDPOINT` from the environment.
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        HubOptions {
            registry: var("MLFW_HUB_REGISTRY"),
            offline: var("MLFW_OFFLINE").is_some_and(|v| truthy(&v)),
            hf_endpoint: var("HF_ENDPOINT"),
            ..Default::default()
        }
    }

    /// Sets the home folder (the cache is `home/hub`).
    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    /// Sets the registry searched before the built-in one.
    pub fn registry(mut self, registry: impl Into<String>) -> Self {
        self.registry = Some(registry.into());
        self
    }

    /// Sets offline mode.
    pub fn offline(mut self, on: bool) -> Self {
        self.offline = on;
        self
    }

    /// Sets force re-download.
    pub fn force(mut self, on: bool) -> Self {
        self.force = on;
        self
    }

    /// Sets progress reporting.
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// Sets the Hugging Face endpoint.
    pub fn hf_endpoint(mut self, url: impl Into<String>) -> Self {
        self.hf_endpoint = Some(url.into());
        self
    }
}

/// Options resolved once per call.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) home: PathBuf,
    pub(crate) sources: Vec<Source>,
    pub(crate) offline: bool,
    pub(crate) force: bool,
    pub(crate) hf_endpoint: String,
    pub(crate) download: DownloadOptions,
}

impl Ctx {
    pub(crate) fn new(o: &HubOptions) -> Result<Ctx> {
        let mut sources = Vec::new();
        if let Some(r) = o.registry.as_deref().filter(|r| !r.trim().is_empty()) {
            let s = Source::parse(r)?;
            if s != Source::Builtin {
                sources.push(s);
            }
        }
        sources.push(Source::Builtin);
        Ok(Ctx {
            home: o.home.clone().unwrap_or_else(mlfw_data::mlfw_home),
            sources,
            offline: o.offline,
            force: o.force,
            hf_endpoint: o
                .hf_endpoint
                .clone()
                .unwrap_or_else(|| HF_ENDPOINT.to_string()),
            download: DownloadOptions {
                progress: o.progress,
                timeout: o.timeout,
                retries: o.retries,
                retry_delay: o.retry_delay,
                ..DownloadOptions::default()
            },
        })
    }

    /// `home/hub`.
    pub(crate) fn hub_dir(&self) -> PathBuf {
        self.home.join("hub")
    }
}
