//! CIFAR binary files: record parsing and finding the files in a folder or a `.tar.gz`.
//!
//! CIFAR-10 records are 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B, row-major,
//! i.e. already CHW). CIFAR-100 records are a coarse label byte, a fine label byte, then the
//! same 3072 pixel bytes.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::memory::{check_fits, require_regular_file};

/// Pixel bytes per CIFAR image (3 x 32 x 32).
pub const CIFAR_IMAGE_BYTES: usize = 3 * 32 * 32;

/// Where a CIFAR variant's files live and how its records are laid out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CifarLayout {
    /// Registry name, for messages.
    pub name: &'static str,
    /// The official archive's file name.
    pub archive: &'static str,
    /// The folder the archive extracts to.
    pub folder: &'static str,
    /// Training files, in order.
    pub train: &'static [&'static str],
    /// Test files.
    pub test: &'static [&'static str],
    /// Upper bound (exclusive) of each label byte, in record order.
    pub label_limits: &'static [usize],
}

pub(crate) const CIFAR10_LAYOUT: CifarLayout = CifarLayout {
    name: "cifar10",
    archive: "cifar-10-binary.tar.gz",
    folder: "cifar-10-batches-bin",
    train: &[
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ],
    test: &["test_batch.bin"],
    label_limits: &[10],
};

pub(crate) const CIFAR100_LAYOUT: CifarLayout = CifarLayout {
    name: "cifar100",
    archive: "cifar-100-binary.tar.gz",
    folder: "cifar-100-binary",
    train: &["train.bin"],
    test: &["test.bin"],
    label_limits: &[20, 100],
};

/// The most records one CIFAR file may hold (the official files hold 10,000 or 50,000): a tar
/// member declaring more is refused before anything is read.
pub const MAX_CIFAR_FILE_RECORDS: u64 = 60_000;

/// Files as `(name for messages, bytes)`.
pub(crate) type NamedFiles = Vec<(String, Vec<u8>)>;

/// Parsed records: CHW pixels of every image, and one label column per label byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarRecords {
    /// `N * 3072` pixel bytes, CHW per image.
    pub pixels: Vec<u8>,
    /// One `Vec` of `N` labels per label byte (CIFAR-10: `[label]`; CIFAR-100: `[coarse, fine]`).
    pub labels: Vec<Vec<i64>>,
}

