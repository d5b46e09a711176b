//! QMNIST, EMNIST, SVHN and STL-10 from small generated files in their real formats: served
//! by the loopback server (checksums enforced: generated digests for the happy path, the
//! published ones refusing the stand-ins), read from folders, and refused when malformed.

mod common;

use std::io::Write;
use std::path::Path;

use common::{files_under, Route, TestServer};
use mlfw_data::download::md5_bytes;
use mlfw_data::idx::encode_idx;
use mlfw_data::mat5::{encode_mat, MatArray, MatData};
use mlfw_data::resources::{RemoteFile, Source, QMNIST_SOURCE, SVHN_SOURCE};
use mlfw_data::zip::encode_zip;
use mlfw_data::{
    load_by_name, Dataset, DownloadOptions, Emnist, LoadOptions, Qmnist, Split, Stl10, Svhn,
};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A loopback server serving `files` under `/d/`, and a `Source` with their real digests.
fn serve(files: Vec<(&'static str, Vec<u8>)>) -> (TestServer, Source, Vec<String>) {
    let routes: Vec<(String, Route)> = files
        .iter()
        .map(|(n, b)| (format!("/d/{n}"), Route::File(b.clone())))
        .collect();
    let server = TestServer::start(
        routes
            .iter()
            .map(|(p, r)| (p.as_str(), r.clone()))
            .collect(),
    );
    let remote: Vec<RemoteFile> = files
        .iter()
        .map(|(n, b)| RemoteFile {
            name: n,
            md5: Box::leak(md5_bytes(b).into_boxed_str()),
        })
        .collect();
    let source = Source {
        mirrors: &[],
        files: Box::leak(remote.into_boxed_slice()),
    };
    let mirrors = vec![server.url("/d/")];
    (server, source, mirrors)
}

fn quiet() -> DownloadOptions {
    DownloadOptions::quiet().retries(0)
}

/// QMNIST labels: IDX int32 `[n, 8]`, class in column 0.
fn qmnist_labels(n: usize) -> Vec<u8> {
    let mut b = vec![0, 0, 0x0C, 2];
    b.extend_from_slice(&(n as u32).to_be_bytes());
    b.extend_from_slice(&8u32.to_be_bytes());
    for i in 0..n {
        for col in 0..8i32 {
            let v = if col == 0 {
                (i % 10) as i32
            } else {
                1000 + col
            };
            b.extend_from_slice(&v.to_be_bytes());
        }
    }
    b
}

#[test]
fn qmnist_downloads_checks_and_reads_int_labels() {
    let n = 7;
    let px: Vec<u8> = (0..n * 784).map(|k| (k % 251) as u8).collect();
    let (server, source, mirrors) = serve(vec![
        (
            "qmnist-test-images-idx3-ubyte.gz",
            gz(&encode_idx(&[n, 28, 28], &px)),
        ),
        ("qmnist-test-labels-idx2-int.gz", gz(&qmnist_labels(n))),
    ]);
    let root = tempfile::tempdir().unwrap();
    let ds = Qmnist::load(
        root.path(),
        false,
        &source,
        Some((Some(&mirrors), &quiet())),
    )
    .unwrap();
    assert_eq!(ds.len(), n);
    assert_eq!(ds.get(3).unwrap().label, 3);
    assert_eq!(ds.metadata().name, "qmnist");
    // Now cached: no download needed, also through the registry.
    let opts = LoadOptions::default().root(root.path()).download(false);
    assert_eq!(load_by_name("qmnist", Split::Test, &opts).unwrap().len(), n);
    // The published digest refuses the stand-in files.
    let other = tempfile::tempdir().unwrap();
    let e = Qmnist::load(
        other.path(),
        false,
        &QMNIST_SOURCE,
        Some((Some(&mirrors), &quiet())),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("1394631089c404de565df7b7aeaf9412") || e.contains("checksum"),
        "{e}"
    );
    assert!(files_under(other.path()).is_empty());
    drop(server);
    // Malformed labels: the header claims more rows than the file holds.
    let dir = tempfile::tempdir().unwrap();
    let mut bad = qmnist_labels(n);
    bad[4..8].copy_from_slice(&1_000_000u32.to_be_bytes());
    std::fs::write(dir.path().join("qmnist-train-labels-idx2-int.gz"), gz(&bad)).unwrap();
    std::fs::write(
        dir.path().join("qmnist-train-images-idx3-ubyte.gz"),
        gz(&encode_idx(&[n, 28, 28], &px)),
    )
    .unwrap();
    let e = Qmnist::from_dir(dir.path(), true).unwrap_err().to_string();
    assert!(e.contains("need") && e.contains("labels-idx2-int"), "{e}");
}

#[test]
fn emnist_extracts_its_split_from_the_zip() {
    let n = 5;
    let px: Vec<u8> = (0..n * 784).map(|k| (k % 13) as u8).collect();
    let labels: Vec<u8> = (1..=n as u8).collect(); // letters: 1..=26
    let img = gz(&encode_idx(&[n, 28, 28], &px));
    let lab = gz(&encode_idx(&[n], &labels));
    let zip = encode_zip(&[
        ("gzip/emnist-letters-train-images-idx3-ubyte.gz", &img),
        ("gzip/emnist-letters-train-labels-idx1-ubyte.gz", &lab),
        ("gzip/emnist-digits-train-images-idx3-ubyte.gz", &img),
    ]);
    let (_server, source, mirrors) = serve(vec![("gzip.zip", zip)]);
    let root = tempfile::tempdir().unwrap();
    let ds = Emnist::load(
        root.path(),
        "letters",
        true,
        &source,
        Some((Some(&mirrors), &quiet())),
    )
    .unwrap();
    assert_eq!(ds.len(), n);
    assert_eq!(ds.get(0).unwrap().label, 1);
    let info = ds.metadata();
    assert_eq!(
        (info.name.as_str(), info.num_classes),
        ("emnist-letters", 27)
    );
    assert_eq!(info.classes[1], "a");
    // Extracted next to the zip: the registry reads them offline.
    let opts = LoadOptions::default().root(root.path()).download(false);
    assert_eq!(
        load_by_name("emnist-letters", Split::Train, &opts)
            .unwrap()
            .len(),
        n
    );
    // A split whose labels are missing from the archive.
    let e = Emnist::load(
        root.path(),
        "digits",
        true,
        &source,
        Some((Some(&mirrors), &quiet())),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("emnist-digits-train-labels") && e.contains("not found"),
        "{e}"
    );
    for (split, k) in [
        ("byclass", 62),
        ("bymerge", 47),
        ("balanced", 47),
        ("digits", 10),
        ("mnist", 10),
    ] {
        assert_eq!(
            mlfw_data::emnist::emnist_classes(split).unwrap().len(),
            k,
            "{split}"
        );
    }
    assert!(mlfw_data::emnist::emnist_classes("nope").is_err());
}

/// An SVHN-style `.mat`: `X` uint8 `[32, 32, 3, n]` column-major with pixel (h, w, c, i) =
/// `h + 2w + 3c + i`, `y` double `[n, 1]` = 1..=10.
fn svhn_mat(n: usize, compress: bool) -> Vec<u8> {
    let mut x = vec![0u8; 32 * 32 * 3 * n];
    for i in 0..n {
        for c in 0..3 {
            for w in 0..32 {
                for h in 0..32 {
                    x[h + 32 * w + 1024 * c + 3072 * i] = (h + 2 * w + 3 * c + i) as u8;
                }
            }
        }
    }
    let y: Vec<f64> = (0..n).map(|i| (i % 10 + 1) as f64).collect();
    encode_mat(
        &[
            MatArray {
                name: "X".into(),
                dims: vec![32, 32, 3, n],
                data: MatData::U8(x),
            },
            MatArray {
                name: "y".into(),
                dims: vec![n, 1],
                data: MatData::F64(y),
            },
        ],
        compress,
    )
}

#[test]
fn svhn_reads_matlab_files() {
    let n = 11;
    let (_server, source, mirrors) = serve(vec![("test_32x32.mat", svhn_mat(n, true))]);
    let root = tempfile::tempdir().unwrap();
    let ds = Svhn::load(
        root.path(),
        "test",
        &source,
        Some((Some(&mirrors), &quiet())),
    )
    .unwrap();
    assert_eq!(ds.len(), n);
    // Label 10 is the digit 0; pixels are transposed from MATLAB's column-major order.
    assert_eq!(ds.get(9).unwrap().label, 0);
    assert_eq!(ds.get(2).unwrap().label, 3);
    let img = ds.images().image(4).unwrap();
    let (c, h, w) = (2, 5, 7);
    assert_eq!(img[c * 1024 + h * 32 + w], (h + 2 * w + 3 * c + 4) as u8);
    // Uncompressed files and --data-dir work too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("train_32x32.mat"), svhn_mat(3, false)).unwrap();
    let opts = LoadOptions::default().data_dir(dir.path());
    assert_eq!(load_by_name("svhn", Split::Train, &opts).unwrap().len(), 3);
    // Published digests refuse stand-ins; nothing is left behind.
    let other = tempfile::tempdir().unwrap();
    let e = Svhn::load(
        other.path(),
        "test",
        &SVHN_SOURCE,
        Some((Some(&mirrors), &quiet())),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("test_32x32.mat"), "{e}");
    assert!(files_under(other.path()).is_empty());
    // A truncated file and a bad label.
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let full = svhn_mat(3, false);
    std::fs::write(bad.join("train_32x32.mat"), &full[..full.len() / 2]).unwrap();
    assert!(Svhn::from_dir(&bad, "train").is_err());
    let mut y0 = svhn_mat(3, false);
    let k = y0.len() - 24; // first label (f64) of `y`
    y0[k..k + 8].copy_from_slice(&11f64.to_le_bytes());
    std::fs::write(bad.join("train_32x32.mat"), &y0).unwrap();
    let e = Svhn::from_dir(&bad, "train").unwrap_err().to_string();
    assert!(e.contains("1..=10"), "{e}");
}

/// An STL-10 tar.gz with `n` test images: pixel (c, h, w) of image i stored column-major.
fn stl10_archive(n: usize) -> Vec<u8> {
    let mut x = vec![0u8; n * 3 * 96 * 96];
    for i in 0..n {
        for c in 0..3 {
            for w in 0..96 {
                for h in 0..96 {
                    x[i * 27648 + c * 9216 + w * 96 + h] = (h + w + c + i) as u8;
                }
            }
        }
    }
    let y: Vec<u8> = (0..n).map(|i| (i % 10 + 1) as u8).collect();
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("stl10_binary/test_X.bin", &x),
        ("stl10_binary/test_y.bin", &y),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, name, &data[..]).unwrap();
    }
    gz(&tar.into_inner().unwrap())
}

