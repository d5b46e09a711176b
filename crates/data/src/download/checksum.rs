//! File checksums: SHA-256 (our own files) and MD5 (the digests torchvision publishes).

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::Digest;

use crate::error::{Error, Result};

/// The digest a downloaded file must have.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Checksum {
    /// SHA-256, lowercase hex.
    Sha256(String),
    /// MD5, lowercase hex (only for third-party files that publish nothing stronger).
    Md5(String),
    /// No verification (the file is still written atomically).
    None,
}

impl Checksum {
    /// A SHA-256 checksum from its hex digest (any case).
    pub fn sha256(hex: impl AsRef<str>) -> Self {
        Checksum::Sha256(hex.as_ref().trim().to_ascii_lowercase())
    }

    /// An MD5 checksum from its hex digest (any case).
    pub fn md5(hex: impl AsRef<str>) -> Self {
        Checksum::Md5(hex.as_ref().trim().to_ascii_lowercase())
    }

    /// Parses `"sha256:HEX"` or `"md5:HEX"`. Errors on another algorithm or a malformed digest.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an algorithm other than `sha256`/`md5` or a digest of the wrong
    /// length or not hex.
    pub fn parse(s: &str) -> Result<Self> {
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| Error::invalid(format!("checksum `{s}`: expected ALGO:HEX")))?;
        let (c, len) = match algo.to_ascii_lowercase().as_str() {
            "sha256" => (Checksum::sha256(hex), 64),
            "md5" => (Checksum::md5(hex), 32),
            other => {
                return Err(Error::invalid(format!(
                    "checksum `{s}`: unknown algorithm `{other}` (use sha256 or md5)"
                )))
            }
        };
        let h = c.hex().unwrap_or_default();
        if h.len() != len || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!(
                "checksum `{s}`: expected {len} hex digits"
            )));
        }
        Ok(c)
    }

    /// The algorithm name (`"sha256"`, `"md5"`, `"none"`).
    pub fn algorithm(&self) -> &'static str {
        match self {
            Checksum::Sha256(_) => "sha256",
            Checksum::Md5(_) => "md5",
            Checksum::None => "none",
        }
    }

    /// The expected hex digest, if any.
    pub fn hex(&self) -> Option<&str> {
        match self {
            Checksum::Sha256(h) | Checksum::Md5(h) => Some(h),
            Checksum::None => None,
        }
    }

    /// Computes the same kind of checksum for the file at `path`.
    ///
    /// # Errors
    /// [`Error::Io`] naming `path` when it cannot be read.
    pub fn compute(&self, path: &Path) -> Result<Checksum> {
        Ok(match self {
            Checksum::Sha256(_) => Checksum::Sha256(sha256_file(path)?),
            Checksum::Md5(_) => Checksum::Md5(md5_file(path)?),
            Checksum::None => Checksum::None,
        })
    }

    /// Checks the file at `path`; the error names `source` (a URL or path) and both digests.
    ///
    /// # Errors
    /// [`Error::Checksum`] naming `source` and both digests on a mismatch; [`Error::Io`] when
    /// `path` cannot be read.
    pub fn verify(&self, path: &Path, source: &str) -> Result<()> {
        let actual = self.compute(path)?;
        if &actual == self {
            Ok(())
        } else {
            Err(Error::Checksum {
                source: source.to_string(),
                expected: self.to_string(),
                actual: actual.to_string(),
            })
        }
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hex() {
            Some(h) => write!(f, "{}:{h}", self.algorithm()),
            None => f.write_str("none"),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_file<D: Digest>(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut h = D::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io("reading", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// SHA-256 of the file at `path`, lowercase hex.
///
/// # Errors
/// [`Error::Io`] naming `path` when it cannot be read.
pub fn sha256_file(path: &Path) -> Result<String> {
    hash_file::<sha2::Sha256>(path)
}

/// MD5 of the file at `path`, lowercase hex.
///
/// # Errors
/// [`Error::Io`] naming `path` when it cannot be read.
pub fn md5_file(path: &Path) -> Result<String> {
    hash_file::<md5::Md5>(path)
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

/// MD5 of `bytes`, lowercase hex.
pub fn md5_bytes(bytes: &[u8]) -> String {
    hex(&md5::Md5::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(md5_bytes(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
    }

    #[test]
    fn parse_and_display() {
        let c = Checksum::parse("MD5:900150983CD24FB0D6963F7D28E17F72").unwrap();
        assert_eq!(c, Checksum::md5("900150983cd24fb0d6963f7d28e17f72"));
        assert_eq!(c.to_string(), "md5:900150983cd24fb0d6963f7d28e17f72");
        assert!(Checksum::parse("sha1:abc").is_err());
        assert!(Checksum::parse("sha256:abc").is_err());
        assert!(Checksum::parse("nocolon").is_err());
    }

    #[test]
    fn verify_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        Checksum::sha256(sha256_bytes(b"abc"))
            .verify(&p, "src")
            .unwrap();
        Checksum::md5(md5_bytes(b"abc")).verify(&p, "src").unwrap();
        Checksum::None.verify(&p, "src").unwrap();
        let e = Checksum::md5(md5_bytes(b"x"))
            .verify(&p, "http://h/f")
            .unwrap_err();
        assert!(e.to_string().contains("http://h/f") && e.to_string().contains("mismatch"));
    }
}
