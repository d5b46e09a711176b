//! `--compile` on `mlfw train` and `mlfw bench`: the same weights as eager training in the
//! same run-folder layout, and the one-line fallback to eager when a step cannot be captured.

mod common;
use common::*;

#[test]
fn train_compile_gives_eager_weights_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (eager, compiled) = (dir.path().join("eager"), dir.path().join("compiled"));
    ok(&strs(&train_args(&eager, "1", "6", &["--seed", "3"])));
    let o = command()
        .args(strs(&train_args(
            &compiled,
            "1",
            "6",
            &["--seed", "3", "--compile"],
        )))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("--compile: ") && !err.contains("falling back"),
        "{err}"
    );
    let read = |p: &std::path::Path| std::fs::read(p.join("last.safetensors")).unwrap();
    assert_eq!(read(&eager), read(&compiled), "weights differ");
    let names = |p: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("events.out"))
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&eager), names(&compiled), "same run folder layout");
}

#[test]
fn bench_compile_reports_a_compiled_step() {
    let out = ok(&[
        "bench",
        "--model",
        "lenet5",
        "--batch-size",
        "8",
        "--steps",
        "3",
        "--warmup",
        "1",
        "--json",
        "--compile",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["compiled"], true, "{v}");
    assert!(v["train_images_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn batch_norm_falls_back_to_eager_with_one_line() {
    let o = command()
        .args([
            "bench",
            "--model",
            "resnet18_cifar",
            "--batch-size",
            "2",
            "--input",
            "3",
            "16",
            "16",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--json",
            "--compile",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("--compile")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("--compile: falling back to eager: "),
        "{err}"
    );
    assert!(lines[0].contains("in place"), "{err}");
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["compiled"], false, "{v}");
}
