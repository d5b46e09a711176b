//! The error type shared by every ring: each variant carries what a user needs to act on it.

use crate::{DType, Device, Shape};

/// Everything that can go wrong in mlfw-core (and, through `Msg`/`Wrapped`, in the rings above it).
#[derive(Debug, Clone)]
pub enum Error {
    /// Two shapes that had to agree did not.
    ShapeMismatch {
        op: &'static str,
        lhs: Shape,
        rhs: Shape,
    },
    /// Two dtypes that had to agree did not.
    DTypeMismatch {
        op: &'static str,
        lhs: DType,
        rhs: DType,
    },
    /// Tensors on different devices met in one op.
    DeviceMismatch {
        op: &'static str,
        lhs: Device,
        rhs: Device,
    },
    /// A dimension index outside `-rank..rank`.
    DimOutOfRange {
        op: &'static str,
        dim: isize,
        rank: usize,
    },
    /// An index outside `0..size`.
    IndexOutOfRange {
        op: &'static str,
        index: i64,
        size: usize,
    },
    /// The op does not exist for this dtype.
    UnsupportedDType { op: &'static str, dtype: DType },
    /// A malformed safetensors (or other) file.
    File { path: String, msg: String },
    /// Anything else, as a sentence.
    Msg(String),
    /// An error from an outer ring with context prepended.
    Context { context: String, source: Box<Error> },
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error made of a message.
    pub fn msg(m: impl std::fmt::Display) -> Self {
        Error::Msg(m.to_string())
    }

    /// Prepends `ctx` to this error's message.
    pub fn context(self, ctx: impl std::fmt::Display) -> Self {
        Error::Context {
            context: ctx.to_string(),
            source: Box::new(self),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::ShapeMismatch { op, lhs, rhs } => {
                write!(f, "{op}: shape mismatch, {lhs} vs {rhs}")
            }
            Error::DTypeMismatch { op, lhs, rhs } => {
                write!(f, "{op}: dtype mismatch, {lhs} vs {rhs}")
            }
            Error::DeviceMismatch { op, lhs, rhs } => {
                write!(f, "{op}: tensors on different devices, {lhs} vs {rhs}")
            }
            Error::DimOutOfRange { op, dim, rank } => write!(
                f,
                "{op}: dimension {dim} out of range for a tensor of rank {rank} (expected -{rank}..{rank})"
            ),
            Error::IndexOutOfRange { op, index, size } => {
                write!(f, "{op}: index {index} out of range for a dimension of size {size}")
            }
            Error::UnsupportedDType { op, dtype } => write!(f, "{op}: not supported for dtype {dtype}"),
            Error::File { path, msg } => write!(f, "{path}: {msg}"),
            Error::Msg(m) => f.write_str(m),
            Error::Context { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Msg(format!("I/O error: {e}"))
    }
}

/// Returns early with an [`Error::Msg`] built like `format!`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::Error::Msg(format!($($arg)*)))
    };
}
