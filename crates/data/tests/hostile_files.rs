//! Files whose headers lie about sizes, gzip streams with several members or trailing bytes, and
//! paths that are not regular files: every reader answers with a clean error, and allocates
//! only what it has read.

use std::io::Write;
use std::path::Path;

use mlfw_data::cifar_files::{read_from_archive, CIFAR_IMAGE_BYTES};
use mlfw_data::idx::{decode_idx, encode_idx, gunzip_if_gzip, read_idx};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A `.tar.gz` holding one member `path` whose header claims `size` bytes, followed by only
/// `body` (the archive is cut short: what a hostile 95-byte file looks like).
fn lying_archive(path: &Path, member: &str, size: u64, body: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_path(member).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(body);
    std::fs::write(path, gzip(&tar)).unwrap();
}

#[test]
fn cifar_member_claiming_2_pow_62_bytes_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    lying_archive(
        &archive,
        "cifar-10-batches-bin/test_batch.bin",
        1 << 62,
        &[0; 512],
    );
    assert!(std::fs::metadata(&archive).unwrap().len() < 200);
    let e = read_from_archive(
        &archive,
        "cifar-10-batches-bin",
        &["test_batch.bin"],
        1 + CIFAR_IMAGE_BYTES as u64,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("declares 4611686018427387904 bytes") && e.contains("test_batch.bin"),
        "{e}"
    );
}

#[test]
fn cifar_member_cut_short_is_a_truncation_error() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("a.tar.gz");
    let record = 1 + CIFAR_IMAGE_BYTES;
    lying_archive(&archive, "f/test_batch.bin", 3 * record as u64, &[1; 1024]);
    let e = read_from_archive(&archive, "f", &["test_batch.bin"], record as u64)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("a.tar.gz") && (e.contains("truncated") || e.contains("corrupt")),
        "{e}"
    );
}

#[test]
fn idx_header_claiming_more_than_memory_is_refused() {
    // 4 x 2^32-1 elements: more than any machine's memory, from a 24-byte file.
    let bytes = encode_idx(&[u32::MAX as usize; 4], &[]);
    let e = decode_idx(&bytes, "huge.idx").unwrap_err().to_string();
    assert!(e.contains("huge.idx") && e.contains("overflow"), "{e}");
    let bytes = encode_idx(&[u32::MAX as usize, u32::MAX as usize], &[1, 2, 3]);
    let e = decode_idx(&gzip(&bytes), "big.idx.gz")
        .unwrap_err()
        .to_string();
    assert!(e.contains("big.idx.gz") && e.contains("memory"), "{e}");
}

#[test]
fn gzip_members_are_all_read_and_trailing_garbage_is_refused() {
    let whole = encode_idx(&[4, 2], &[1, 2, 3, 4, 5, 6, 7, 8]);
    let mut two = gzip(&whole[..7]);
    two.extend(gzip(&whole[7..]));
    let a = decode_idx(&two, "two-members.gz").unwrap();
    assert_eq!(a.dims, vec![4, 2]);
    assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(gunzip_if_gzip(two.clone(), "g").unwrap(), whole);

    let mut garbage = gzip(&whole);
    garbage.extend_from_slice(b"GARBAGE!");
    let e = decode_idx(&garbage, "garbage.gz").unwrap_err().to_string();
    assert!(e.contains("garbage.gz") && e.contains("gzip"), "{e}");
    let e = gunzip_if_gzip(garbage, "g2.gz").unwrap_err().to_string();
    assert!(e.contains("g2.gz") && e.contains("trailing"), "{e}");
}

#[test]
fn idx_with_data_past_its_dimensions_is_refused() {
    let mut bytes = encode_idx(&[2], &[1, 2]);
    bytes.push(3);
    let e = decode_idx(&gzip(&bytes), "long.gz")
        .unwrap_err()
        .to_string();
    assert!(e.contains("more than 2"), "{e}");
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("train-images-idx3-ubyte");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let e = read_idx(&fifo).unwrap_err().to_string();
    assert!(
        e.contains("FIFO") && e.contains("not a regular file"),
        "{e}"
    );
    let e = read_from_archive(&fifo, "f", &["x"], 3073)
        .unwrap_err()
        .to_string();
    assert!(e.contains("FIFO"), "{e}");
}
