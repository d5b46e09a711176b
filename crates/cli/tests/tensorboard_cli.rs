//! `mlfw train` writes a TensorBoard event file in its run folder (`--no-tensorboard`: none):
//! per-step and per-epoch scalars, parameter and gradient histograms, a batch image, config.

mod common;

use std::path::{Path, PathBuf};

use common::ok;

fn train(out: &Path, extra: &[&str]) {
    let mut args = vec![
        "train",
        "--model",
        "lenet5",
        "--dataset",
        "mnist-mini",
        "--epochs",
        "2",
        "--max-steps",
        "3",
        "--workers",
        "1",
        "--quiet",
        "--out",
    ];
    args.push(out.to_str().unwrap());
    args.extend_from_slice(extra);
    ok(&args);
}

fn event_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("events.out.tfevents.")
        })
        .collect()
}

#[test]
fn train_writes_an_event_file() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train(&run, &[]);
    let files = event_files(&run);
    assert_eq!(files.len(), 1, "{files:?}");
    let f = mlfw_tensorboard::read_events(&files[0]).unwrap();
    assert!(f.torn.is_none());
    let steps: Vec<i64> = f.scalars("step/loss").iter().map(|s| s.0).collect();
    assert_eq!(steps, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(f.scalars("step/lr").len(), 6);
    let val = f.scalars("epoch/val_accuracy");
    assert_eq!(val.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 2]);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    assert!((val[1].1 as f64 - last["val_acc"].as_f64().unwrap()).abs() < 1e-6);
    for tag in [
        "epoch/train_loss",
        "epoch/lr",
        "epoch/images_per_s",
        "epoch/train_accuracy",
        "epoch/val_loss",
    ] {
        assert_eq!(f.scalars(tag).len(), 2, "{tag}");
    }
    for tag in [
        "params/conv1.weight",
        "grads/conv1.weight",
        "params/fc3.bias",
    ] {
        let h: Vec<_> = f
            .values(tag)
            .filter_map(|(_, v)| v.histo.as_ref())
            .collect();
        assert_eq!(h.len(), 2, "{tag}");
        assert!(h[0].num > 0.0);
    }
    assert_eq!(
        f.values("train/batch")
            .filter(|(_, v)| v.image.is_some())
            .count(),
        1
    );
    let (_, cfg) = f.values("config").next().unwrap();
    let text = String::from_utf8_lossy(&cfg.tensor.as_ref().unwrap().string_val[0]).into_owned();
    assert!(text.contains("lenet5"), "{text}");

    // Resuming for one more epoch adds a second file; the first stays readable.
    ok(&[
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--epochs",
        "3",
        "--quiet",
        "--no-tensorboard",
    ]);
    assert_eq!(event_files(&run).len(), 1);
}

#[test]
fn no_tensorboard_writes_none() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train(&run, &["--no-tensorboard"]);
    assert!(event_files(&run).is_empty());
}