/// Parses CIFAR binary records from `bytes`, with one label byte per entry of `label_limits`
/// (each label must be below its limit). `name` is used in error messages.
///
/// # Errors
/// A length that is not a whole number of records, or a label out of range.
pub fn parse_cifar_records(
    bytes: &[u8],
    name: &str,
    label_limits: &[usize],
) -> Result<CifarRecords> {
    let nl = label_limits.len();
    let rec = nl + CIFAR_IMAGE_BYTES;
    if bytes.is_empty() || !bytes.len().is_multiple_of(rec) {
        return Err(Error::format(
            name,
            format!(
                "length {} is not a whole number of {rec}-byte records \
                 ({nl} label byte(s) + {CIFAR_IMAGE_BYTES} pixels)",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / rec;
    let mut pixels = Vec::with_capacity(n * CIFAR_IMAGE_BYTES);
    let mut labels = vec![Vec::with_capacity(n); nl];
    for (i, r) in bytes.chunks_exact(rec).enumerate() {
        for (k, &limit) in label_limits.iter().enumerate() {
            let l = r[k] as usize;
            if l >= limit {
                return Err(Error::format(
                    name,
                    format!("label byte {k} of record {i} is {l}, out of range 0..{limit}"),
                ));
            }
            labels[k].push(l as i64);
        }
        pixels.extend_from_slice(&r[nl..]);
    }
    Ok(CifarRecords { pixels, labels })
}

/// Parses and concatenates several record files given as `(name, bytes)`.
pub(crate) fn parse_files(
    files: &[(String, Vec<u8>)],
    label_limits: &[usize],
) -> Result<CifarRecords> {
    let mut all = CifarRecords {
        pixels: Vec::new(),
        labels: vec![Vec::new(); label_limits.len()],
    };
    for (name, bytes) in files {
        let r = parse_cifar_records(bytes, name, label_limits)?;
        all.pixels.extend_from_slice(&r.pixels);
        for (a, b) in all.labels.iter_mut().zip(r.labels) {
            a.extend(b);
        }
    }
    Ok(all)
}

/// The exact paths a user may place the files at under `dir` (for messages).
pub(crate) fn expected_paths(layout: &CifarLayout, dir: &Path, train: bool) -> Vec<PathBuf> {
    let files = if train { layout.train } else { layout.test };
    let mut v = vec![dir.join(layout.archive)];
    v.extend(files.iter().map(|f| dir.join(layout.folder).join(f)));
    v
}

/// Reads the split's record files from `dir`: `dir/FOLDER/*.bin`, `dir/*.bin`, or straight from
/// `dir/ARCHIVE`. Returns `Ok(None)` when none of these is present.
pub(crate) fn read_split(
    layout: &CifarLayout,
    dir: &Path,
    train: bool,
) -> Result<Option<NamedFiles>> {
    let files = if train { layout.train } else { layout.test };
    for folder in [dir.join(layout.folder), dir.to_path_buf()] {
        let paths: Vec<PathBuf> = files.iter().map(|f| folder.join(f)).collect();
        if paths.iter().all(|p| p.is_file()) {
            let mut out = Vec::new();
            for p in paths {
                let bytes = std::fs::read(&p).map_err(|e| Error::io("reading", &p, e))?;
                out.push((p.display().to_string(), bytes));
            }
            return Ok(Some(out));
        }
    }
    let archive = dir.join(layout.archive);
    if archive.is_file() {
        let record = (layout.label_limits.len() + CIFAR_IMAGE_BYTES) as u64;
        return read_from_archive(&archive, layout.folder, files, record).map(Some);
    }
    Ok(None)
}

/// Reads the members `folder/f` for each `f` in `files` from the `.tar.gz` at `archive`; each
/// must hold whole `record`-byte records.
///
/// A member's declared size is checked before it is read (whole records, at most
/// [`MAX_CIFAR_FILE_RECORDS`], within the memory available), and its buffer grows only with the
/// bytes actually read.
///
/// # Errors
/// [`Error::Format`] naming the archive for a corrupt or truncated archive, a member
/// with an impossible size, or a missing member; not a regular file.
pub fn read_from_archive(
    archive: &Path,
    folder: &str,
    files: &[&str],
    record: u64,
) -> Result<Vec<(String, Vec<u8>)>> {
    let name = archive.display().to_string();
    let corrupt = |e: std::io::Error| Error::format(archive, format!("corrupt archive: {e}"));
    require_regular_file(archive)?;
    let f = File::open(archive).map_err(|e| Error::io("opening", archive, e))?;
    let gz = flate2::read::MultiGzDecoder::new(BufReader::new(f));
    let mut tar = tar::Archive::new(gz);
    let mut found: Vec<Option<Vec<u8>>> = vec![None; files.len()];
    for entry in tar.entries().map_err(corrupt)? {
        let mut entry = entry.map_err(corrupt)?;
        let path = entry.path().map_err(corrupt)?.into_owned();
        let comps: Vec<String> = path
            .components()
            .filter_map(|c| match c {
                std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        let Some(pos) = (comps.len() == 2 && comps[0] == folder)
            .then(|| files.iter().position(|f| *f == comps[1]))
            .flatten()
        else {
            continue;
        };
        let member = format!("{folder}/{}", files[pos]);
        let size = entry.size();
        check_member_size(archive, &member, size, record)?;
        let mut buf = Vec::new();
        (&mut entry)
            .take(size)
            .read_to_end(&mut buf)
            .map_err(corrupt)?;
        if buf.len() as u64 != size {
            return Err(Error::format(
                archive,
                format!(
                    "member {member} declares {size} bytes but holds {}: truncated archive",
                    buf.len()
                ),
            ));
        }
        found[pos] = Some(buf);
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    files
        .iter()
        .zip(found)
        .map(|(f, b)| {
            let member = format!("{name}!{folder}/{f}");
            b.map(|b| (member.clone(), b))
                .ok_or_else(|| Error::format(archive, format!("member {folder}/{f} not found")))
        })
        .collect()
}

/// Errors unless a member's declared `size` is a plausible CIFAR file: whole `record`-byte
/// records, at most [`MAX_CIFAR_FILE_RECORDS`] of them, within the memory available.
fn check_member_size(archive: &Path, member: &str, size: u64, record: u64) -> Result<()> {
    let max = MAX_CIFAR_FILE_RECORDS * record;
    if size == 0 || !size.is_multiple_of(record) || size > max {
        return Err(Error::format(
            archive,
            format!(
                "member {member} declares {size} bytes; a CIFAR file holds whole {record}-byte \
                 records, at most {max} bytes ({MAX_CIFAR_FILE_RECORDS} records)"
            ),
        ));
    }
    check_fits(
        Some(size),
        &format!("{}!{member}", archive.display()),
        "free some memory",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(labels: &[u8], fill: u8) -> Vec<u8> {
        let mut r = labels.to_vec();
        r.extend(std::iter::repeat_n(fill, CIFAR_IMAGE_BYTES));
        r
    }

    #[test]
    fn parses_cifar10_and_100_records() {
        let mut b = record(&[3], 1);
        b.extend(record(&[9], 2));
        let r = parse_cifar_records(&b, "x.bin", &[10]).unwrap();
        assert_eq!(r.labels, vec![vec![3, 9]]);
        assert_eq!(r.pixels.len(), 2 * CIFAR_IMAGE_BYTES);
        assert_eq!(r.pixels[CIFAR_IMAGE_BYTES], 2);
        let r = parse_cifar_records(&record(&[19, 99], 0), "t.bin", &[20, 100]).unwrap();
        assert_eq!(r.labels, vec![vec![19], vec![99]]);
    }

    #[test]
    fn wrong_record_length() {
        let mut b = record(&[3], 1);
        b.pop();
        let e = parse_cifar_records(&b, "data_batch_1.bin", &[10])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data_batch_1.bin") && e.contains("3073-byte records"),
            "{e}"
        );
        assert!(parse_cifar_records(&[], "e.bin", &[10]).is_err());
    }

    #[test]
    fn label_out_of_range() {
        let e = parse_cifar_records(&record(&[10], 0), "b.bin", &[10])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("b.bin") && e.contains("out of range 0..10"),
            "{e}"
        );
        let e = parse_cifar_records(&record(&[5, 100], 0), "c.bin", &[20, 100]).unwrap_err();
        assert!(e.to_string().contains("label byte 1"), "{e}");
    }
}
