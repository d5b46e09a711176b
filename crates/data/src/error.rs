//! The data ring's error type: every variant names the file or URL and the problem.

use std::fmt;
use std::path::{Path, PathBuf};

/// Result alias for the data ring.
pub type Result<T> = std::result::Result<T, Error>;

/// An error from loading, parsing, downloading or batching data.
///
/// Each variant's message names the file or URL involved and what went wrong, so a user can act
/// on it. Convert into [`mlfw_core::Error`] with `?` or `.into()` when a caller uses core's type.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a local file failed.
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// What was being done (`"reading"`, `"creating"`, ...).
        action: &'static str,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A data file is malformed (bad magic, wrong length, label out of range, ...).
    Format {
        /// The file (or archive member) that is malformed.
        file: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A server answered with an HTTP error status.
    Http {
        /// The URL requested.
        url: String,
        /// The HTTP status code received.
        status: u16,
    },
    /// The network request failed before a status arrived, or the body was cut off.
    Network {
        /// The URL requested.
        url: String,
        /// The underlying error, with its causes.
        message: String,
    },
    /// A file's checksum does not match the published one.
    Checksum {
        /// Where the file came from (URL) or lies (path).
        source: String,
        /// Expected digest, as `algo:hex`.
        expected: String,
        /// Actual digest, as `algo:hex`.
        actual: String,
    },
    /// Every mirror failed; holds each mirror's error in order.
    AllMirrorsFailed {
        /// The destination file that could not be fetched.
        dest: PathBuf,
        /// One error per URL tried.
        errors: Vec<Error>,
    },
    /// Dataset files are missing locally and could not be downloaded.
    MissingFiles {
        /// The dataset's registry name (`"mnist"`, `"cifar10"`, ...).
        dataset: String,
        /// The exact paths where the files are expected.
        expected: Vec<PathBuf>,
        /// Why downloading did not help (download disabled, or the download error).
        reason: String,
    },
    /// A dataset name that the registry does not know.
    UnknownDataset {
        /// The name asked for.
        name: String,
        /// The names that exist.
        valid: Vec<&'static str>,
    },
    /// An invalid argument (batch size 0, index out of range, shape mismatch in collate, ...).
    Invalid(String),
    /// An error from the tensor core.
    Core(mlfw_core::Error),
}

impl Error {
    /// A [`Error::Format`] for `file` with the given problem.
    pub fn format(file: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Error::Format {
            file: file.as_ref().display().to_string(),
            problem: problem.into(),
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(action: &'static str, path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            action,
            source,
        }
    }

    /// An [`Error::Invalid`] with the given message.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io {
                path,
                action,
                source,
            } => {
                write!(f, "{action} {}: {source}", path.display())
            }
            Error::Format { file, problem } => write!(f, "{file}: {problem}"),
            Error::Http { url, status } => {
                let reason = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "GET {url}: HTTP {status} {reason}")
            }
            Error::Network { url, message } => write!(f, "GET {url}: {message}"),
            Error::Checksum {
                source,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "{source}: checksum mismatch: expected {expected}, got {actual}"
                )
            }
            Error::AllMirrorsFailed { dest, errors } => {
                write!(f, "could not download {}:", dest.display())?;
                for e in errors {
                    write!(f, "\n  - {e}")?;
                }
                Ok(())
            }
            Error::MissingFiles {
                dataset,
                expected,
                reason,
            } => {
                write!(
                    f,
                    "dataset `{dataset}`: files missing ({reason}).\nPlace the files at:"
                )?;
                for p in expected {
                    write!(f, "\n  {}", p.display())?;
                }
                write!(
                    f,
                    "\nor pass a folder holding them (--data-dir DIR). \
                     The built-in `mnist-mini` dataset works without a network."
                )
            }
            Error::UnknownDataset { name, valid } => {
                write!(
                    f,
                    "unknown dataset `{name}`; valid names: {}",
                    valid.join(", ")
                )
            }
            Error::Invalid(msg) => f.write_str(msg),
            Error::Core(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Core(e) => Some(e),
            _ => None,
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
            Error::Core(e) => e,
            other => mlfw_core::Error::msg(other),
        }
    }
}
