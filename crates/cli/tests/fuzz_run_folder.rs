//! Bounded mutation fuzzing of what `mlfw train --resume` reads back: the checkpoint's bytes,
//! its metadata (progress, optimizer and scheduler state) and config.json. Every case must
//! end in success or a clean `error:` exit — never a panic or a death by signal (abort).

mod common;
#[path = "../../../tests/common/fuzz.rs"]
mod fuzz;

use std::path::Path;

use common::{command, ok, strs, train_args};
use fuzz::{mutate, FuzzReport, FuzzRng};
use mlfw_core::{safetensors, Device};

/// Cases per kind of input (three kinds).
const CASES: usize = 100;

/// Resumes `run` and classifies the outcome.
fn resume(run: &Path, r: &mut FuzzReport, aborts: &mut usize) {
    let o = command()
        .args(["train", "--resume", run.to_str().unwrap(), "--quiet"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    r.cases += 1;
    if err.contains("panicked") {
        eprintln!("panic: {err}");
        r.panics += 1;
    } else if o.status.code().is_none() {
        eprintln!("killed by a signal: {err}");
        *aborts += 1;
    } else if o.status.success() {
        r.ok += 1;
    } else {
        assert!(err.contains("error:"), "no error line: {err}");
        r.clean_errors += 1;
    }
}

#[test]
fn fuzz_checkpoint_and_config() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    ok(&strs(&train_args(
        &run,
        "1",
        "2",
        &["--scheduler", "onecycle"],
    )));
    let names = ["checkpoint.safetensors", "config.json", "metrics.jsonl"];
    let good: Vec<Vec<u8>> = names
        .iter()
        .map(|n| std::fs::read(run.join(n)).unwrap())
        .collect();
    let restore = || {
        for (n, b) in names.iter().zip(&good) {
            std::fs::write(run.join(n), b).unwrap();
        }
    };
    let file = safetensors::load(run.join(names[0]), &Device::Cpu).unwrap();
    let meta = file.metadata["mlfw.checkpoint"].clone().into_bytes();

    let mut rng = FuzzRng::new(9);
    let kinds = ["checkpoint bytes", "checkpoint metadata", "config.json"];
    for (k, kind) in kinds.iter().enumerate() {
        let (mut r, mut aborts) = (FuzzReport::default(), 0);
        for _ in 0..CASES {
            restore();
            match k {
                0 => std::fs::write(run.join(names[0]), mutate(&good[0], &mut rng)).unwrap(),
                1 => {
                    let text = String::from_utf8_lossy(&mutate(&meta, &mut rng)).into_owned();
                    let mut m = file.metadata.clone();
                    m.insert("mlfw.checkpoint".into(), text);
                    safetensors::save(run.join(names[0]), &file.tensors, Some(m)).unwrap();
                }
                _ => std::fs::write(run.join(names[1]), mutate(&good[1], &mut rng)).unwrap(),
            }
            resume(&run, &mut r, &mut aborts);
        }
        eprintln!(
            "fuzz {kind}: {} cases, {} ok, {} clean errors, {} panics, {aborts} aborts",
            r.cases, r.ok, r.clean_errors, r.panics
        );
        assert_eq!((r.panics, aborts), (0, 0), "{kind}: {r:?}");
        assert!(r.clean_errors > 0, "{kind}: {r:?}");
    }
}
