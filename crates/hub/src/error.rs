//! The hub's error type: each variant names the model, file, URL or index field involved.

use std::fmt;
use std::path::{Path, PathBuf};

/// Result alias for the hub.
pub type Result<T> = std::result::Result<T, Error>;

/// An error from reading a registry, pulling, caching, exporting or loading a model.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A download, checksum or local-file error from the data ring's downloader
    /// (its message names the URL and HTTP status, or the file and both digests).
    Data(mlfw_data::Error),
    /// An error from the tensor core (safetensors parsing, shapes).
    Core(mlfw_core::Error),
    /// Reading or writing a local file failed.
    Io {
        /// What was being done (`"reading"`, `"creating"`, ...).
        action: &'static str,
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// An index (or config) is malformed; `field` is the JSON path (`models[0].files[1].sha256`).
    Index {
        /// Where the index came from (URL or path).
        origin: String,
        /// The JSON path of the offending field (empty for the whole document).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No registry lists the model (or the version).
    NotFound {
        /// `NAME` or `NAME@VERSION` as asked.
        spec: String,
        /// The registries searched.
        searched: Vec<String>,
        /// The model names those registries list.
        available: Vec<String>,
    },
    /// Offline mode and the model is not in the cache.
    NotCached {
        /// `NAME` or `NAME@VERSION` as asked.
        spec: String,
        /// The cache folder looked in.
        dir: PathBuf,
    },
    /// An entry names an architecture the model zoo does not know.
    UnknownArchitecture {
        /// The entry (`NAME@VERSION`).
        entry: String,
        /// The architecture asked for.
        model: String,
        /// The architectures that exist.
        known: Vec<String>,
    },
    /// A name from an index or a user is unsafe as a file or folder name.
    UnsafeName {
        /// What the name is (`"file name"`, `"model name"`, `"version"`).
        what: &'static str,
        /// The name.
        name: String,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// Any other invalid argument or state, with a message.
    Invalid(String),
}

impl Error {
    /// An [`Error::Io`].
    pub fn io(action: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// An [`Error::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    /// An [`Error::Index`].
    pub fn index(
        origin: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Index {
            origin: origin.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// The HTTP status when this error is (only) an HTTP error status.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Data(mlfw_data::Error::Http { status, .. }) => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Data(e) => write!(f, "{e}"),
            Error::Core(e) => write!(f, "{e}"),
            Error::Io {
                action,
                path,
                source,
            } => write!(f, "{action} {}: {source}", path.display()),
            Error::Index {
                origin,
                field,
                message,
            } if field.is_empty() || field == "." => write!(f, "{origin}: {message}"),
            Error::Index {
                origin,
                field,
                message,
            } => write!(f, "{origin}: field `{field}`: {message}"),
            Error::NotFound {
                spec,
                searched,
                available,
            } => {
                write!(f, "no model `{spec}` in {}", searched.join(", "))?;
                if available.is_empty() {
                    Ok(())
                } else {
                    write!(f, "; available: {}", available.join(", "))
                }
            }
            Error::NotCached { spec, dir } => write!(
                f,
                "model `{spec}` is not in the cache ({}) and offline mode is on \
                 (MLFW_OFFLINE); run `mlfw hub pull {spec}` with a network first",
                dir.display()
            ),
            Error::UnknownArchitecture {
                entry,
                model,
                known,
            } => write!(
                f,
                "model `{entry}` needs architecture `{model}`, which this mlfw does not know \
                 (known: {}); a newer mlfw may",
                known.join(", ")
            ),
            Error::UnsafeName { what, name, reason } => {
                write!(f, "unsafe {what} `{name}`: {reason}")
            }
            Error::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Data(e) => Some(e),
            Error::Core(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<mlfw_data::Error> for Error {
    fn from(e: mlfw_data::Error) -> Self {
        match e {
            mlfw_data::Error::Core(c) => Error::Core(c),
            other => Error::Data(other),
        }
    }
}

impl From<mlfw_core::Error> for Error {
    fn from(e: mlfw_core::Error) -> Self {
        Error::Core(e)
    }
}

impl From<Error> for mlfw_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(c) => c,
            other => mlfw_core::Error::msg(other),
        }
    }
}
