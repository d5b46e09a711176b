//! A minimal reader for MATLAB level-5 `.mat` files (SVHN's format): the numeric arrays of a
//! file, uncompressed or zlib-compressed (`miCOMPRESSED`), little- or big-endian. Cells,
//! structs, strings, sparse and complex arrays are skipped.
//!
//! Every size read from the file is checked against the bytes that are actually there (and
//! the decompressed bytes against the memory available) before anything is allocated.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::memory::{available_bytes, check_fits, require_regular_file};

/// The elements of a numeric array: `U8` when stored as unsigned bytes, else widened to f64.
#[derive(Debug, Clone, PartialEq)]
pub enum MatData {
    /// Unsigned bytes (e.g. images).
    U8(Vec<u8>),
    /// Any other numeric type, converted to f64.
    F64(Vec<f64>),
}

impl MatData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            MatData::U8(v) => v.len(),
            MatData::F64(v) => v.len(),
        }
    }

    /// Whether there is no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Element `i` as f64.
    pub fn get(&self, i: usize) -> Option<f64> {
        match self {
            MatData::U8(v) => v.get(i).map(|&x| x as f64),
            MatData::F64(v) => v.get(i).copied(),
        }
    }
}

/// One numeric array: its name, MATLAB dimensions and elements in column-major order (the
/// first dimension varies fastest).
#[derive(Debug, Clone, PartialEq)]
pub struct MatArray {
    /// The variable's name.
    pub name: String,
    /// Dimensions as MATLAB reports them (`size(X)`).
    pub dims: Vec<usize>,
    /// Elements, column-major.
    pub data: MatData,
}

const MI_INT8: u32 = 1;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;

/// Reads the numeric arrays of the `.mat` file at `path`.
///
/// # Errors
/// Errors name the file: not a regular file, not a level-5 MAT file, a truncated or corrupt
/// element, sizes that disagree with the dimensions, more data than the memory available.
pub fn read_mat(path: &Path) -> Result<Vec<MatArray>> {
    require_regular_file(path)?;
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io("reading", path, e))?
        .len();
    check_fits(Some(len), &path.display().to_string(), "free some memory")?;
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    parse_mat(&bytes, &path.display().to_string())
}

