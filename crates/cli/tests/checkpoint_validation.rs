//! A checkpoint or config.json that disagrees with itself, the model or the run is refused on
//! `--resume`, with a message naming the field; nothing is silently dropped or defaulted.

mod common;

use std::path::{Path, PathBuf};

use common::{fails, ok, strs, train_args};
use mlfw_core::{safetensors, Device};
use serde_json::Value;

/// A finished 1-epoch run (SGD with momentum 0.9) of 4 steps per epoch, with `extra` flags.
fn finished_run(tmp: &Path, extra: &[&str]) -> PathBuf {
    let run = tmp.join("run");
    ok(&strs(&train_args(&run, "1", "4", extra)));
    run
}

/// Rewrites the run's checkpoint: `edit` gets its tensors and its `mlfw.checkpoint` metadata.
fn edit_checkpoint(
    run: &Path,
    edit: impl FnOnce(&mut Vec<(String, mlfw_core::Tensor)>, &mut Value),
) {
    let path = run.join("checkpoint.safetensors");
    let mut f = safetensors::load(&path, &Device::Cpu).unwrap();
    let mut meta: Value = serde_json::from_str(&f.metadata["mlfw.checkpoint"]).unwrap();
    edit(&mut f.tensors, &mut meta);
    f.metadata
        .insert("mlfw.checkpoint".into(), meta.to_string());
    safetensors::save(&path, &f.tensors, Some(f.metadata)).unwrap();
}

/// The optimizer's JSON state inside the checkpoint metadata, edited by `edit`.
fn edit_optimizer_json(meta: &mut Value, edit: impl FnOnce(&mut Value)) {
    let mut doc: Value = serde_json::from_str(meta["optimizer"].as_str().unwrap()).unwrap();
    edit(&mut doc);
    meta["optimizer"] = Value::String(doc.to_string());
}

fn resume(run: &Path) -> String {
    fails(&["train", "--resume", run.to_str().unwrap(), "--epochs", "2"])
}

/// The error of resuming a finished run whose checkpoint `edit` changed.
fn resume_edited(edit: impl FnOnce(&mut Vec<(String, mlfw_core::Tensor)>, &mut Value)) -> String {
    let tmp = tempfile::tempdir().unwrap();
    let run = finished_run(tmp.path(), &[]);
    edit_checkpoint(&run, edit);
    resume(&run)
}

#[test]
fn emptied_optimizer_state_is_refused() {
    let err = resume_edited(|tensors, meta| {
        tensors.retain(|(n, _)| !n.starts_with("optim."));
        edit_optimizer_json(meta, |d| d["state"] = serde_json::json!({}));
    });
    assert!(
        err.contains("optimizer.state.0") && err.contains("conv1.weight") && err.contains("lost"),
        "{err}"
    );
}

#[test]
fn missing_momentum_buffers_are_refused() {
    let err = resume_edited(|tensors, _| {
        tensors.retain(|(n, _)| n != "optim.state.3.momentum_buffer");
    });
    assert!(err.contains("state.3.momentum_buffer"), "{err}");
}

#[test]
fn unexpected_optimizer_tensors_are_refused() {
    let err = resume_edited(|tensors, _| {
        let t = tensors[0].1.clone();
        tensors.push(("optim.state.0.stray".into(), t));
    });
    assert!(
        err.contains("state.0.stray") && err.contains("unexpected"),
        "{err}"
    );
}

#[test]
fn a_step_past_the_epoch_is_refused() {
    let err = resume_edited(|_, meta| {
        meta["progress"]["step"] = 9.into();
        meta["progress"]["global_step"] = 13.into();
    });
    assert!(
        err.contains("progress.step") && err.contains("4 steps"),
        "{err}"
    );
}

#[test]
fn config_fields_out_of_range_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = finished_run(tmp.path(), &[]);
    let cfg_path = run.join("config.json");
    let good: Value = serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    for (field, value) in [
        ("batch_size", Value::from(0)),
        ("epochs", Value::from(0)),
        ("lr", Value::from(-1.0)),
        ("max_steps", Value::from(0)),
        ("momentum", Value::from(1.5)),
        ("std", serde_json::json!([0.0])),
    ] {
        let mut cfg = good.clone();
        cfg[field] = value;
        std::fs::write(&cfg_path, cfg.to_string()).unwrap();
        let err = fails(&["train", "--resume", run.to_str().unwrap()]);
        assert!(
            err.contains(&format!("`{field}`")) && err.contains("config.json"),
            "{field}: {err}"
        );
    }
}

#[test]
fn max_steps_0_is_refused_naming_the_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("fresh");
    let err = fails(&["train", "--max-steps", "0", "--out", out.to_str().unwrap()]);
    assert!(err.contains("--max-steps"), "{err}");
    assert!(!out.exists(), "a refused run created its folder");
    let run = finished_run(tmp.path(), &[]);
    let err = fails(&[
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--max-steps",
        "0",
    ]);
    assert!(err.contains("--max-steps"), "{err}");
}

#[test]
fn a_schedule_out_of_step_with_the_progress_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let run = finished_run(tmp.path(), &["--scheduler", "onecycle"]);
    ok(&[
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--epochs",
        "2",
        "--quiet",
    ]);
    edit_checkpoint(&run, |_, meta| {
        let mut s: Value = serde_json::from_str(meta["scheduler"].as_str().unwrap()).unwrap();
        s["last_epoch"] = 3.into();
        meta["scheduler"] = Value::String(s.to_string());
    });
    let err = fails(&["train", "--resume", run.to_str().unwrap(), "--epochs", "3"]);
    assert!(
        err.contains("scheduler.last_epoch") && err.contains("progress.global_step is 8"),
        "{err}"
    );
}
