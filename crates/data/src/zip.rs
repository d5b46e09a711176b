//! Reading single members of a zip archive (stored or deflated, no zip64): enough for
//! EMNIST's `gzip.zip`. Sizes from the archive are checked against its length and the memory
//! available before anything is allocated, and each member's CRC-32 is verified.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::error::{Error, Result};
use crate::memory::{check_fits, require_regular_file};

/// One member of the central directory.
#[derive(Debug, Clone)]
struct Member {
    name: String,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    local_offset: u64,
}

fn u16_at(b: &[u8], k: usize) -> u16 {
    u16::from_le_bytes([b[k], b[k + 1]])
}

fn u32_at(b: &[u8], k: usize) -> u32 {
    u32::from_le_bytes([b[k], b[k + 1], b[k + 2], b[k + 3]])
}

/// The names of the archive's members, in order.
///
/// # Errors
/// Errors name the archive: not a regular file, no end-of-central-directory record, a
/// central directory outside the file, zip64 archives.
pub fn zip_member_names(archive: &Path) -> Result<Vec<String>> {
    Ok(central_directory(archive)?
        .into_iter()
        .map(|m| m.name)
        .collect())
}

fn central_directory(archive: &Path) -> Result<Vec<Member>> {
    require_regular_file(archive)?;
    let bad = |m: String| Error::format(archive, m);
    let mut f = File::open(archive).map_err(|e| Error::io("opening", archive, e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::io("reading", archive, e))?
        .len();
    let tail_len = len.min(22 + 65_535);
    let mut tail = vec![0u8; tail_len as usize];
    f.seek(SeekFrom::Start(len - tail_len))
        .and_then(|_| f.read_exact(&mut tail))
        .map_err(|e| Error::io("reading", archive, e))?;
    let eocd = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&k| u32_at(&tail, k) == 0x0605_4b50)
        .ok_or_else(|| bad("not a zip archive (no end-of-central-directory record)".into()))?;
    let (entries, cd_size, cd_off) = (
        u16_at(&tail, eocd + 10) as usize,
        u32_at(&tail, eocd + 12) as u64,
        u32_at(&tail, eocd + 16) as u64,
    );
    if cd_off == 0xFFFF_FFFF || entries == 0xFFFF {
        return Err(bad("zip64 archives are not supported".into()));
    }
    if cd_off.checked_add(cd_size).is_none_or(|end| end > len) {
        return Err(bad(format!(
            "central directory at {cd_off} (+{cd_size} bytes) lies outside the {len}-byte file"
        )));
    }
    let mut cd = vec![0u8; cd_size as usize];
    f.seek(SeekFrom::Start(cd_off))
        .and_then(|_| f.read_exact(&mut cd))
        .map_err(|e| Error::io("reading", archive, e))?;
    let mut out = Vec::with_capacity(entries.min(cd.len() / 46));
    let mut k = 0;
    for _ in 0..entries {
        if k + 46 > cd.len() || u32_at(&cd, k) != 0x0201_4b50 {
            return Err(bad(format!("corrupt central directory entry at byte {k}")));
        }
        let (n, x, c) = (
            u16_at(&cd, k + 28) as usize,
            u16_at(&cd, k + 30) as usize,
            u16_at(&cd, k + 32) as usize,
        );
        if k + 46 + n > cd.len() {
            return Err(bad("truncated central directory".into()));
        }
        out.push(Member {
            name: String::from_utf8_lossy(&cd[k + 46..k + 46 + n]).into_owned(),
            method: u16_at(&cd, k + 10),
            crc: u32_at(&cd, k + 16),
            compressed: u32_at(&cd, k + 20) as u64,
            size: u32_at(&cd, k + 24) as u64,
            local_offset: u32_at(&cd, k + 42) as u64,
        });
        k += 46 + n + x + c;
    }
    Ok(out)
}

