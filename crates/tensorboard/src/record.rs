//! TFRecord framing: each record is its length (u64, little-endian), the masked CRC-32C of
//! those 8 bytes, the data, and the masked CRC-32C of the data.

use std::io::{self, Write};

use crate::crc32c::masked_crc32c;

/// Writes one framed record.
///
/// # Errors
/// The writer's own.
pub fn write_record(w: &mut impl Write, data: &[u8]) -> io::Result<()> {
    let len = (data.len() as u64).to_le_bytes();
    w.write_all(&len)?;
    w.write_all(&masked_crc32c(&len).to_le_bytes())?;
    w.write_all(data)?;
    w.write_all(&masked_crc32c(data).to_le_bytes())
}

/// The records of a TFRecord file's bytes.
#[derive(Debug, Default)]
pub struct Records<'a> {
    /// Every complete record, in order.
    pub records: Vec<&'a [u8]>,
    /// Set when the data ends inside a record (a run killed mid-write): what was torn.
    /// The records before it are all returned.
    pub torn: Option<String>,
}

/// Splits `bytes` into records, checking both CRCs of each. A record cut short by the end
/// of the data is reported in [`Records::torn`], not as an error.
///
/// # Errors
/// A CRC mismatch in a complete record (corruption, not a torn write), naming its
/// offset.
pub fn read_records(bytes: &[u8]) -> Result<Records<'_>, String> {
    let mut out = Records::default();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < 12 {
            out.torn = Some(format!("{} header bytes at offset {at}", rest.len()));
            break;
        }
        let (len_bytes, crc) = (
            &rest[..8],
            u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]),
        );
        if masked_crc32c(len_bytes) != crc {
            return Err(format!("record at offset {at}: length CRC mismatch"));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap_or([0; 8]));
        // Compare before converting: a claimed length is never trusted for allocation.
        let avail = (rest.len() - 12) as u64;
        if len > avail || avail - len < 4 {
            out.torn = Some(format!(
                "record at offset {at} claims {len} bytes, {avail} remain"
            ));
            break;
        }
        let len = len as usize;
        let data = &rest[12..12 + len];
        let c = &rest[12 + len..16 + len];
        if masked_crc32c(data) != u32::from_le_bytes([c[0], c[1], c[2], c[3]]) {
            return Err(format!("record at offset {at}: data CRC mismatch"));
        }
        out.records.push(data);
        at += 16 + len;
    }
    Ok(out)
}
