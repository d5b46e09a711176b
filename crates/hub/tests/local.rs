//! The built-in registry (offline), local-folder registries, export, list/info/rm, load.

mod common;

use common::{files_under, opts, sha, weights};
use mlfw_hub::{export, info, list, load_weights_with, pull, rm, ExportOptions, WeightsChoice};

#[test]
fn builtin_lenet5_loads_offline_into_a_fresh_home() {
    let home = tempfile::tempdir().unwrap();
    let o = opts(home.path()).offline(true);
    let p = load_weights_with("lenet5", &o, &mlfw_core::Device::Cpu).unwrap();
    assert_eq!(p.entry.architecture.model, "lenet5");
    assert_eq!(p.preprocessing.mean, vec![0.1307]);
    assert_eq!(p.state_dict["conv1.weight"].dims(), &[6, 1, 5, 5]);
    assert_eq!(p.state_dict["fc3.weight"].dims(), &[10, 84]);
    assert!(p
        .weights_path
        .starts_with(home.path().join("hub").join("lenet5")));
    // A second load uses the cache.
    let again = pull("lenet5", &o).unwrap();
    assert!(again.fetched.is_empty());
}

/// A run folder like `mlfw train` writes.
fn run_dir(dir: &std::path::Path) {
    std::fs::write(dir.join("best.safetensors"), weights()).unwrap();
    std::fs::write(
        dir.join("config.json"),
        r#"{"model": "lenet5", "num_classes": 10, "dataset": "mnist-mini", "epochs": 10,
            "command": ["mlfw", "train", "--model", "lenet5", "--dataset", "mnist-mini"]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("metrics.jsonl"),
        "{\"epoch\": 1, \"train_acc\": 0.99, \"val_acc\": 0.95}\n{\"epoch\": 2, \"train_acc\": 0.99, \"val_acc\": 97.5}\n{\"epoch\": 3, \"train_acc\": 0.99, \"val_acc\": 0.96}\n",
    )
    .unwrap();
}

#[test]
fn export_then_pull_from_a_local_folder() {
    let run = tempfile::tempdir().unwrap();
    run_dir(run.path());
    let out = tempfile::tempdir().unwrap();
    let done = export(run.path(), "mylenet", out.path(), &ExportOptions::default()).unwrap();
    assert_eq!(done.entry.files[0].name, "mylenet-mnist-mini.safetensors");
    assert_eq!(done.entry.files[0].sha256, sha(&weights()));
    assert_eq!(done.entry.metrics[0].accuracy, 0.975);
    assert_eq!(
        done.entry.train_command.as_deref(),
        Some("mlfw train --model lenet5 --dataset mnist-mini")
    );
    // A second version merges into the same index.
    let v2 = ExportOptions {
        version: "2".into(),
        weights: WeightsChoice::Last,
        file_name: Some("mylenet-v2.safetensors".into()),
        ..Default::default()
    };
    let e2 = export(run.path(), "mylenet", out.path(), &v2).unwrap();
    assert_eq!(e2.entry.metrics[0].accuracy, 0.96);
    let index = mlfw_hub::Index::parse(
        &std::fs::read_to_string(out.path().join("index.json")).unwrap(),
        "i",
    )
    .unwrap();
    assert_eq!(index.models.len(), 2);

    let home = tempfile::tempdir().unwrap();
    let o = opts(home.path()).registry(out.path().display().to_string());
    let p = pull("mylenet", &o).unwrap();
    assert_eq!(p.model.entry.version, "2", "newest version by default");
    let p1 = pull("mylenet@1", &o).unwrap();
    assert_eq!(p1.model.entry.version, "1");

    let listing = list(&o).unwrap();
    let ids: Vec<String> = listing
        .models
        .iter()
        .map(|m| format!("{}@{}", m.name, m.version))
        .collect();
    assert_eq!(ids, vec!["lenet5@1", "mylenet@1", "mylenet@2"]);
    assert!(listing.warnings.is_empty());
    let m1 = &listing.models[1];
    assert!(m1.cached.is_some() && m1.in_registry);
    assert_eq!(m1.sha256, sha(&weights()));
    assert_eq!(m1.accuracy.as_ref().unwrap().accuracy, 0.975);
    assert!(listing.models[0].cached.is_none());

    let i = info("mylenet", &o).unwrap();
    assert_eq!(i.entry.version, "2");
    assert!(i.cached.is_some());

    let removed = rm("mylenet@2", &o).unwrap();
    assert_eq!(removed.len(), 1);
    assert!(rm("mylenet@2", &o).is_err());
    let removed = rm("mylenet", &o).unwrap();
    assert_eq!(removed.len(), 1);
    assert!(!home.path().join("hub").join("mylenet").exists());
    // Cached models stay listed (and `info` works) when the registry is gone.
    pull("mylenet@1", &o).unwrap();
    drop(out);
    let listing = list(&o).unwrap();
    assert_eq!(listing.warnings.len(), 1, "{:?}", listing.warnings);
    assert!(listing
        .models
        .iter()
        .any(|m| m.name == "mylenet" && !m.in_registry));
    assert!(!info("mylenet", &o).unwrap().in_registry);
}

#[test]
fn export_errors_are_clear() {
    let run = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let e = export(run.path(), "x", out.path(), &ExportOptions::default()).unwrap_err();
    assert!(e.to_string().contains("config.json"), "{e}");
    run_dir(run.path());
    std::fs::write(run.path().join("config.json"), r#"{"model": "lenet5"}"#).unwrap();
    let e = export(run.path(), "x", out.path(), &ExportOptions::default()).unwrap_err();
    assert!(e.to_string().contains("num_classes"), "{e}");
    run_dir(run.path());
    let e = export(run.path(), "../x", out.path(), &ExportOptions::default()).unwrap_err();
    assert!(e.to_string().contains("../x"), "{e}");
    std::fs::write(run.path().join("best.safetensors"), b"not safetensors").unwrap();
    let e = export(run.path(), "x", out.path(), &ExportOptions::default()).unwrap_err();
    assert!(e.to_string().contains("best.safetensors"), "{e}");
    assert!(files_under(out.path()).is_empty());
}

#[test]
fn corrupted_cache_is_detected() {
    let home = tempfile::tempdir().unwrap();
    let o = opts(home.path());
    let p = pull("lenet5", &o).unwrap();
    let w = p.model.weights_path().unwrap();
    let mut bytes = std::fs::read(&w).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&w, &bytes).unwrap();
    let e = load_weights_with("lenet5", &o, &mlfw_core::Device::Cpu).unwrap_err();
    assert!(e.to_string().contains("checksum mismatch"), "{e}");
    // Pulling again repairs it.
    let again = pull("lenet5", &o).unwrap();
    assert_eq!(again.fetched.len(), 1);
    load_weights_with("lenet5", &o, &mlfw_core::Device::Cpu).unwrap();
}
