//! Writing an event file and reading it back: every record's framing and CRCs, every value;
//! a torn last record leaves the rest readable; corruption is an error.

use mlfw_core::{DType, Device, Tensor};
use mlfw_tensorboard::{make_grid, read_events, SummaryWriter};

fn write_sample(dir: &std::path::Path) -> std::path::PathBuf {
    let mut w = SummaryWriter::new(dir).unwrap();
    for step in 0..5u64 {
        w.add_scalar("train/loss", 1.0 / (step + 1) as f64, step)
            .unwrap();
    }
    w.add_scalars(&[("val/acc", 0.0), ("val/loss", 0.5)], 7)
        .unwrap();
    let t = Tensor::from_vec(
        (0..100).map(|v| v as f32).collect::<Vec<_>>(),
        [10, 10],
        &Device::Cpu,
    )
    .unwrap();
    w.add_histogram("fc.weight", &t, 1).unwrap();
    let batch = Tensor::rand(0.0, 1.0, [5, 1, 4, 6], DType::F32, &Device::Cpu).unwrap();
    w.add_image("batch", &make_grid(&batch, 4).unwrap(), 1)
        .unwrap();
    w.add_text("config", "lr = 0.01", 0).unwrap();
    w.flush().unwrap();
    w.path().to_path_buf()
}

#[test]
fn everything_written_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_sample(dir.path());
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    let f = read_events(&path).unwrap();
    assert!(f.torn.is_none());
    assert_eq!(f.events[0].file_version.as_deref(), Some("brain.Event:2"));
    let loss = f.scalars("train/loss");
    assert_eq!(loss.len(), 5);
    assert_eq!(loss[2], (2, 1.0 / 3.0));
    // A value of exactly zero is still present.
    assert_eq!(f.scalars("val/acc"), vec![(7, 0.0)]);
    let (_, h) = f.values("fc.weight").next().unwrap();
    let h = h.histo.as_ref().unwrap();
    assert_eq!((h.min, h.max, h.num, h.sum), (0.0, 99.0, 100.0, 4950.0));
    assert_eq!(h.bucket.iter().sum::<f64>(), 100.0);
    assert_eq!(h.bucket_limit.len(), h.bucket.len());
    let (_, img) = f.values("batch").next().unwrap();
    let img = img.image.as_ref().unwrap();
    // 2 rows × 4 columns of 4×6 images, 2 px padding.
    assert_eq!(
        (img.height, img.width, img.colorspace),
        (2 * 6 + 2, 4 * 8 + 2, 1)
    );
    assert_eq!(&img.encoded_image_string[1..4], b"PNG");
    let (_, txt) = f.values("config").next().unwrap();
    assert_eq!(txt.tensor.as_ref().unwrap().string_val[0], b"lr = 0.01");
    assert_eq!(
        txt.metadata
            .as_ref()
            .unwrap()
            .plugin_data
            .as_ref()
            .unwrap()
            .plugin_name,
        "text"
    );
}

#[test]
fn a_torn_last_record_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_sample(dir.path());
    let full = read_events(&path).unwrap().events.len();
    let bytes = std::fs::read(&path).unwrap();
    for cut in [1, 3, 5, 13, 40] {
        std::fs::write(&path, &bytes[..bytes.len() - cut]).unwrap();
        let f = read_events(&path).unwrap();
        assert_eq!(f.events.len(), full - 1, "cut {cut}");
        assert!(f.torn.is_some());
    }
    // A flipped byte inside a complete record is corruption, not a torn write.
    let mut bad = bytes.clone();
    bad[30] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    let e = read_events(&path).unwrap_err().to_string();
    assert!(e.contains("CRC"), "{e}");
}

#[test]
fn two_writers_in_one_second_get_two_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = SummaryWriter::new(dir.path()).unwrap();
    let b = SummaryWriter::new(dir.path()).unwrap();
    assert_ne!(a.path(), b.path());
}
