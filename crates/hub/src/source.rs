//! Where registries live: the built-in one, an HTTP(S) index URL, a local folder, or a
//! Hugging Face Hub repo (`hf://owner/repo[@revision]`), and the URLs of their files.
//! Reading an index and locating files is `registry.rs`, above the options.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::index;

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
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unsupported scheme or a malformed `hf://owner/repo[@revision]`.
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

    /// The index's location (URL or path), as errors name it; `hf_endpoint` serves
    /// Hugging Face sources.
    pub(crate) fn index_location(&self, hf_endpoint: &str) -> String {
        match self {
            Source::Builtin => "builtin:index.json".into(),
            Source::Http { index_url } => index_url.clone(),
            Source::Local { dir } => dir.join("index.json").display().to_string(),
            Source::HuggingFace { repo, revision } => {
                hf_file_url(hf_endpoint, repo, revision, "index.json")
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

/// The largest index or config document fetched (16 MiB): a server sending more is cut off.
pub const MAX_DOCUMENT_BYTES: u64 = 16 << 20;

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
