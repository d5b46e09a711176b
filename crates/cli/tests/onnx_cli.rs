//! `mlfw eval` and `mlfw predict` with `--model path.onnx`: PyTorch's ONNX export of the
//! trained LeNet-5 scores as its safetensors weights do.

mod common;

use std::path::{Path, PathBuf};

use common::{fails, ok};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn accuracy(out: &str) -> f64 {
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    v["accuracy"].as_f64().unwrap()
}

#[test]
fn eval_and_predict_an_onnx_file() {
    let onnx = fixtures().join("onnx/lenet5.onnx");
    let onnx = onnx.to_str().unwrap();
    let w = fixtures().join("torch-ref/lenet5_mnist_mini.safetensors");
    let from_onnx = ok(&["eval", "--model", onnx, "--dataset", "mnist-mini", "--json"]);
    let from_weights = ok(&["eval", "--weights", w.to_str().unwrap(), "--json"]);
    assert_eq!(accuracy(&from_onnx), accuracy(&from_weights));
    assert!(accuracy(&from_onnx) > 0.9, "{from_onnx}");

    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("blank.png");
    image::GrayImage::new(28, 28).save(&img).unwrap();
    let img = img.to_str().unwrap();
    let a = ok(&["predict", "--model", onnx, "--json", img]);
    let b = ok(&["predict", "--weights", w.to_str().unwrap(), "--json", img]);
    let top = |s: &str| {
        let v: serde_json::Value = serde_json::from_str(s.trim()).unwrap();
        v["top"][0]["class"].as_i64().unwrap()
    };
    assert_eq!(top(&a), top(&b));

    let err = fails(&["eval", "--model", onnx, "--pretrained"]);
    assert!(err.contains("holds its own weights"), "{err}");
    let err = fails(&["eval", "--model", "lenet5"]);
    assert!(err.contains("--weights"), "{err}");
    let bad = tmp.path().join("bad.onnx");
    std::fs::write(&bad, b"\x0a\xff\xff\xff\x0fnot onnx").unwrap();
    let err = fails(&["eval", "--model", bad.to_str().unwrap()]);
    assert!(err.contains("bad.onnx"), "{err}");
}

#[test]
fn export_writes_an_onnx_file_that_evaluates_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("lenet5.onnx");
    let w = fixtures().join("torch-ref/lenet5_mnist_mini.safetensors");
    let w = w.to_str().unwrap();
    let msg = ok(&[
        "export",
        "--model",
        "lenet5",
        "--weights",
        w,
        "--format",
        "onnx",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        msg.contains("opset 17") && msg.contains("[N, 1, 28, 28]"),
        "{msg}"
    );
    let a = ok(&["eval", "--model", out.to_str().unwrap(), "--json"]);
    let b = ok(&["eval", "--weights", w, "--json"]);
    assert_eq!(accuracy(&a), accuracy(&b));
    let err = fails(&[
        "export",
        "--weights",
        w,
        "--format",
        "tflite",
        "-o",
        "x.tflite",
    ]);
    assert!(err.contains("supported: onnx"), "{err}");
    let err = fails(&[
        "export",
        "--model",
        "mlp",
        "--weights",
        w,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(err.contains("fc1"), "{err}");
}
