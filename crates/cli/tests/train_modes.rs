//! `mlfw train --amp` (bf16 and f16 runs train, f16 checkpoints carry the loss scaler and
//! resume bit-identically, bad values are refused) and `--distributed` outside mpirun.

mod common;
use common::{fails, ok, strs, train_args};

#[test]
fn bf16_and_f16_runs_train_and_learn() {
    let tmp = tempfile::tempdir().unwrap();
    for amp in ["bf16", "f16"] {
        let out = tmp.path().join(amp);
        let s = ok(&strs(&train_args(
            &out,
            "1",
            "60",
            &["--amp", amp, "--json"],
        )));
        let v: serde_json::Value = serde_json::from_str(s.trim()).unwrap();
        let acc = v["accuracy"].as_f64().unwrap();
        assert!(acc > 0.5, "{amp}: accuracy {acc} after 60 steps");
        let cfg = std::fs::read_to_string(out.join("config.json")).unwrap();
        assert!(cfg.contains(&format!("\"amp\": \"{amp}\"")), "{cfg}");
    }
    let ckpt = std::fs::read(tmp.path().join("f16/checkpoint.safetensors")).unwrap();
    let text = String::from_utf8_lossy(&ckpt[..ckpt.len().min(8192)]);
    assert!(
        text.contains("growth_tracker"),
        "the f16 checkpoint holds the scaler"
    );
}

#[test]
fn an_f16_run_resumes_bit_identically() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(&strs(&train_args(&a, "2", "20", &["--amp", "f16"])));
    ok(&strs(&train_args(&b, "1", "20", &["--amp", "f16"])));
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
    assert!(wa == wb, "weights differ after a resumed f16 run");
}

#[test]
fn unknown_amp_values_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let err = fails(&strs(&train_args(
        &tmp.path().join("x"),
        "1",
        "1",
        &["--amp", "fp8"],
    )));
    assert!(err.contains("valid values: none, bf16, f16"), "{err}");
    assert!(!tmp.path().join("x").exists(), "nothing written");
}

#[test]
fn distributed_without_mpirun_is_one_rank() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("d");
    ok(&strs(&train_args(&out, "1", "5", &["--distributed"])));
    let cfg = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(
        cfg.contains("\"distributed\": true") && cfg.contains("\"world_size\": 1"),
        "{cfg}"
    );
}