#[test]
fn stl10_reads_the_binary_archive() {
    let n = 4;
    let (_server, source, mirrors) = serve(vec![("stl10_binary.tar.gz", stl10_archive(n))]);
    let root = tempfile::tempdir().unwrap();
    let ds = Stl10::load(
        root.path(),
        false,
        &source,
        Some((Some(&mirrors), &quiet())),
    )
    .unwrap();
    assert_eq!(ds.len(), n);
    assert_eq!(ds.get(2).unwrap().label, 2);
    assert_eq!(ds.get(0).unwrap().image.dims(), &[3, 96, 96]);
    let img = ds.images().image(1).unwrap();
    assert_eq!(img[2 * 9216 + 10 * 96 + 20], (10 + 20 + 2 + 1) as u8);
    let e = Stl10::load(root.path(), true, &source, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("train_X.bin") && e.contains("not found"), "{e}");
    // Extracted files in a folder.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test_X.bin"), vec![0u8; 27648 * 2]).unwrap();
    std::fs::write(dir.path().join("test_y.bin"), [1u8, 10]).unwrap();
    assert_eq!(
        Stl10::from_dir(dir.path(), false)
            .unwrap()
            .get(1)
            .unwrap()
            .label,
        9
    );
    std::fs::write(dir.path().join("test_y.bin"), [1u8, 11]).unwrap();
    assert!(Stl10::from_dir(dir.path(), false).is_err());
    std::fs::write(dir.path().join("test_y.bin"), [1u8]).unwrap();
    assert!(Stl10::from_dir(dir.path(), false).is_err());
    let _ = Path::new(".");
}
