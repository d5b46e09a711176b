//! The command's error type: a message for the user and the exit status to leave with.

use std::fmt;

/// An error the `mlfw` command reports as `error: <message>` before exiting non-zero.
///
/// Any error type with a `Display` converts into it with `?`, so library errors keep their
/// own (already actionable) messages.
#[derive(Debug)]
pub struct CliError {
    message: String,
    code: u8,
}

/// Result alias for the command.
pub type Result<T> = std::result::Result<T, CliError>;

impl CliError {
    /// An error with `message` and exit status 1.
    pub fn msg(message: impl fmt::Display) -> Self {
        CliError {
            message: message.to_string(),
            code: 1,
        }
    }

    /// The same error with exit status `code`.
    pub fn with_code(mut self, code: u8) -> Self {
        self.code = code;
        self
    }

    /// Prepends `ctx: ` to the message.
    pub fn context(mut self, ctx: impl fmt::Display) -> Self {
        self.message = format!("{ctx}: {}", self.message);
        self
    }

    /// The message shown to the user.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The process exit status.
    pub fn code(&self) -> u8 {
        self.code
    }
}

impl<E: fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError::msg(e)
    }
}

/// Returns early with a [`CliError`] made from a format string.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::error::CliError::msg(format!($($arg)*)))
    };
}