/// The bytes of member `name` of the zip `archive`.
///
/// # Errors
/// Errors name the archive and member: missing member, an unsupported compression method
/// (only stored and deflate), sizes outside the file or beyond the memory available, corrupt
/// data or a CRC-32 mismatch.
pub fn read_zip_member(archive: &Path, name: &str) -> Result<Vec<u8>> {
    let members = central_directory(archive)?;
    let what = format!("{}!{name}", archive.display());
    let bad = |m: String| Error::format(&what, m);
    let m = members
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| Error::format(archive, format!("member {name} not found")))?;
    let mut f = File::open(archive).map_err(|e| Error::io("opening", archive, e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::io("reading", archive, e))?
        .len();
    let mut local = [0u8; 30];
    f.seek(SeekFrom::Start(m.local_offset))
        .and_then(|_| f.read_exact(&mut local))
        .map_err(|e| bad(format!("cannot read the local header: {e}")))?;
    if u32_at(&local, 0) != 0x0403_4b50 {
        return Err(bad("corrupt local header".into()));
    }
    let start = m.local_offset + 30 + u16_at(&local, 26) as u64 + u16_at(&local, 28) as u64;
    if start.checked_add(m.compressed).is_none_or(|end| end > len) {
        return Err(bad(format!(
            "declares {} compressed bytes at {start}, beyond the {len}-byte archive",
            m.compressed
        )));
    }
    check_fits(Some(m.size), &what, "free some memory")?;
    f.seek(SeekFrom::Start(start))
        .map_err(|e| Error::io("reading", archive, e))?;
    let raw = (&mut f).take(m.compressed);
    let mut out = Vec::new();
    let res = match m.method {
        0 => raw.take(m.size + 1).read_to_end(&mut out),
        8 => flate2::read::DeflateDecoder::new(raw)
            .take(m.size + 1)
            .read_to_end(&mut out),
        other => return Err(bad(format!("compression method {other} is not supported"))),
    };
    res.map_err(|e| bad(format!("corrupt data: {e}")))?;
    if out.len() as u64 != m.size {
        return Err(bad(format!(
            "declares {} bytes, decodes to {}",
            m.size,
            out.len()
        )));
    }
    let mut crc = flate2::Crc::new();
    crc.update(&out);
    if crc.sum() != m.crc {
        return Err(bad("CRC-32 mismatch: corrupt archive".into()));
    }
    Ok(out)
}

/// Writes a zip archive of `(name, bytes)` members, deflated (for tests and tools).
pub fn encode_zip(members: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let (mut out, mut cd) = (Vec::new(), Vec::new());
    for (name, data) in members {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("in-memory write");
        let z = e.finish().expect("in-memory write");
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let off = out.len() as u32;
        let common = |v: &mut Vec<u8>| {
            for x in [8u16, 0, 0] {
                v.extend_from_slice(&x.to_le_bytes()); // method, time, date
            }
            v.extend_from_slice(&crc.sum().to_le_bytes());
            v.extend_from_slice(&(z.len() as u32).to_le_bytes());
            v.extend_from_slice(&(data.len() as u32).to_le_bytes());
            v.extend_from_slice(&(name.len() as u16).to_le_bytes());
            v.extend_from_slice(&0u16.to_le_bytes());
        };
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0]);
        common(&mut out);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&z);
        cd.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        cd.extend_from_slice(&[20, 0, 20, 0, 0, 0]); // versions, flags
        common(&mut cd);
        cd.extend_from_slice(&[0; 10]); // comment len, disk, internal and external attrs
        cd.extend_from_slice(&off.to_le_bytes());
        cd.extend_from_slice(name.as_bytes());
    }
    let cd_off = out.len() as u32;
    out.extend_from_slice(&cd);
    out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let n = members.len() as u16;
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&(cd.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_off.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.zip");
        let big: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, encode_zip(&[("x/a.bin", b"hello"), ("b.bin", &big)])).unwrap();
        assert_eq!(zip_member_names(&p).unwrap(), ["x/a.bin", "b.bin"]);
        assert_eq!(read_zip_member(&p, "x/a.bin").unwrap(), b"hello");
        assert_eq!(read_zip_member(&p, "b.bin").unwrap(), big);
        assert!(read_zip_member(&p, "c.bin").is_err());
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 6..n - 2].copy_from_slice(&u32::MAX.to_le_bytes()); // cd offset
        std::fs::write(&p, &bytes).unwrap();
        assert!(read_zip_member(&p, "b.bin").is_err());
        std::fs::write(&p, b"not a zip").unwrap();
        assert!(zip_member_names(&p).is_err());
    }
}
