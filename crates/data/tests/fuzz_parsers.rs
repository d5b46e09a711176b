//! Bounded mutation fuzzing of the data ring's parsers (IDX, gzip, CIFAR archives): every
//! mutated input ends in `Ok` or a clean error, never a panic or an abort.

#[path = "../../../tests/common/fuzz.rs"]
mod fuzz;

use std::io::Write;

use fuzz::fuzz;
use mlfw_data::cifar_files::{read_from_archive, CIFAR_IMAGE_BYTES};
use mlfw_data::idx::{decode_idx, encode_idx, gunzip_if_gzip};

const CASES: usize = 500;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn idx_seeds() -> Vec<Vec<u8>> {
    let data: Vec<u8> = (0..48).collect();
    let raw = encode_idx(&[3, 4, 4], &data);
    let labels = encode_idx(&[5], &[1, 2, 3, 4, 5]);
    let mut two_members = gzip(&raw[..10]);
    two_members.extend(gzip(&raw[10..]));
    vec![raw.clone(), gzip(&raw), labels, two_members]
}

#[test]
fn fuzz_idx() {
    let r = fuzz("idx", &idx_seeds(), CASES, 1, |b| {
        decode_idx(b, "fuzz.idx").map(|_| ())
    });
    assert_eq!(r.panics, 0, "{r:?}");
    assert!(r.clean_errors > 0 && r.ok > 0, "{r:?}");
}

#[test]
fn fuzz_gzip() {
    let r = fuzz("gzip", &idx_seeds()[1..], CASES, 2, |b| {
        gunzip_if_gzip(b.to_vec(), "fuzz.gz").map(|_| ())
    });
    assert_eq!(r.panics, 0, "{r:?}");
    assert!(r.clean_errors > 0, "{r:?}");
}

/// An uncompressed tar holding CIFAR-10's test file (2 records) and an unrelated member.
fn cifar_tar() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut record = vec![3u8];
    record.extend(std::iter::repeat_n(7u8, CIFAR_IMAGE_BYTES));
    let body = [record.clone(), record].concat();
    for (name, bytes) in [
        ("cifar-10-batches-bin/readme.html", &b"hello"[..]),
        ("cifar-10-batches-bin/test_batch.bin", &body[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, bytes).unwrap();
    }
    tar.into_inner().unwrap()
}

fn fuzz_cifar_archive(name: &str, seed: Vec<u8>, gzip_first: bool, rng_seed: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cifar-10-binary.tar.gz");
    let record = 1 + CIFAR_IMAGE_BYTES as u64;
    let r = fuzz(name, &[seed], CASES, rng_seed, |b| {
        let bytes = if gzip_first { gzip(b) } else { b.to_vec() };
        std::fs::write(&path, bytes).unwrap();
        read_from_archive(&path, "cifar-10-batches-bin", &["test_batch.bin"], record).map(|_| ())
    });
    assert_eq!(r.panics, 0, "{r:?}");
    assert!(r.clean_errors > 0, "{r:?}");
}

#[test]
fn fuzz_cifar_tar_members() {
    // Mutations of the tar itself (headers, sizes, paths), then compressed.
    fuzz_cifar_archive("cifar tar", cifar_tar(), true, 3);
}

#[test]
fn fuzz_cifar_tar_gz() {
    fuzz_cifar_archive("cifar tar.gz", gzip(&cifar_tar()), false, 4);
}
