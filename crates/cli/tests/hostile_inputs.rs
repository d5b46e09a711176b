//! Hostile input files through the binary, under an address-space limit where the issue is
//! memory: a header that lies about a size, an image that claims billions of pixels, absurd
//! batch sizes and a FIFO where a file belongs. Each must end in a clean error, not an abort.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{clean_failure, command, limited};

/// 2 GiB of address space: far below what any of these claims would take.
const LIMIT: u64 = 2 << 30;

/// Runs `mlfw args` under the memory limit; asserts a clean failure whose message holds every
/// one of `needles`, and returns it.
fn refused<S: AsRef<std::ffi::OsStr>>(
    args: impl IntoIterator<Item = S>,
    needles: &[&str],
) -> String {
    let o = limited(LIMIT).args(args).output().unwrap();
    let err = clean_failure(&o);
    for n in needles {
        assert!(err.contains(n), "no `{n}` in: {err}");
    }
    err
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn cifar_archive_member_claiming_2_pow_62_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("cifar-10-batches-bin/data_batch_1.bin").unwrap();
    h.set_size(1 << 62);
    h.set_mode(0o644);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend_from_slice(&[0; 512]);
    std::fs::write(dir.path().join("cifar-10-binary.tar.gz"), gzip(&tar)).unwrap();
    let (data, run) = (dir.path().to_str().unwrap(), dir.path().join("run"));
    let args = [
        "train",
        "--dataset",
        "cifar10",
        "--epochs",
        "1",
        "--data-dir",
        data,
    ];
    let needles = ["declares 4611686018427387904 bytes"];
    refused(
        args.iter().chain(&["--out", run.to_str().unwrap()]),
        &needles,
    );
}

/// A baseline JPEG of `w` x `h` gray pixels whose SOF0 header is then rewritten to claim
/// `claim` x `claim` (the scan data stays that of the small image).
fn jpeg_claiming(path: &Path, w: u32, h: u32, claim: Option<u16>) {
    let img = image::GrayImage::from_fn(w, h, |x, y| image::Luma([(x * 7 + y * 13) as u8]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageLuma8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    if let Some(c) = claim {
        let sof = bytes.windows(2).position(|m| m == [0xFF, 0xC0]).unwrap();
        bytes[sof + 5..sof + 7].copy_from_slice(&c.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&c.to_be_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn jpeg_claiming_23000_squared_pixels_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.jpg");
    jpeg_claiming(&bomb, 16, 16, Some(23000));
    assert!(std::fs::metadata(&bomb).unwrap().len() < 1000);
    let bomb = bomb.to_str().unwrap();
    refused(
        ["predict", "--pretrained", bomb],
        &["23000x23000", "MLFW_MAX_IMAGE_PIXELS"],
    );
}

#[test]
fn the_pixel_budget_is_raised_with_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("small.jpg");
    jpeg_claiming(&img, 28, 28, None);
    let run = |budget: &str| {
        command()
            .env("MLFW_MAX_IMAGE_PIXELS", budget)
            .args(["predict", "--pretrained"])
            .arg(&img)
            .output()
            .unwrap()
    };
    let err = clean_failure(&run("700"));
    assert!(err.contains("28x28 = 784 pixels"), "{err}");
    assert!(run("784").status.success());
    assert!(run("0").status.success());
    let err = clean_failure(&run("lots"));
    assert!(err.contains("MLFW_MAX_IMAGE_PIXELS"), "{err}");
}

#[test]
fn absurd_batch_sizes_name_the_flag() {
    for args in [
        &["bench", "--batch-size", "10000000"][..],
        &["bench", "--batch-size", "18446744073709551615"],
        &[
            "bench",
            "--input",
            "3",
            "100000",
            "100000",
            "--batch-size",
            "2",
        ],
        // A batch that fits as input but whose activations do not (measured per image).
        &["bench", "--batch-size", "60000", "--steps", "1"],
    ] {
        refused(args, &["--batch-size", "memory"]);
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_as_weights_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("weights.safetensors");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let img = dir.path().join("x.jpg");
    jpeg_claiming(&img, 28, 28, None);
    let mut child = command()
        .arg("predict")
        .arg(&img)
        .arg("--weights")
        .arg(&fifo)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("mlfw blocked on a FIFO given as --weights");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let err = clean_failure(&child.wait_with_output().unwrap());
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn a_training_batch_too_large_for_memory_is_refused_before_the_folder_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = run.to_str().unwrap();
    let args = [
        "train",
        "--dataset",
        "fake",
        "--batch-size",
        "100000000",
        "--out",
        out,
    ];
    refused(args, &["--batch-size 60000", "per image"]);
    assert!(!run.exists());
}

#[test]
fn gzipped_idx_claiming_huge_dimensions_is_refused_under_a_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    // [2^32-1, 28, 28] images from a few dozen bytes; the labels are fine.
    let mut head = vec![0, 0, 8, 3];
    for d in [u32::MAX, 28, 28] {
        head.extend_from_slice(&d.to_be_bytes());
    }
    head.extend_from_slice(&[0; 100]);
    for split in ["train", "t10k"] {
        std::fs::write(
            dir.path().join(format!("{split}-images-idx3-ubyte.gz")),
            gzip(&head),
        )
        .unwrap();
        let labels = [&[0u8, 0, 8, 1, 0, 0, 0, 2][..], &[1, 2]].concat();
        std::fs::write(
            dir.path().join(format!("{split}-labels-idx1-ubyte")),
            labels,
        )
        .unwrap();
    }
    let (data, run) = (dir.path().to_str().unwrap(), dir.path().join("run"));
    let args = ["train", "--dataset", "mnist", "--data-dir", data, "--out"];
    refused(
        args.iter().chain(&[run.to_str().unwrap()]),
        &["train-images-idx3-ubyte.gz", "memory available"],
    );
}

#[test]
fn safetensors_claiming_a_huge_tensor_is_refused_under_a_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let header = r#"{"conv1.weight":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,1099511627776]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0; 64]);
    let weights = dir.path().join("w.safetensors");
    std::fs::write(&weights, bytes).unwrap();
    let img = dir.path().join("x.jpg");
    jpeg_claiming(&img, 28, 28, None);
    let (img, weights) = (img.to_str().unwrap(), weights.to_str().unwrap());
    refused(["predict", img, "--weights", weights], &["w.safetensors"]);
}