/// Parses the bytes of a level-5 MAT file; `name` is used in error messages.
///
/// # Errors
/// As [`read_mat`].
pub fn parse_mat(bytes: &[u8], name: &str) -> Result<Vec<MatArray>> {
    let bad = |m: String| Error::format(name, m);
    if bytes.len() < 128 {
        return Err(bad("too short for a MAT-file header (128 bytes)".into()));
    }
    let be = match &bytes[126..128] {
        b"IM" => false,
        b"MI" => true,
        _ => {
            return Err(bad(
                "not a MATLAB level-5 MAT file (no IM/MI endian mark at byte 126; v7.3 \
                 files are HDF5 and not supported)"
                    .into(),
            ))
        }
    };
    let mut out = Vec::new();
    let mut r = Cursor {
        b: bytes,
        at: 128,
        be,
        name,
    };
    while r.at < bytes.len() {
        let (ty, data) = r.element(true)?;
        match ty {
            MI_MATRIX => {
                if let Some(a) = matrix(data, be, name)? {
                    out.push(a);
                }
            }
            MI_COMPRESSED => {
                let limit = available_bytes().unwrap_or(u64::MAX);
                let mut raw = Vec::new();
                flate2::read::ZlibDecoder::new(data)
                    .take(limit.saturating_add(1))
                    .read_to_end(&mut raw)
                    .map_err(|e| bad(format!("corrupt compressed element: {e}")))?;
                if raw.len() as u64 > limit {
                    return Err(bad("decompresses to more than the memory available".into()));
                }
                let mut inner = Cursor {
                    b: &raw,
                    at: 0,
                    be,
                    name,
                };
                let (ty, data) = inner.element(true)?;
                if ty == MI_MATRIX {
                    if let Some(a) = matrix(data, be, name)? {
                        out.push(a);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
    be: bool,
    name: &'a str,
}

impl<'a> Cursor<'a> {
    fn u32_at(&self, k: usize) -> u32 {
        let a = [self.b[k], self.b[k + 1], self.b[k + 2], self.b[k + 3]];
        if self.be {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    }

    /// The next element's type and data; the cursor moves past its padding (`pad`).
    fn element(&mut self, pad: bool) -> Result<(u32, &'a [u8])> {
        let bad = |m: String| Error::format(self.name, m);
        if self.b.len() - self.at < 8 {
            return Err(bad(format!("truncated element tag at byte {}", self.at)));
        }
        let first = self.u32_at(self.at);
        if first >> 16 != 0 {
            // Small data element: size and type in one word, data in the next four bytes.
            let (n, ty) = ((first >> 16) as usize, first & 0xffff);
            if n > 4 {
                return Err(bad(format!(
                    "small element of {n} bytes at byte {}",
                    self.at
                )));
            }
            let data = &self.b[self.at + 4..self.at + 4 + n];
            self.at += 8;
            return Ok((ty, data));
        }
        let n = self.u32_at(self.at + 4) as usize;
        let start = self.at + 8;
        if n > self.b.len() - start {
            return Err(bad(format!(
                "element at byte {} declares {n} bytes, only {} follow (truncated?)",
                self.at,
                self.b.len() - start
            )));
        }
        let data = &self.b[start..start + n];
        // Compressed elements are not padded to 8 bytes.
        let padded = if pad && first != MI_COMPRESSED {
            n.div_ceil(8) * 8
        } else {
            n
        };
        self.at = (start + padded).min(self.b.len());
        Ok((first, data))
    }
}

/// Bytes per element of a MAT data type, and whether it is unsigned bytes.
fn type_size(ty: u32) -> Option<usize> {
    Some(match ty {
        1 | 2 => 1,
        3 | 4 => 2,
        5..=7 => 4,
        9 | 12 | 13 => 8,
        _ => return None,
    })
}

/// A numeric `miMATRIX` element's array, or `None` for other classes (cells, chars, ...).
fn matrix(b: &[u8], be: bool, name: &str) -> Result<Option<MatArray>> {
    let bad = |m: String| Error::format(name, m);
    let mut r = Cursor { b, at: 0, be, name };
    let (_, flags) = r.element(true)?;
    if flags.len() < 8 {
        return Err(bad("array flags shorter than 8 bytes".into()));
    }
    let fl = Cursor {
        b: flags,
        at: 0,
        be,
        name,
    }
    .u32_at(0);
    let (class, complex) = (fl & 0xff, fl & 0x800 != 0);
    if !(6..=15).contains(&class) || complex {
        return Ok(None);
    }
    let (_, dims_b) = r.element(true)?;
    let dc = Cursor {
        b: dims_b,
        at: 0,
        be,
        name,
    };
    let dims: Vec<usize> = (0..dims_b.len() / 4)
        .map(|i| dc.u32_at(4 * i) as usize)
        .collect();
    let (nty, name_b) = r.element(true)?;
    let var = if nty == MI_INT8 || nty == 2 {
        String::from_utf8_lossy(name_b).into_owned()
    } else {
        String::new()
    };
    let (ty, data) = r.element(true)?;
    let size = type_size(ty).ok_or_else(|| bad(format!("`{var}`: unknown data type {ty}")))?;
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| bad(format!("`{var}`: dimensions {dims:?} overflow")))?;
    if data.len() != count.saturating_mul(size) {
        return Err(bad(format!(
            "`{var}`: dimensions {dims:?} need {} bytes of type {ty}, the element holds {}",
            count.saturating_mul(size),
            data.len()
        )));
    }
    let data = if ty == 2 {
        MatData::U8(data.to_vec())
    } else {
        check_fits(
            Some(count as u64 * 8),
            &format!("{name}: `{var}`"),
            "free some memory",
        )?;
        let w = |c: &[u8]| -> [u8; 8] {
            let mut a = [0u8; 8];
            a[..c.len()].copy_from_slice(c);
            a
        };
        MatData::F64(
            data.chunks_exact(size)
                .map(|c| decode(ty, c, be, w))
                .collect(),
        )
    };
    Ok(Some(MatArray {
        name: var,
        dims,
        data,
    }))
}

fn decode(ty: u32, c: &[u8], be: bool, w: impl Fn(&[u8]) -> [u8; 8]) -> f64 {
    let mut v = c.to_vec();
    if be {
        v.reverse();
    }
    let a = w(&v);
    match ty {
        1 => a[0] as i8 as f64,
        3 => i16::from_le_bytes([a[0], a[1]]) as f64,
        4 => u16::from_le_bytes([a[0], a[1]]) as f64,
        5 => i32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f64,
        6 => u32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f64,
        7 => f32::from_le_bytes([a[0], a[1], a[2], a[3]]) as f64,
        9 => f64::from_le_bytes(a),
        12 => i64::from_le_bytes(a) as f64,
        _ => u64::from_le_bytes(a) as f64,
    }
}

/// Encodes numeric arrays as an uncompressed little-endian level-5 MAT file (`U8` as
/// `uint8`, `F64` as `double`), for tests and tools; `compress` wraps each in `miCOMPRESSED`.
pub fn encode_mat(arrays: &[MatArray], compress: bool) -> Vec<u8> {
    let mut out = vec![b' '; 116];
    out[..23].copy_from_slice(b"MATLAB 5.0 MAT-file mlf");
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&[0x00, 0x01, b'I', b'M']);
    for a in arrays {
        let mut m = Vec::new();
        let class: u32 = if matches!(a.data, MatData::U8(_)) {
            9
        } else {
            6
        };
        push_el(
            &mut m,
            6,
            &[class.to_le_bytes(), 0u32.to_le_bytes()].concat(),
        );
        let dims: Vec<u8> = a
            .dims
            .iter()
            .flat_map(|&d| (d as u32).to_le_bytes())
            .collect();
        push_el(&mut m, 5, &dims);
        push_el(&mut m, 1, a.name.as_bytes());
        match &a.data {
            MatData::U8(v) => push_el(&mut m, 2, v),
            MatData::F64(v) => {
                let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                push_el(&mut m, 9, &b)
            }
        }
        let mut el = Vec::new();
        push_el(&mut el, MI_MATRIX, &m);
        if compress {
            use std::io::Write;
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            z.write_all(&el).expect("in-memory write");
            let z = z.finish().expect("in-memory write");
            out.extend_from_slice(&MI_COMPRESSED.to_le_bytes());
            out.extend_from_slice(&(z.len() as u32).to_le_bytes());
            out.extend_from_slice(&z);
        } else {
            out.extend_from_slice(&el);
        }
    }
    out
}

fn push_el(out: &mut Vec<u8>, ty: u32, data: &[u8]) {
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(8) * 8, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_plain_and_compressed() {
        let arrays = vec![
            MatArray {
                name: "X".into(),
                dims: vec![2, 3],
                data: MatData::U8(vec![1, 2, 3, 4, 5, 6]),
            },
            MatArray {
                name: "y".into(),
                dims: vec![3, 1],
                data: MatData::F64(vec![10.0, 1.0, 2.5]),
            },
        ];
        for compress in [false, true] {
            let got = parse_mat(&encode_mat(&arrays, compress), "t.mat").unwrap();
            assert_eq!(got, arrays);
        }
    }

    #[test]
    fn hostile_headers_are_errors() {
        assert!(parse_mat(b"short", "t").is_err());
        let mut b = encode_mat(
            &[MatArray {
                name: "X".into(),
                dims: vec![4],
                data: MatData::U8(vec![1, 2, 3, 4]),
            }],
            false,
        );
        // The matrix element claims 4 GB.
        b[132..136].copy_from_slice(&u32::MAX.to_le_bytes());
        let e = parse_mat(&b, "t.mat").unwrap_err().to_string();
        assert!(e.contains("only") && e.contains("follow"), "{e}");
        let mut b2 = encode_mat(
            &[MatArray {
                name: "X".into(),
                dims: vec![4],
                data: MatData::U8(vec![1, 2, 3, 4]),
            }],
            false,
        );
        // A size field changed: the elements no longer agree.
        let pos = b2.windows(4).position(|w| w == 4u32.to_le_bytes()).unwrap();
        b2[pos..pos + 4].copy_from_slice(&9u32.to_le_bytes());
        assert!(parse_mat(&b2, "t.mat").is_err());
    }
}
