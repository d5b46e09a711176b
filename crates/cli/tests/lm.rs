//! End-to-end tests of the language-model workflow: `mlfw train` on a text file, resume,
//! `mlfw generate` (reproducible from the seed, needing only the run folder), `mlfw bench`
//! in tokens/s, and clear errors for bad text and prompts.

use std::path::Path;
use std::process::{Command, Output};

thread_local! {
    /// Each test gets its own empty `MLFW_HOME` (never the user's cache).
    static HOME: tempfile::TempDir = tempfile::tempdir().expect("temporary MLFW_HOME");
}

fn run(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlfw"));
    HOME.with(|h| c.env("MLFW_HOME", h.path()));
    c.args(args).output().expect("run mlfw")
}

/// Asserts success; returns stdout.
fn pass(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "mlfw {args:?}:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts a clean failure; returns stderr.
fn refuse(args: &[&str]) -> String {
    let o = run(args);
    let e = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success() && e.contains("error:") && !e.contains("panicked"),
        "{args:?}: {e}"
    );
    e
}

/// A small corpus in `dir` (long enough for 128-character windows in both splits).
fn corpus(dir: &Path) -> String {
    let text = "ROMEO:\nBut soft, what light through yonder window breaks?\n\nJULIET:\nO Romeo, Romeo!\n\n".repeat(30);
    let p = dir.join("play.txt");
    std::fs::write(&p, text).unwrap();
    format!("text:{}", p.display())
}

#[test]
fn train_resume_generate() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(dir.path());
    let out = dir.path().join("run");
    let o = out.to_str().unwrap();
    let args = [
        "train",
        "--model",
        "char-lstm",
        "--dataset",
        &data,
        "--batch-size",
        "2",
        "--max-steps",
        "2",
        "--epochs",
        "1",
        "--out",
        o,
        "--quiet",
    ];
    pass(&args);
    for f in [
        "config.json",
        "vocab.json",
        "best.safetensors",
        "last.safetensors",
        "checkpoint.safetensors",
        "metrics.csv",
        "perplexity.csv",
        "loss.png",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    pass(&["train", "--resume", o, "--epochs", "2", "--quiet"]);
    let rows = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(rows.lines().count(), 3, "{rows}");
    let w = out.join("best.safetensors");
    let w = w.to_str().unwrap();
    let gen = [
        "generate",
        "--weights",
        w,
        "--prompt",
        "ROMEO:",
        "--tokens",
        "40",
        "--temperature",
        "0.8",
        "--top-k",
        "5",
        "--seed",
        "3",
    ];
    let a = pass(&gen);
    assert!(a.starts_with("ROMEO:") && a.chars().count() >= 46, "{a}");
    assert_eq!(a, pass(&gen), "sampling must be reproducible from the seed");
    let e = refuse(&["generate", "--weights", w, "--prompt", "Zebra"]);
    assert!(e.contains("--prompt") && e.contains("'Z'"), "{e}");
}

#[test]
fn bad_text_and_mismatched_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin.txt");
    std::fs::write(&bin, b"abc\xffdef").unwrap();
    let e = refuse(&[
        "train",
        "--model",
        "gpt-mini",
        "--dataset",
        &format!("text:{}", bin.display()),
    ]);
    assert!(e.contains("bin.txt") && e.contains("UTF-8"), "{e}");
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, b"").unwrap();
    let e = refuse(&[
        "train",
        "--model",
        "char-lstm",
        "--dataset",
        &format!("text:{}", empty.display()),
    ]);
    assert!(e.contains("empty"), "{e}");
    let e = refuse(&["train", "--model", "lenet5", "--dataset", "tinyshakespeare"]);
    assert!(e.contains("language model"), "{e}");
    let e = refuse(&["train", "--model", "gpt-mini", "--dataset", "mnist-mini"]);
    assert!(e.contains("text dataset"), "{e}");
}

#[test]
fn bench_reports_tokens_per_second() {
    let j = pass(&[
        "bench",
        "--model",
        "gpt-mini",
        "--batch-size",
        "2",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
    assert!(v["train_tokens_per_s"].as_f64().unwrap() > 0.0, "{j}");
}

/// The `lr` column of a run folder's `metrics.csv`.
fn lrs(run: &Path) -> Vec<String> {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').nth(5).unwrap().to_string())
        .collect()
}

#[test]
fn schedule_drives_the_lr_resumes_exactly_and_tensorboard_logs() {
    let dir = tempfile::tempdir().unwrap();
    let data = corpus(dir.path());
    let whole = dir.path().join("whole");
    let parts = dir.path().join("parts");
    let args = |out: &Path, epochs: &str| -> Vec<String> {
        [
            "train",
            "--model",
            "char-lstm",
            "--dataset",
            &data,
            "--batch-size",
            "2",
            "--max-steps",
            "1",
            "--epochs",
            epochs,
            "--scheduler",
            "step",
            "--out",
            out.to_str().unwrap(),
            "--quiet",
        ]
        .map(String::from)
        .to_vec()
    };
    let a = args(&whole, "3");
    pass(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let lr = lrs(&whole);
    let v: Vec<f64> = lr.iter().map(|s| s.parse().unwrap()).collect();
    assert!(
        v.len() == 3 && v[1] < v[0] && v[2] < v[1],
        "step schedule: {lr:?}"
    );
    let events = std::fs::read_dir(&whole)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("events.out.tfevents.")
        })
        .count();
    assert_eq!(events, 1, "one TensorBoard event file");

    let b = args(&parts, "1");
    pass(&b.iter().map(String::as_str).collect::<Vec<_>>());
    pass(&[
        "train",
        "--resume",
        parts.to_str().unwrap(),
        "--epochs",
        "3",
        "--quiet",
    ]);
    assert_eq!(lrs(&parts), lr, "the resumed schedule");
    assert_eq!(
        std::fs::read(whole.join("last.safetensors")).unwrap(),
        std::fs::read(parts.join("last.safetensors")).unwrap(),
        "resumed weights bit-identical"
    );
}
