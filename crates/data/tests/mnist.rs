//! MNIST-family loading from IDX files: layouts, gzip, bad input, missing files.

mod common;

use std::io::Write;
use std::path::Path;

use common::{files_under, TestServer};
use mlfw_data::idx::encode_idx;
use mlfw_data::{
    Dataset, DownloadOptions, Error, FashionMnist, ImageFormat, Kmnist, Mnist, MnistMini,
};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Writes a split of `n` 28x28 images (pixel = image index + position) and labels `i % 10`.
fn write_split(dir: &Path, train: bool, n: usize, gzip: bool) {
    std::fs::create_dir_all(dir).unwrap();
    let pixels: Vec<u8> = (0..n * 784).map(|k| (k / 784 + k % 784) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    let (i, l) = mlfw_data::mnist::mnist_file_names(train);
    let write = |name: &str, bytes: Vec<u8>| {
        if gzip {
            std::fs::write(dir.join(format!("{name}.gz")), gz(&bytes)).unwrap();
        } else {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    };
    write(i, encode_idx(&[n, 28, 28], &pixels));
    write(l, encode_idx(&[n], &labels));
}

#[test]
fn loads_torchvision_layout_gz_and_raw() {
    let root = tempfile::tempdir().unwrap();
    write_split(&root.path().join("MNIST/raw"), true, 12, true);
    write_split(&root.path().join("FashionMNIST/raw"), false, 5, false);
    write_split(&root.path().join("KMNIST/raw"), true, 3, true);

    let ds = Mnist::new(root.path(), true).unwrap();
    assert_eq!(ds.len(), 12);
    let s = ds.get(2).unwrap();
    assert_eq!(s.image.dims(), &[1, 28, 28]);
    assert_eq!(s.label, 2);
    let px = s.image.to_vec::<f32>().unwrap();
    assert_eq!(px[0], 2.0 / 255.0);
    assert_eq!(px[5], 7.0 / 255.0);
    assert_eq!(ds.images().image(2).unwrap()[5], 7);

    let f = FashionMnist::new(root.path(), false).unwrap();
    assert_eq!((f.len(), f.metadata().name.as_str()), (5, "fashion-mnist"));
    assert_eq!(Kmnist::new(root.path(), true).unwrap().len(), 3);
}

#[test]
fn from_dir_and_u8_format() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), false, 4, false);
    let ds = Mnist::from_dir(dir.path(), false)
        .unwrap()
        .with_format(ImageFormat::U8);
    let s = ds.get(3).unwrap();
    assert_eq!(s.image.to_vec::<u8>().unwrap()[1], 4);
    assert!(ds.get(4).is_err(), "index past the end must be an error");
}

#[test]
fn missing_files_say_where_to_put_them() {
    let root = tempfile::tempdir().unwrap();
    let e = Mnist::new(root.path(), true).unwrap_err();
    assert!(matches!(e, Error::MissingFiles { .. }));
    let msg = e.to_string();
    let expected = root.path().join("MNIST/raw/train-images-idx3-ubyte.gz");
    assert!(msg.contains(&expected.display().to_string()), "{msg}");
    assert!(
        msg.contains("train-labels-idx1-ubyte.gz") && msg.contains("mnist-mini"),
        "{msg}"
    );
}

#[test]
fn failed_download_reports_the_paths_and_the_cause() {
    let server = TestServer::start(vec![]); // 404 for everything
    let root = tempfile::tempdir().unwrap();
    let opts = DownloadOptions::quiet().retries(0);
    let mirrors = vec![server.url("/mnist/")];
    let e = Mnist::download(root.path(), false, Some(&mirrors), &opts).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("404") && msg.contains(&server.url("/mnist/t10k-images-idx3-ubyte.gz")));
    assert!(
        msg.contains("t10k-images-idx3-ubyte.gz") && msg.contains("mnist-mini"),
        "{msg}"
    );
    assert!(files_under(root.path()).is_empty());
}

fn expect_format_error(dir: &Path, needle: &str, file: &str) {
    let e = Mnist::from_dir(dir, true).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Format { .. }), "{msg}");
    assert!(
        msg.contains(needle) && msg.contains(file),
        "expected `{needle}` in: {msg}"
    );
}

#[test]
fn wrong_magic_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), true, 2, false);
    let p = dir.path().join("train-images-idx3-ubyte");
    let mut b = std::fs::read(&p).unwrap();
    b[1] = 0x42;
    std::fs::write(&p, b).unwrap();
    expect_format_error(dir.path(), "magic", "train-images-idx3-ubyte");
}

#[test]
fn dims_disagreeing_with_length_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), true, 2, false);
    let p = dir.path().join("train-images-idx3-ubyte");
    let mut b = std::fs::read(&p).unwrap();
    b.truncate(b.len() - 10);
    std::fs::write(&p, b).unwrap();
    expect_format_error(
        dir.path(),
        "need 1568 data bytes",
        "train-images-idx3-ubyte",
    );
}

#[test]
fn truncated_gzip_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), true, 20, true);
    let p = dir.path().join("train-images-idx3-ubyte.gz");
    let b = std::fs::read(&p).unwrap();
    std::fs::write(&p, &b[..b.len() / 2]).unwrap();
    expect_format_error(dir.path(), "gzip", "train-images-idx3-ubyte.gz");
}

#[test]
fn label_out_of_range_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), true, 3, false);
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        encode_idx(&[3], &[1, 10, 2]),
    )
    .unwrap();
    expect_format_error(
        dir.path(),
        "label 10 at record 1",
        "train-labels-idx1-ubyte",
    );
}

#[test]
fn label_count_mismatch_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_split(dir.path(), true, 3, false);
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        encode_idx(&[2], &[1, 2]),
    )
    .unwrap();
    expect_format_error(dir.path(), "2 labels but", "train-labels-idx1-ubyte");
}

#[test]
fn mnist_mini_is_embedded() {
    let train = MnistMini::new(true).unwrap();
    let test = MnistMini::new(false).unwrap();
    assert_eq!(train.len(), 8_000);
    assert_eq!(test.len(), 1_000);
    let s = test.get(0).unwrap();
    assert_eq!(s.image.dims(), &[1, 28, 28]);
    let px = s.image.to_vec::<f32>().unwrap();
    assert!(px.iter().all(|&p| (0.0..=1.0).contains(&p)) && px.iter().any(|&p| p > 0.5));
    // Real digits: every class is present.
    let mut seen = [false; 10];
    for &l in train.images().labels() {
        seen[l as usize] = true;
    }
    assert!(seen.iter().all(|&s| s));
}
