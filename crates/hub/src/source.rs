//! Where registries live: the built-in one, an HTTP(S) index URL, a local folder, or a
//! Hugging Face Hub repo (`hf://owner/repo[@revision]`). Reads their index and resolves
//! each file's location.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use mlfw_data::download::{download_file, Checksum};

use crate::error::{Error, Result};
use crate::export::RunConfig;
use crate::index::{self, Entry, FileEntry, Index};
use crate::options::Ctx;

/// The default Hugging Face endpoint (override with `HF_ENDPOINT` or [`crate::HubOptions`]).
pub const HF_ENDPOINT: &str = "https://huggingface.co";

/// A registry location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The registry compiled into this binary (works offline).
    Builtin,
    /// An `index.json` served over HTTP(S); relative file URLs resolve against it.
    Http {
        /// The index URL.
        index_url: String,
    },
    /// A local folder holding `index.json`; relative file URLs are paths inside it.
    Local {
        /// The folder.
        dir: PathBuf,
    },
    /// A Hugging Face Hub model repo.
    HuggingFace {
        /// `owner/repo`.
        repo: String,
        /// Branch, tag or commit (default `main`).
        revision: String,
    },
}

impl Source {
    /// Parses `builtin`, `http(s)://.../index.json`, `hf://owner/repo[@rev]`,
    /// `file:///dir`, or a local path (a folder, or an `index.json` in one).
    pub fn parse(s: &str) -> Result<Source> {
        let s = s.trim();
        if s == "builtin" {
            return Ok(Source::Builtin);
        }
        if s.starts_with("http://") || s.starts_with("https://") {
            return Ok(Source::Http {
                index_url: s.to_string(),
            });
        }
        if let Some(rest) = s.strip_prefix("hf://") {
            return parse_hf(rest);
        }
        if s.contains("://") && !s.starts_with("file://") {
            return Err(Error::invalid(format!(
                "registry `{s}`: unsupported scheme (use http(s)://, hf://, file:// or a folder)"
            )));
        }
        let path = PathBuf::from(s.strip_prefix("file://").unwrap_or(s));
        let dir = if path.file_name().is_some_and(|n| n == "index.json") {
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            path
        };
        Ok(Source::Local { dir })
    }

    /// The index's location (URL or path), as errors name it.
    pub(crate) fn index_location(&self, ctx: &Ctx) -> String {
        match self {
            Source::Builtin => "builtin:index.json".into(),
            Source::Http { index_url } => index_url.clone(),
            Source::Local { dir } => dir.join("index.json").display().to_string(),
            Source::HuggingFace { repo, revision } => {
                hf_file_url(&ctx.hf_endpoint, repo, revision, "index.json")
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Builtin => f.write_str("builtin"),
            Source::Http { index_url } => f.write_str(index_url),
            Source::Local { dir } => write!(f, "{}", dir.display()),
            Source::HuggingFace { repo, revision } if revision == "main" => {
                write!(f, "hf://{repo}")
            }
            Source::HuggingFace { repo, revision } => write!(f, "hf://{repo}@{revision}"),
        }
    }
}

fn parse_hf(rest: &str) -> Result<Source> {
    let (repo, revision) = match rest.split_once('@') {
        Some((r, v)) => (r, v),
        None => (rest, "main"),
    };
    let bad = |why: &str| {
        Error::invalid(format!(
            "`hf://{rest}`: {why} (expected hf://owner/repo[@revision])"
        ))
    };
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() != 2 {
        return Err(bad("expected exactly one `/`"));
    }
    for p in &parts {
        index::check_name("Hugging Face repo part", p).map_err(|e| bad(&e.to_string()))?;
    }
    if revision.is_empty()
        || revision.contains("..")
        || revision.chars().any(|c| c.is_control() || c == ' ')
    {
        return Err(bad("bad revision"));
    }
    Ok(Source::HuggingFace {
        repo: repo.to_string(),
        revision: revision.to_string(),
    })
}

/// `ENDPOINT/owner/repo/resolve/REV/FILE`; `/` in the revision is percent-encoded.
pub fn hf_file_url(endpoint: &str, repo: &str, revision: &str, file: &str) -> String {
    format!(
        "{}/{repo}/resolve/{}/{file}",
        endpoint.trim_end_matches('/'),
        revision.replace('/', "%2F")
    )
}

/// `ENDPOINT/api/models/owner/repo/revision/REV?blobs=true`: file list with LFS sha256s.
pub fn hf_api_url(endpoint: &str, repo: &str, revision: &str) -> String {
    format!(
        "{}/api/models/{repo}/revision/{}?blobs=true",
        endpoint.trim_end_matches('/'),
        revision.replace('/', "%2F")
    )
}

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
    pub fn open(source: &Source, ctx: &Ctx) -> Result<Registry> {
        let origin = source.index_location(ctx);
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
                self.source.index_location(ctx),
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

/// Resolves `rel` against the URL `base`: `/x` is host-relative, anything else is relative
/// to `base`'s folder.
pub fn join_url(base: &str, rel: &str) -> String {
    let base = base.split(['?', '#']).next().unwrap_or(base);
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    if rel.starts_with('/') {
        let host_end = base[after_scheme..]
            .find('/')
            .map_or(base.len(), |i| after_scheme + i);
        return format!("{}{rel}", &base[..host_end]);
    }
    match base[after_scheme..].rfind('/') {
        Some(i) => format!("{}{rel}", &base[..after_scheme + i + 1]),
        None => format!("{base}/{rel}"),
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The largest index or config document fetched (16 MiB): a server sending more is cut off.
pub const MAX_DOCUMENT_BYTES: u64 = 16 << 20;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!(Source::parse("builtin").unwrap(), Source::Builtin);
        assert_eq!(
            Source::parse("hf://me/lenet").unwrap(),
            Source::HuggingFace {
                repo: "me/lenet".into(),
                revision: "main".into()
            }
        );
        assert_eq!(
            Source::parse("hf://me/lenet@v2").unwrap().to_string(),
            "hf://me/lenet@v2"
        );
        assert!(Source::parse("hf://me").is_err());
        assert!(Source::parse("hf://me/../x").is_err());
        assert!(Source::parse("ftp://x/index.json").is_err());
        assert_eq!(
            Source::parse("/srv/reg/index.json").unwrap(),
            Source::Local {
                dir: "/srv/reg".into()
            }
        );
    }

    #[test]
    fn hf_urls() {
        assert_eq!(
            hf_file_url(HF_ENDPOINT, "me/lenet", "main", "index.json"),
            "https://huggingface.co/me/lenet/resolve/main/index.json"
        );
        assert_eq!(
            hf_file_url(
                "http://127.0.0.1:8/",
                "a/b",
                "refs/pr/1",
                "model.safetensors"
            ),
            "http://127.0.0.1:8/a/b/resolve/refs%2Fpr%2F1/model.safetensors"
        );
        assert_eq!(
            hf_api_url(HF_ENDPOINT, "a/b", "v1"),
            "https://huggingface.co/api/models/a/b/revision/v1?blobs=true"
        );
    }

    #[test]
    fn joins_urls() {
        assert_eq!(
            join_url("http://h/r/index.json", "w.safetensors"),
            "http://h/r/w.safetensors"
        );
        assert_eq!(
            join_url("http://h:1/r/index.json?x=1", "a/w.safetensors"),
            "http://h:1/r/a/w.safetensors"
        );
        assert_eq!(
            join_url("http://h/r/index.json", "/w.safetensors"),
            "http://h/w.safetensors"
        );
        assert_eq!(join_url("http://h", "w"), "http://h/w");
    }
}
