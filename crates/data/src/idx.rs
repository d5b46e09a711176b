//! IDX files (the MNIST family's format), raw or gzipped.
//!
//! Layout: two zero bytes, an element-type byte (`0x08` = u8), a dimension count, then one
//! big-endian `u32` per dimension, then the elements in row-major order.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// An IDX array of bytes: its dimensions and row-major data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first (`[N, 28, 28]` for MNIST images, `[N]` for labels).
    pub dims: Vec<usize>,
    /// Elements, row-major; `data.len()` is the product of `dims`.
    pub data: Vec<u8>,
}

/// Reads the file at `path`, gunzipping it when it starts with the gzip magic bytes.
///
/// Errors name the file: unreadable, or a corrupt or truncated gzip stream.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    gunzip_if_gzip(bytes, &path.display().to_string())
}

/// Gunzips `bytes` if they start with the gzip magic bytes, else returns them unchanged.
/// `name` is used in error messages.
pub fn gunzip_if_gzip(bytes: Vec<u8>, name: &str) -> Result<Vec<u8>> {
    if bytes.len() < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() * 4);
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .map_err(|e| Error::Format {
            file: name.to_string(),
            problem: format!("corrupt or truncated gzip data: {e}"),
        })?;
    Ok(out)
}

/// Reads an IDX file of `u8` elements (gzipped or raw) from `path`.
///
/// Errors name the file and the problem: wrong magic, an element type other than u8, or
/// dimensions that disagree with the file's length.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let bytes = read_maybe_gz(path)?;
    parse_idx(bytes, &path.display().to_string())
}

/// Parses the bytes of an (already decompressed) IDX file; `name` is used in error messages.
pub fn parse_idx(mut bytes: Vec<u8>, name: &str) -> Result<IdxArray> {
    let bad = |problem: String| Error::Format {
        file: name.to_string(),
        problem,
    };
    if bytes.len() < 4 {
        return Err(bad(format!(
            "too short for an IDX header ({} bytes)",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!(
            "bad IDX magic {:02x} {:02x} {:02x} {:02x} (expected 00 00 08 <ndim>); \
             is this an IDX file?",
            bytes[0], bytes[1], bytes[2], bytes[3]
        )));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "unsupported IDX element type 0x{:02x}; only unsigned bytes (0x08) are supported",
            bytes[2]
        )));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err(bad("IDX header declares 0 dimensions".into()));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(bad(format!(
            "truncated IDX header: {ndim} dimensions need {header} bytes, file has {}",
            bytes.len()
        )));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    let actual = bytes.len() - header;
    if actual != expected {
        return Err(bad(format!(
            "dimensions {dims:?} need {expected} data bytes but the file holds {actual} \
             (truncated or corrupt?)"
        )));
    }
    bytes.drain(..header);
    Ok(IdxArray { dims, data: bytes })
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
