//! The run folder has one writer at a time (an OS lock naming its holder), a run stopped
//! before its first checkpoint is started over by `--resume`, and stray temporary files of a
//! killed writer are cleaned up.

mod common;

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{command, fails, ok, strs};

fn train_args(out: &Path, epochs: &str) -> Vec<String> {
    common::train_args(out, epochs, "4", &[])
}

/// Starts a long run into `out` and waits until it holds the folder's lock.
fn start_long_run(out: &Path) -> Child {
    let child = command()
        .args(train_args(out, "1000"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = out.join(".mlfw.lock");
    let start = Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.contains("pid")) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the run never locked its folder"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[test]
fn a_second_writer_is_refused_naming_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let mut first = start_long_run(&run);
    let pid = format!("pid {}", first.id());
    let args = train_args(&run, "2");
    let err = fails(&strs(&args));
    let resume = ["train", "--resume", run.to_str().unwrap(), "--quiet"];
    let err_resume = fails(&resume);
    first.kill().unwrap();
    first.wait().unwrap();
    for e in [err, err_resume] {
        assert!(
            e.contains("in use by another mlfw run") && e.contains(&pid) && e.contains("host"),
            "{e}"
        );
    }
    // The OS released the killed run's lock: the folder can be resumed now.
    ok(&[
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--epochs",
        "1",
        "--quiet",
    ]);
}

#[test]
fn a_run_stopped_before_its_first_checkpoint_resumes_from_step_0() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    for run in [&a, &b] {
        ok(&strs(&train_args(run, "1")));
    }
    // What a kill in the first epoch leaves: config.json, and maybe a temporary file.
    for f in [
        "checkpoint.safetensors",
        "last.safetensors",
        "metrics.csv",
        "metrics.jsonl",
    ] {
        std::fs::remove_file(b.join(f)).unwrap();
    }
    let stray = b.join(".checkpoint.safetensors.999999.tmp");
    std::fs::write(&stray, b"half a checkpoint").unwrap();

    let err = fails(
        &train_args(&b, "1")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert!(
        err.contains("before its first checkpoint") && err.contains("--resume"),
        "{err}"
    );
    let o = command()
        .args(["train", "--resume", b.to_str().unwrap()])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("starting over from step 0"), "{out}");
    assert!(!stray.exists(), "stray temporary file left behind");
    let last = |r: &Path| std::fs::read(r.join("last.safetensors")).unwrap();
    assert!(
        last(&a) == last(&b),
        "restarted run differs from an uninterrupted one"
    );
    assert!(b.join("checkpoint.safetensors").is_file());
    let rows = std::fs::read_to_string(b.join("metrics.jsonl")).unwrap();
    assert_eq!(rows.lines().count(), 1, "{rows}");
}
