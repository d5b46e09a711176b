//! IDX files (the MNIST family's format), raw or gzipped.
//!
//! Layout: two zero bytes, an element-type byte (`0x08` = u8), a dimension count, then one
//! big-endian `u32` per dimension, then the elements in row-major order.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::memory::{available_bytes, check_fits, require_regular_file};

/// An IDX array of bytes: its dimensions and row-major data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first (`[N, 28, 28]` for MNIST images, `[N]` for labels).
    pub dims: Vec<usize>,
    /// Elements, row-major; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Whether `bytes` start with the gzip magic bytes.
fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

/// Reads the regular file at `path`, gunzipping it when it starts with the gzip magic bytes
/// (see [`gunzip_if_gzip`]).
///
/// # Errors
/// Errors name the file: not a regular file (a FIFO, a folder), unreadable, or a corrupt,
/// truncated or trailing-garbage gzip stream.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    require_regular_file(path)?;
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    gunzip_if_gzip(bytes, &path.display().to_string())
}

/// Gunzips `bytes` if they start with the gzip magic bytes, else returns them unchanged.
/// Every member of a multi-member stream is read (RFC 1952); bytes after the last member that
/// are not another member are an error. The output grows only with bytes actually decoded and
/// stops at the memory available. `name` is used in error messages.
///
/// # Errors
/// [`Error::Format`] naming `name` for corrupt, truncated or trailing data, or output
/// larger than the memory available.
pub fn gunzip_if_gzip(bytes: Vec<u8>, name: &str) -> Result<Vec<u8>> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let limit = available_bytes().unwrap_or(u64::MAX);
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| gzip_error(name, e))?;
    if out.len() as u64 > limit {
        return Err(Error::format(
            name,
            "decompresses to more than the memory available",
        ));
    }
    Ok(out)
}

fn gzip_error(name: &str, e: std::io::Error) -> Error {
    Error::format(
        name,
        format!("corrupt, truncated or trailing data in gzip stream: {e}"),
    )
}

/// Reads an IDX file of `u8` elements (gzipped or raw) from the regular file at `path`.
///
/// # Errors
/// Errors name the file and the problem: not a regular file, wrong magic, an element type other
/// than u8, dimensions that disagree with the file's length or exceed the memory available, or
/// a corrupt gzip stream.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    require_regular_file(path)?;
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    decode_idx(&bytes, &path.display().to_string())
}

/// Parses an IDX file's bytes, gunzipping them on the fly when gzipped. The data buffer is
/// sized by the bytes actually decoded, never by the header's claim alone: a header is first
/// checked against the memory available. `name` is used in error messages.
///
/// # Errors
/// As [`read_idx`].
pub fn decode_idx(bytes: &[u8], name: &str) -> Result<IdxArray> {
    if is_gzip(bytes) {
        idx_from_reader(flate2::read::MultiGzDecoder::new(bytes), name, true)
    } else {
        idx_from_reader(bytes, name, false)
    }
}

/// Parses the bytes of an (already decompressed) IDX file; `name` is used in error messages.
///
/// # Errors
/// As [`read_idx`].
pub fn parse_idx(bytes: Vec<u8>, name: &str) -> Result<IdxArray> {
    idx_from_reader(&bytes[..], name, false)
}

/// Reads an IDX header then exactly the data it declares from `r`, then checks `r` ends.
fn idx_from_reader(mut r: impl Read, name: &str, gz: bool) -> Result<IdxArray> {
    let bad = |problem: String| Error::format(name, problem);
    let io = |e: std::io::Error| {
        if gz {
            gzip_error(name, e)
        } else {
            bad(format!("cannot read: {e}"))
        }
    };
    let mut head = [0u8; 4];
    let got = read_full(&mut r, &mut head).map_err(io)?;
    if got < 4 {
        return Err(bad(format!("too short for an IDX header ({got} bytes)")));
    }
    if head[0] != 0 || head[1] != 0 {
        return Err(bad(format!(
            "bad IDX magic {:02x} {:02x} {:02x} {:02x} (expected 00 00 08 <ndim>); \
             is this an IDX file?",
            head[0], head[1], head[2], head[3]
        )));
    }
    if head[2] != 0x08 {
        return Err(bad(format!(
            "unsupported IDX element type 0x{:02x}; only unsigned bytes (0x08) are supported",
            head[2]
        )));
    }
    let ndim = head[3] as usize;
    if ndim == 0 {
        return Err(bad("IDX header declares 0 dimensions".into()));
    }
    let mut raw = vec![0u8; 4 * ndim];
    let got = read_full(&mut r, &mut raw).map_err(io)?;
    if got < raw.len() {
        return Err(bad(format!(
            "truncated IDX header: {ndim} dimensions need {} bytes, file has {}",
            4 + raw.len(),
            4 + got
        )));
    }
    let dims: Vec<usize> = raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    check_fits(
        Some(expected as u64),
        &format!("{name}: the IDX dimensions {dims:?}"),
        "is the file corrupt?",
    )?;
    let mut data = Vec::new();
    (&mut r)
        .take(expected as u64 + 1)
        .read_to_end(&mut data)
        .map_err(io)?;
    let mut extra = [0u8; 1];
    let trailing = data.len() > expected || read_full(&mut r, &mut extra).map_err(io)? > 0;
    if data.len() < expected || trailing {
        let holds = if trailing {
            format!("more than {expected}")
        } else {
            data.len().to_string()
        };
        return Err(bad(format!(
            "dimensions {dims:?} need {expected} data bytes but the file holds {holds} \
             (truncated or corrupt?)"
        )));
    }
    Ok(IdxArray { dims, data })
}

/// Reads into `buf` until it is full or the reader ends; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Encodes `data` with `dims` as an IDX file of u8 (used by tests and tools).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = encode_idx(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        let a = parse_idx(bytes, "x").unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn wrong_magic() {
        let mut bytes = encode_idx(&[2], &[1, 2]);
        bytes[0] = 7;
        let e = parse_idx(bytes, "foo.idx").unwrap_err().to_string();
        assert!(e.contains("foo.idx") && e.contains("magic"), "{e}");
    }

    #[test]
    fn unsupported_element_type() {
        let mut bytes = encode_idx(&[2], &[1, 2]);
        bytes[2] = 0x0d;
        let e = parse_idx(bytes, "f.idx").unwrap_err().to_string();
        assert!(e.contains("element type 0x0d"), "{e}");
    }

    #[test]
    fn dims_disagree_with_length() {
        let bytes = encode_idx(&[2, 3], &[1, 2, 3, 4, 5]);
        let e = parse_idx(bytes, "short.idx").unwrap_err().to_string();
        assert!(
            e.contains("short.idx") && e.contains("need 6") && e.contains("holds 5"),
            "{e}"
        );
        let bytes = encode_idx(&[1], &[1, 2]);
        assert!(parse_idx(bytes, "long.idx").is_err());
    }

    #[test]
    fn short_header_and_zero_dims() {
        assert!(parse_idx(vec![0, 0], "a").is_err());
        assert!(parse_idx(vec![0, 0, 8, 0], "a").is_err());
        assert!(parse_idx(vec![0, 0, 8, 3, 0, 0], "a").is_err());
    }

    #[test]
    fn truncated_gzip() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&encode_idx(&[100], &[7; 100])).unwrap();
        let gz = enc.finish().unwrap();
        assert_eq!(gunzip_if_gzip(gz.clone(), "ok.gz").unwrap().len(), 108);
        let e = gunzip_if_gzip(gz[..gz.len() / 2].to_vec(), "cut.gz")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cut.gz") && e.contains("gzip"), "{e}");
    }
}
