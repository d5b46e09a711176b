//! CIFAR-10/100 from folders and straight from .tar.gz archives; bad records and archives.

use std::io::Write;
use std::path::Path;

use mlfw_data::cifar_files::CIFAR_IMAGE_BYTES;
use mlfw_data::{Cifar10, Cifar100, Cifar100Labels, Dataset, Error};

/// `n` records with `labels(i)` label bytes and pixels = record index.
fn records(n: usize, labels: impl Fn(usize) -> Vec<u8>) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend(labels(i));
        out.extend(std::iter::repeat_n(i as u8, CIFAR_IMAGE_BYTES));
    }
    out
}

fn cifar10_files() -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = (1..=5)
        .map(|b| {
            (
                format!("data_batch_{b}.bin"),
                records(3, |i| vec![((i + b) % 10) as u8]),
            )
        })
        .collect();
    v.push(("test_batch.bin".into(), records(2, |i| vec![i as u8])));
    v
}

fn write_folder(dir: &Path, files: &[(String, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

fn write_archive(path: &Path, folder: &str, files: &[(String, Vec<u8>)]) {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, format!("{folder}/{name}"), &bytes[..])
            .unwrap();
    }
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    std::fs::File::create(path)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
}

#[test]
fn cifar10_from_extracted_folder() {
    let root = tempfile::tempdir().unwrap();
    write_folder(&root.path().join("cifar-10-batches-bin"), &cifar10_files());
    let train = Cifar10::new(root.path(), true).unwrap();
    assert_eq!(train.len(), 15);
    let s = train.get(4).unwrap(); // batch 2, record 1
    assert_eq!(s.image.dims(), &[3, 32, 32]);
    assert_eq!(s.label, 3);
    assert_eq!(s.image.to_vec::<f32>().unwrap()[0], 1.0 / 255.0);
    assert_eq!(Cifar10::new(root.path(), false).unwrap().len(), 2);
}

#[test]
fn cifar10_straight_from_archive_and_from_dir() {
    let root = tempfile::tempdir().unwrap();
    let archive = root.path().join("cifar-10-binary.tar.gz");
    write_archive(&archive, "cifar-10-batches-bin", &cifar10_files());
    let test = Cifar10::new(root.path(), false).unwrap();
    assert_eq!(test.len(), 2);
    assert_eq!(test.images().labels(), &[0, 1]);
    assert_eq!(Cifar10::from_dir(root.path(), true).unwrap().len(), 15);

    let flat = tempfile::tempdir().unwrap();
    write_folder(flat.path(), &cifar10_files());
    assert_eq!(Cifar10::from_dir(flat.path(), true).unwrap().len(), 15);
}

#[test]
fn cifar100_fine_and_coarse_labels() {
    let root = tempfile::tempdir().unwrap();
    let files = vec![
        (
            "train.bin".to_string(),
            records(4, |i| vec![(i % 20) as u8, (i * 25) as u8]),
        ),
        ("test.bin".to_string(), records(1, |_| vec![19, 99])),
    ];
    write_archive(
        &root.path().join("cifar-100-binary.tar.gz"),
        "cifar-100-binary",
        &files,
    );
    let fine = Cifar100::new(root.path(), true, Cifar100Labels::Fine).unwrap();
    assert_eq!(fine.images().labels(), &[0, 25, 50, 75]);
    assert_eq!(fine.metadata().num_classes, 100);
    let coarse = Cifar100::new(root.path(), true, Cifar100Labels::Coarse).unwrap();
    assert_eq!(coarse.images().labels(), &[0, 1, 2, 3]);
    assert_eq!(coarse.metadata().num_classes, 20);
    let test = Cifar100::new(root.path(), false, Cifar100Labels::Fine).unwrap();
    assert_eq!(test.get(0).unwrap().label, 99);
}

#[test]
fn wrong_record_length_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let mut files = cifar10_files();
    files[5].1.pop();
    write_folder(&root.path().join("cifar-10-batches-bin"), &files);
    let e = Cifar10::new(root.path(), false).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Format { .. }), "{msg}");
    assert!(
        msg.contains("test_batch.bin") && msg.contains("3073-byte records"),
        "{msg}"
    );
}

#[test]
fn label_out_of_range_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let mut files = cifar10_files();
    files[2].1[0] = 10;
    write_folder(&root.path().join("cifar-10-batches-bin"), &files);
    let msg = Cifar10::new(root.path(), true).unwrap_err().to_string();
    assert!(
        msg.contains("data_batch_3.bin") && msg.contains("out of range 0..10"),
        "{msg}"
    );
    let root = tempfile::tempdir().unwrap();
    let files = vec![("test.bin".to_string(), records(1, |_| vec![20, 5]))];
    write_folder(&root.path().join("cifar-100-binary"), &files);
    let msg = Cifar100::new(root.path(), false, Cifar100Labels::Fine)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("test.bin") && msg.contains("out of range 0..20"),
        "{msg}"
    );
}

#[test]
fn truncated_archive_and_missing_member_are_errors() {
    let root = tempfile::tempdir().unwrap();
    let archive = root.path().join("cifar-10-binary.tar.gz");
    write_archive(&archive, "cifar-10-batches-bin", &cifar10_files());
    let b = std::fs::read(&archive).unwrap();
    std::fs::write(&archive, &b[..b.len() / 2]).unwrap();
    let msg = Cifar10::new(root.path(), false).unwrap_err().to_string();
    assert!(msg.contains("cifar-10-binary.tar.gz"), "{msg}");

    let files = cifar10_files()[..5].to_vec(); // no test_batch.bin
    write_archive(&archive, "cifar-10-batches-bin", &files);
    let msg = Cifar10::new(root.path(), false).unwrap_err().to_string();
    assert!(
        msg.contains("cifar-10-batches-bin/test_batch.bin not found"),
        "{msg}"
    );
}

#[test]
fn missing_files_list_archive_and_extracted_paths() {
    let root = tempfile::tempdir().unwrap();
    let msg = Cifar10::new(root.path(), true).unwrap_err().to_string();
    assert!(msg.contains(
        &root
            .path()
            .join("cifar-10-binary.tar.gz")
            .display()
            .to_string()
    ));
    assert!(
        msg.contains("data_batch_5.bin") && msg.contains("mnist-mini"),
        "{msg}"
    );
}
