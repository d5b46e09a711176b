//! Guards for readers of untrusted files: how much memory a header may make us allocate, and
//! which paths are safe to open for reading.
//!
//! A size read from a file header is only a claim. Readers check it against what the process can
//! actually allocate ([`check_fits`]) before reserving anything, and never open a FIFO, socket or
//! device as if it were a data file ([`require_regular_file`]): opening a FIFO blocks forever.

use std::path::Path;

use crate::error::{Error, Result};

/// Bytes this process may still allocate: the smaller of the system's `MemAvailable` and the
/// room left under its address-space limit (`ulimit -v`), or `None` where neither is known
/// (non-Linux systems).
pub fn available_bytes() -> Option<u64> {
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| kib_field(&s, "MemAvailable:"));
    let room = address_space_limit().map(|limit| {
        let used = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| kib_field(&s, "VmSize:"))
            .unwrap_or(0);
        limit.saturating_sub(used)
    });
    match (mem, room) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The soft address-space limit in bytes (`Max address space` of `/proc/self/limits`), if set.
fn address_space_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max address space"))?;
    let soft = line["Max address space".len()..]
        .split_whitespace()
        .next()?;
    soft.parse().ok()
}

/// The value of a `Name:   1234 kB` line, in bytes.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Formats a byte count for messages (`1.5 GiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

///
/// Errors: [`Error::Invalid`] naming `what`, the size, the memory available and the hint.
///
/// # Errors
/// Errors unless `bytes` (what `what` would allocate) fits in [`available_bytes`]; `hint` tells
/// the user what to change (`"lower --batch-size"`). `None` for `bytes` means the size overflowed.
pub fn check_fits(bytes: Option<u64>, what: &str, hint: &str) -> Result<()> {
    let avail = available_bytes();
    let too_big = match (bytes, avail) {
        (None, _) => true,
        (Some(b), Some(a)) => b > a,
        (Some(_), None) => false,
    };
    if !too_big {
        return Ok(());
    }
    let need = bytes.map_or_else(|| "more than 2^64 bytes".to_string(), human_bytes);
    let have = avail.map_or_else(|| "unknown".to_string(), human_bytes);
    Err(Error::Invalid(format!(
        "{what} needs {need}, more than the {have} of memory available; {hint}"
    )))
}

///
/// Errors: [`Error::Io`] when `path` cannot be inspected, [`Error::Format`] naming the kind of
/// file found otherwise.
///
/// # Errors
/// Errors unless `path` is a regular file (after following links): a FIFO, socket, device or
/// folder is refused before it is opened, since opening a FIFO for reading blocks forever.
pub fn require_regular_file(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io("reading", path, e))?;
    if meta.is_file() {
        return Ok(());
    }
    Err(Error::Format {
        file: path.display().to_string(),
        problem: format!(
            "is {}, not a regular file; give the path of a file",
            file_kind(&meta.file_type())
        ),
    })
}

/// A word for a file's kind, for messages.
pub fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
    }
    if t.is_dir() {
        "a folder"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_fields() {
        let s = "MemTotal:  100 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(kib_field(s, "MemAvailable:"), Some(2048 * 1024));
        assert_eq!(kib_field(s, "Nope:"), None);
    }

    #[test]
    fn absurd_sizes_do_not_fit() {
        let e = check_fits(Some(u64::MAX), "a test buffer", "lower --x")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a test buffer") && e.contains("lower --x"),
            "{e}"
        );
        assert!(check_fits(None, "overflow", "h").is_err());
        assert!(check_fits(Some(1), "one byte", "h").is_ok());
    }

    #[test]
    fn folders_are_not_regular_files() {
        let d = tempfile::tempdir().unwrap();
        let e = require_regular_file(d.path()).unwrap_err().to_string();
        assert!(e.contains("a folder"), "{e}");
        let f = d.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        require_regular_file(&f).unwrap();
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
