//! `--compile` on `mlfw train` and `mlfw bench`: the same weights as eager training in the
//! same run-folder layout, and the one-line fallback to eager when a step cannot be captured.

mod common;
use common::*;

#[test]
fn train_compile_gives_eager_weights_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (eager, compiled) = (dir.path().join("eager"), dir.path().join("compiled"));
    ok(&strs(&train_args(&eager, "1", "6", &["--seed", "3"])));
    // The default whole-batch replay is bit-identical (the micro-batch split is not: below).
    let o = command()
        .args(strs(&train_args(
            &compiled,
            "1",
            "6",
            &["--seed", "3", "--compile"],
        )))
        .env_remove("MLFW_COMPILE_SPLIT")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("--compile: ") && !err.contains("falling back"),
        "{err}"
    );
    assert!(err.contains("whole batch (bit-identical to eager"), "{err}");
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
fn train_compile_says_how_the_step_is_split() {
    let dir = tempfile::tempdir().unwrap();
    let o = command()
        .args(strs(&train_args(
            &dir.path().join("split"),
            "1",
            "3",
            &["--seed", "3", "--compile", "--batch-size", "32"],
        )))
        .env("MLFW_COMPILE_SPLIT", "16")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("batch 32: 2 micro-batches of 16 samples") && err.contains("sample-separable"),
        "{err}"
    );
    let o = command()
        .args(strs(&train_args(
            &dir.path().join("bad"),
            "1",
            "1",
            &["--compile"],
        )))
        .env("MLFW_COMPILE_SPLIT", "lots")
        .output()
        .unwrap();
    assert!(
        stderr(&o).contains("MLFW_COMPILE_SPLIT must be"),
        "{}",
        stderr(&o)
    );
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

/// The `--compile` lines of a `bench --json` run, and its JSON.
fn bench_compile(args: &[&str]) -> (Vec<String>, serde_json::Value) {
    let o = command().args(args).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let lines = err
        .lines()
        .filter(|l| l.contains("--compile"))
        .map(str::to_string)
        .collect();
    (lines, serde_json::from_str(stdout(&o).trim()).unwrap())
}

#[test]
fn batch_norm_compiles_for_its_batch_size() {
    // Batch norm's running statistics are state writes of the compiled step; its unbiased
    // n / (n - 1) ties the step to the batch size it was captured with.
    let (lines, v) = bench_compile(&[
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
    ]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("--compile: ") && lines[0].contains("for this batch size only"),
        "{lines:?}"
    );
    assert_eq!(v["compiled"], true, "{v}");
}

#[test]
fn an_unsupported_step_falls_back_to_eager_with_one_line() {
    let (lines, v) = bench_compile(&[
        "bench",
        "--model",
        "lenet5",
        "--batch-size",
        "4",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--amp",
        "bf16",
        "--json",
        "--compile",
    ]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("--compile: falling back to eager: ") && lines[0].contains("--amp"),
        "{lines:?}"
    );
    assert_eq!(v["compiled"], false, "{v}");
}

#[test]
fn a_language_model_says_it_runs_eagerly() {
    // `--compile` on char-lstm was accepted and silently ignored: one line must say so.
    let (lines, _) = bench_compile(&[
        "bench",
        "--model",
        "char-lstm",
        "--batch-size",
        "1",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--json",
        "--compile",
    ]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("--compile: falling back to eager: ")
            && lines[0].contains("language model"),
        "{lines:?}"
    );
}

#[test]
fn dropout_falls_back_saying_it_draws_random_numbers() {
    // mobilenet_v2's classifier dropout: the reason used to be "constant `constant` has a
    // batch-sized shape; capture without a symbolic batch", which says nothing to a user.
    let (lines, v) = bench_compile(&[
        "bench",
        "--model",
        "mobilenet_v2",
        "--batch-size",
        "2",
        "--input",
        "3",
        "32",
        "32",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--json",
        "--compile",
    ]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("--compile: falling back to eager: ")
            && lines[0].contains("random numbers")
            && lines[0].contains("dropout")
            && !lines[0].contains("symbolic"),
        "{lines:?}"
    );
    assert_eq!(v["compiled"], false, "{v}");
}
