//! End-to-end tests of the `mlfw` binary: short training runs, the run folder, resume,
//! evaluation of the PyTorch fixture, and error handling for bad input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

thread_local! {
    /// Each test (the harness runs each on its own thread) gets its own empty `MLFW_HOME`, so no
    /// test reads or changes the user's real cache or another test's state.
    static HOME: tempfile::TempDir = tempfile::tempdir().expect("temporary MLFW_HOME");
}

/// `mlfw` with this test's own temporary `MLFW_HOME`.
fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlfw"));
    HOME.with(|h| c.env("MLFW_HOME", h.path()));
    c
}

fn mlfw(args: &[&str]) -> Output {
    command().args(args).output().expect("run mlfw")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `mlfw args`, asserting success; returns stdout.
fn ok(args: &[&str]) -> String {
    let o = mlfw(args);
    assert!(o.status.success(), "mlfw {args:?} failed:\n{}", stderr(&o));
    stdout(&o)
}

/// Runs `mlfw args`, asserting a clean failure (non-zero, `error:`, no panic); returns stderr.
fn fails(args: &[&str]) -> String {
    let o = mlfw(args);
    let err = stderr(&o);
    assert!(!o.status.success(), "mlfw {args:?} should fail");
    assert!(err.contains("error:"), "no error line: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    err
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/torch-ref")
        .join(name)
}

/// Short LeNet-5 run on mnist-mini (few steps per epoch) into `out`.
fn train(out: &Path, epochs: &str, extra: &[&str]) -> String {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "train",
        "--model",
        "lenet5",
        "--dataset",
        "mnist-mini",
        "--epochs",
        epochs,
        "--max-steps",
        "6",
        "--workers",
        "1",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

/// Every file of `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.display().to_string(), std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn train_writes_a_complete_run_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = train(&run, "1", &["--json"]);
    let summary: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(out.trim().lines().count(), 1, "stdout: {out}");
    for key in ["accuracy", "loss", "epochs", "time_s", "run_dir"] {
        assert!(summary.get(key).is_some(), "no `{key}` in {summary}");
    }
    assert_eq!(summary["epochs"], 1);

    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model"], "lenet5");
    assert_eq!(cfg["seed"], 0);
    assert_eq!(cfg["lr"], 0.01);
    assert!(cfg["mlfw_version"].is_string());
    assert!(cfg["command"].as_array().unwrap().len() > 5);

    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2);
    assert!(csv.starts_with("epoch,train_loss,train_acc,val_loss,val_acc"));
    let jsonl = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let row: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert!(row["val_acc"].as_f64().unwrap() > 0.0);

    let cpu = mlfw_core::Device::Cpu;
    let last = mlfw_core::safetensors::load(run.join("last.safetensors"), &cpu).unwrap();
    assert!(last.get("conv1.weight").is_some() && last.get("fc3.bias").is_some());
    mlfw_core::safetensors::load(run.join("best.safetensors"), &cpu).unwrap();
    mlfw_core::safetensors::load(run.join("checkpoint.safetensors"), &cpu).unwrap();
    for plot in ["loss", "accuracy"] {
        let png = std::fs::read(run.join(format!("{plot}.png"))).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
        let svg = std::fs::read_to_string(run.join(format!("{plot}.svg"))).unwrap();
        assert!(svg.starts_with("<svg"));
    }

    // Redraw, and refuse to start a second run in the same folder.
    let plots = tmp.path().join("plots");
    ok(&[
        "plot",
        run.to_str().unwrap(),
        run.to_str().unwrap(),
        "--out",
        plots.to_str().unwrap(),
    ]);
    assert!(plots.join("loss.svg").exists());
    let err = fails(&["train", "--epochs", "1", "--out", run.to_str().unwrap()]);
    assert!(err.contains("--resume"), "{err}");
}

#[test]
fn eval_of_the_pytorch_fixture_matches() {
    let w = fixture("lenet5_mnist_mini.safetensors");
    let out = ok(&[
        "eval",
        "--model",
        "lenet5",
        "--weights",
        w.to_str().unwrap(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["accuracy"].as_f64().unwrap(), 0.969, "{v}");
    assert!(v["loss"].as_f64().unwrap() < 0.2);
    assert_eq!(v["confusion"].as_array().unwrap().len(), 10);
    let text = ok(&["eval", "--model", "lenet", "--weights", w.to_str().unwrap()]);
    assert!(text.contains("accuracy 0.9690"), "{text}");
    // The hub's built-in lenet5 (offline, pulled into this test's empty home) was trained by mlfw.
    let out = ok(&["eval", "--model", "lenet5", "--pretrained", "--json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["accuracy"].as_f64().unwrap(), 0.971, "{v}");
}

#[test]
fn resume_is_bit_identical_to_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    train(&a, "2", &["--quiet"]);
    train(&b, "1", &["--quiet"]);
    ok(&[
        "train",
        "--resume",
        b.to_str().unwrap(),
        "--epochs",
        "2",
        "--quiet",
    ]);
    let wa = std::fs::read(a.join("last.safetensors")).unwrap();
    let wb = std::fs::read(b.join("last.safetensors")).unwrap();
    assert!(wa == wb, "weights differ after resume");
    let rows = std::fs::read_to_string(b.join("metrics.jsonl")).unwrap();
    assert_eq!(rows.lines().count(), 2);
    let err = fails(&["train", "--resume", b.to_str().unwrap(), "--lr", "0.1"]);
    assert!(err.contains("--lr cannot change"), "{err}");
}

#[test]
fn corrupt_checkpoint_is_rejected_and_the_folder_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    train(&run, "1", &["--quiet"]);
    let ckpt = run.join("checkpoint.safetensors");
    let bytes = std::fs::read(&ckpt).unwrap();
    std::fs::write(&ckpt, &bytes[..bytes.len() / 2]).unwrap();
    let before = snapshot(&run);
    let err = fails(&["train", "--resume", run.to_str().unwrap(), "--epochs", "2"]);
    assert!(err.contains("checkpoint.safetensors"), "{err}");
    assert!(snapshot(&run) == before, "the run folder changed");
}

#[test]
fn unknown_names_list_the_valid_ones() {
    let err = fails(&["train", "--model", "alexnet"]);
    assert!(err.contains("lenet5") && err.contains("mlp"), "{err}");
    let err = fails(&["train", "--dataset", "imagenet"]);
    assert!(
        err.contains("mnist-mini") && err.contains("cifar10"),
        "{err}"
    );
    let err = fails(&["train", "--optimizer", "lbfgs"]);
    assert!(err.contains("sgd, adam, adamw, rmsprop"), "{err}");
    let err = fails(&["train", "--scheduler", "poly"]);
    assert!(err.contains("none, step, cosine, onecycle"), "{err}");
    let err = fails(&["eval", "--model", "lenet5", "--weights", "nope.safetensors"]);
    assert!(err.contains("nope.safetensors"), "{err}");
}

#[test]
fn every_model_flag_lists_every_zoo_model() {
    for cmd in ["train", "eval", "predict", "export", "graph", "bench"] {
        let help = ok(&[cmd, "--help"]);
        let words: Vec<&str> = help
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .collect();
        for m in mlfw_vision::registry::MODEL_NAMES {
            assert!(words.contains(m), "`mlfw {cmd} --help` does not list {m}");
        }
    }
}

#[test]
fn divergence_names_epoch_and_step() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = run.to_str().unwrap();
    let err = fails(&[
        "train",
        "--epochs",
        "1",
        "--max-steps",
        "30",
        "--lr",
        "1e30",
        "--quiet",
        "--out",
        out,
    ]);
    assert!(err.contains("at epoch 1 step"), "{err}");
}

#[test]
fn cuda_without_a_gpu_is_a_one_line_error() {
    if mlfw_cuda::is_available() {
        return;
    }
    let err = fails(&["train", "--device", "cuda", "--epochs", "1"]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: --device cuda"), "{err}");
}

#[test]
fn bench_json_has_the_throughput_keys() {
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
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in ["train_images_per_s", "infer_images_per_s", "peak_rss_mb"] {
        assert!(v[key].as_f64().unwrap() > 0.0, "{key} in {v}");
    }
}

#[test]
fn data_list_names_every_dataset() {
    let out = ok(&["data", "list"]);
    for name in ["mnist-mini", "fashion-mnist", "cifar100"] {
        assert!(out.contains(name), "{out}");
    }
}

#[test]
fn predict_reads_image_files() {
    use mlfw_data::Dataset;
    let tmp = tempfile::tempdir().unwrap();
    let ds = mlfw_data::MnistMini::new(false).unwrap();
    let mut paths = Vec::new();
    let mut labels = Vec::new();
    for i in 0..3 {
        let s = ds.get(i).unwrap();
        let px: Vec<u8> = s
            .image
            .to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|&v| (v * 255.0).round() as u8)
            .collect();
        let path = tmp.path().join(format!("digit{i}.png"));
        image::GrayImage::from_raw(28, 28, px)
            .unwrap()
            .save(&path)
            .unwrap();
        paths.push(path.to_str().unwrap().to_string());
        labels.push(s.label);
    }
    let w = fixture("lenet5_mnist_mini.safetensors");
    let mut args = vec![
        "predict",
        "--weights",
        w.to_str().unwrap(),
        "--topk",
        "2",
        "--json",
    ];
    args.extend(paths.iter().map(String::as_str));
    let out = ok(&args);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for (v, label) in lines.iter().zip(labels) {
        let top = v["top"].as_array().unwrap();
        assert_eq!(top.len(), 2);
        assert_eq!(top[0]["class"].as_i64().unwrap(), label, "{v}");
        assert!(top[0]["prob"].as_f64().unwrap() > 0.5, "{v}");
    }
    let err = fails(&["predict", "--weights", w.to_str().unwrap(), "missing.png"]);
    assert!(err.contains("missing.png"), "{err}");
}

#[test]
fn cifar_is_resized_and_augmented_for_lenet() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("cifar");
    std::fs::create_dir(&data).unwrap();
    let files = [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
    ];
    for (f, name) in files.iter().enumerate() {
        let bytes: Vec<u8> = (0..4u8)
            .flat_map(|r| {
                std::iter::once(r).chain((0..3072).map(move |i| (i % 251) as u8 ^ r ^ f as u8))
            })
            .collect();
        std::fs::write(data.join(format!("{name}.bin")), bytes).unwrap();
    }
    let run = tmp.path().join("run");
    let (d, r) = (data.to_str().unwrap(), run.to_str().unwrap());
    ok(&[
        "train",
        "--model",
        "lenet",
        "--dataset",
        "cifar10",
        "--data-dir",
        d,
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--quiet",
        "--out",
        r,
    ]);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["input_shape"], serde_json::json!([3, 28, 28]));
    assert_eq!(cfg["augment"].as_array().unwrap().len(), 2);
    assert_eq!(cfg["mean"].as_array().unwrap().len(), 3);
}

#[test]
fn ctrl_c_checkpoints_and_resume_matches() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let args = |out: &Path| {
        let out = out.to_str().unwrap().to_string();
        [
            "train",
            "--epochs",
            "1",
            "--max-steps",
            "100",
            "--workers",
            "1",
            "--out",
            &out,
        ]
        .map(String::from)
    };
    ok(&args(&a).each_ref().map(String::as_str));
    let mut child = command()
        .args(args(&b))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Plain progress lines arrive every 10 steps; interrupt after the first.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        if line.contains(" step ") {
            let pid = child.id().to_string();
            Command::new("kill").args(["-INT", &pid]).status().unwrap();
            break;
        }
    }
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    if out.status.success() {
        eprintln!("the run finished before the signal arrived; nothing to check");
        return;
    }
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted at epoch 1 step"), "{err}");
    assert!(b.join("checkpoint.safetensors").exists());
    ok(&["train", "--resume", b.to_str().unwrap(), "--quiet"]);
    let wa = std::fs::read(a.join("last.safetensors")).unwrap();
    let wb = std::fs::read(b.join("last.safetensors")).unwrap();
    assert!(
        wa == wb,
        "weights differ after an interrupted and resumed run"
    );
}
