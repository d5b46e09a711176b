//! Reading a registry: its index (fetched, read from a folder, or compiled in; for a
//! Hugging Face repo without `index.json`, built from its `config.json` and the Hub API)
//! and where each of its files' bytes come from.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use mlfw_data::download::{download_file, Checksum};

use crate::error::{Error, Result};
use crate::export::RunConfig;
use crate::index::{Entry, FileEntry, Index};
use crate::options::Ctx;
use crate::source::{hf_api_url, hf_file_url, join_url, Source, MAX_DOCUMENT_BYTES};

/// Where one file's bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// Fetched over HTTP(S).
    Url(String),
    /// Copied from a local file.
    Path(PathBuf),
    /// Compiled into the binary.
    Embedded(&'static [u8]),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Url(u) => f.write_str(u),
            Location::Path(p) => write!(f, "{}", p.display()),
            Location::Embedded(_) => f.write_str("builtin"),
        }
    }
}

/// A registry's index, read.
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    pub source: Source,
    pub index: Index,
}

impl Registry {
    /// Reads the index of `source` (a network fetch for HTTP and Hugging Face sources).
    ///
    /// # Errors
    /// [`Error::Io`] for an unreadable local index; [`Error::Data`] for a failed fetch (HTTP
    /// status, network); [`Error::Index`] naming the index for malformed JSON or entries; for a
    /// Hugging Face repo without `index.json`, errors of its `config.json` and the Hub API.
    pub fn open(source: &Source, ctx: &Ctx) -> Result<Registry> {
        let origin = source.index_location(&ctx.hf_endpoint);
        let index = match source {
            Source::Builtin => Index::parse(crate::builtin::INDEX, &origin)?,
            Source::Local { dir } => {
                let p = dir.join("index.json");
                let text = std::fs::read_to_string(&p).map_err(|e| Error::io("reading", &p, e))?;
                Index::parse(&text, &origin)?
            }
            Source::Http { index_url } => Index::parse(&fetch_text(index_url, ctx)?, &origin)?,
            Source::HuggingFace { repo, revision } => match fetch_text(&origin, ctx) {
                Ok(text) => Index::parse(&text, &origin)?,
                Err(e) if e.http_status() == Some(404) => hf_fallback(repo, revision, ctx)?,
                Err(e) => return Err(e),
            },
        };
        Ok(Registry {
            source: source.clone(),
            index,
        })
    }

    /// Where the bytes of `file` (of an entry of this registry) come from.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an absolute URL in the built-in registry, a scheme other than
    /// http(s), or a built-in file that is not embedded.
    pub fn locate(&self, file: &FileEntry, ctx: &Ctx) -> Result<Location> {
        let url = file.url.trim();
        let absolute = url.starts_with("http://") || url.starts_with("https://");
        if absolute {
            return match self.source {
                Source::Builtin => Err(Error::invalid(format!(
                    "built-in registry: file `{}` must be embedded, not `{url}`",
                    file.name
                ))),
                _ => Ok(Location::Url(url.to_string())),
            };
        }
        if url.contains("://") {
            return Err(Error::invalid(format!(
                "{}: file `{}`: unsupported URL `{url}` (use http(s):// or a relative path)",
                self.source.index_location(&ctx.hf_endpoint),
                file.name
            )));
        }
        match &self.source {
            Source::Builtin => crate::builtin::file(url)
                .map(Location::Embedded)
                .ok_or_else(|| {
                    Error::invalid(format!("built-in registry: no embedded file `{url}`"))
                }),
            Source::Local { dir } => Ok(Location::Path(dir.join(url))),
            Source::Http { index_url } => Ok(Location::Url(join_url(index_url, url))),
            Source::HuggingFace { repo, revision } => Ok(Location::Url(hf_file_url(
                &ctx.hf_endpoint,
                repo,
                revision,
                url.trim_start_matches('/'),
            ))),
        }
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Fetches a small text document (an index, a config) with the data ring's downloader, at
/// most [`MAX_DOCUMENT_BYTES`].
pub(crate) fn fetch_text(url: &str, ctx: &Ctx) -> Result<String> {
    let tmp_dir = ctx.hub_dir().join(".tmp");
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = tmp_dir.join(format!("fetch-{}-{n}.json", std::process::id()));
    let mut opts = ctx.download.clone().max_bytes(MAX_DOCUMENT_BYTES);
    opts.progress = mlfw_data::Progress::Quiet;
    let res = download_file(&[url.to_string()], &tmp, Checksum::None, &opts)
        .map_err(Error::from)
        .and_then(|p| std::fs::read(&p).map_err(|e| Error::io("reading", &p, e)));
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(mlfw_data::download::part_path(&tmp));
    let bytes = res?;
    String::from_utf8(bytes).map_err(|_| Error::index(url, "", "not UTF-8 text"))
}

/// An index for a Hugging Face repo without `index.json`: `config.json` (the run-folder
/// convention, see [`RunConfig`], or timm's, see [`crate::timm`]) plus `model.safetensors`,
/// whose sha256 and size come from the Hub API's LFS metadata.
fn hf_fallback(repo: &str, revision: &str, ctx: &Ctx) -> Result<Index> {
    let config_url = hf_file_url(&ctx.hf_endpoint, repo, revision, "config.json");
    let config_text = fetch_text(&config_url, ctx).map_err(|e| {
        Error::invalid(format!(
            "hf://{repo}@{revision} has no mlfw index.json and no config.json: {e}"
        ))
    })?;
    let api_url = hf_api_url(&ctx.hf_endpoint, repo, revision);
    let api: serde_json::Value = serde_json::from_str(&fetch_text(&api_url, ctx)?)
        .map_err(|e| Error::index(&api_url, "", format!("not valid JSON: {e}")))?;
    let sibling = api
        .get("siblings")
        .and_then(|s| s.as_array())
        .and_then(|s| {
            s.iter()
                .find(|f| f.get("rfilename").and_then(|n| n.as_str()) == Some("model.safetensors"))
        })
        .ok_or_else(|| Error::index(&api_url, "siblings", "the repo has no model.safetensors"))?;
    let lfs = sibling.get("lfs");
    let sha = lfs
        .and_then(|l| l.get("sha256"))
        .and_then(|s| s.as_str())
        .ok_or_else(|| {
            Error::index(
                &api_url,
                "siblings.model.safetensors.lfs.sha256",
                "no sha256 published (model.safetensors must be stored with LFS)",
            )
        })?;
    let size = lfs
        .and_then(|l| l.get("size"))
        .or_else(|| sibling.get("size"))
        .and_then(|s| s.as_u64())
        .unwrap_or(0);
    let name = repo.rsplit('/').next().unwrap_or(repo).to_ascii_lowercase();
    let version: String = revision
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let version = version.trim_start_matches(['.', '-']);
    let mut entry: Entry =
        match crate::timm::entry_from_config(&config_text, &config_url, &name, version)? {
            Some(timm) => timm,
            None => RunConfig::parse(&config_text, &config_url)?.to_entry(
                &name,
                version,
                &config_url,
            )?,
        };
    entry.files = vec![FileEntry {
        name: "model.safetensors".into(),
        url: "model.safetensors".into(),
        sha256: sha.to_ascii_lowercase(),
        size,
    }];
    let index = Index {
        models: vec![entry],
        ..Index::default()
    };
    index.validate(&config_url)?;
    Ok(index)
}
