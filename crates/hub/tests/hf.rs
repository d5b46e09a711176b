//! `hf://owner/repo[@rev]` registries, resolved against a loopback endpoint.

mod common;

use common::{index_json, opts, sha, weights, Route, TestServer};
use mlfw_hub::{pull, Source};

#[test]
fn hf_repo_with_an_mlfw_index() {
    let home = tempfile::tempdir().unwrap();
    let w = weights();
    let index = index_json(
        "lenet-hf",
        "lenet5",
        "w.safetensors",
        "w.safetensors",
        &sha(&w),
        w.len(),
    );
    let server = TestServer::start(vec![
        (
            "/me/lenet/resolve/v2/index.json",
            Route::File(index.into_bytes()),
        ),
        ("/me/lenet/resolve/v2/w.safetensors", Route::File(w.clone())),
    ]);
    let o = opts(home.path())
        .registry("hf://me/lenet@v2")
        .hf_endpoint(server.url(""));
    let p = pull("lenet-hf", &o).unwrap();
    assert_eq!(p.model.source, "hf://me/lenet@v2");
    assert_eq!(std::fs::read(p.model.weights_path().unwrap()).unwrap(), w);
    // The registry address alone names its single model too.
    let home2 = tempfile::tempdir().unwrap();
    let p2 = pull(
        "hf://me/lenet@v2",
        &opts(home2.path()).hf_endpoint(server.url("")),
    )
    .unwrap();
    assert_eq!(p2.model.entry.name, "lenet-hf");
}

#[test]
fn hf_repo_without_index_uses_config_and_model_safetensors() {
    let home = tempfile::tempdir().unwrap();
    let w = weights();
    let config = r#"{"model": "lenet5", "num_classes": 10, "dataset": "mnist-mini", "command": "mlfw train --model lenet5"}"#;
    let api = serde_json::json!({
        "id": "me/LeNet",
        "siblings": [
            {"rfilename": "config.json", "size": config.len()},
            {"rfilename": "model.safetensors", "size": w.len(), "lfs": {"sha256": sha(&w), "size": w.len()}}
        ]
    })
    .to_string();
    let server = TestServer::start(vec![
        (
            "/me/LeNet/resolve/main/config.json",
            Route::File(config.as_bytes().to_vec()),
        ),
        (
            "/me/LeNet/resolve/main/model.safetensors",
            Route::File(w.clone()),
        ),
        (
            "/api/models/me/LeNet/revision/main?blobs=true",
            Route::File(api.into_bytes()),
        ),
    ]);
    let o = opts(home.path()).hf_endpoint(server.url(""));
    let p = pull("hf://me/LeNet", &o).unwrap();
    let e = &p.model.entry;
    assert_eq!((e.name.as_str(), e.version.as_str()), ("lenet", "main"));
    assert_eq!(e.architecture.input_shape, vec![1, 28, 28]);
    assert_eq!(
        e.train_command.as_deref(),
        Some("mlfw train --model lenet5")
    );
    assert_eq!(
        e.files[0].url,
        server.url("/me/LeNet/resolve/main/model.safetensors")
    );
    assert_eq!(std::fs::read(p.model.weights_path().unwrap()).unwrap(), w);
}

#[test]
fn hf_repo_without_anything_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let server = TestServer::start(vec![]);
    let o = opts(home.path()).hf_endpoint(server.url(""));
    let msg = pull("hf://me/empty", &o).unwrap_err().to_string();
    assert!(
        msg.contains("hf://me/empty") && msg.contains("config.json") && msg.contains("404"),
        "{msg}"
    );
}

#[test]
fn hf_source_parsing() {
    assert_eq!(
        Source::parse("hf://owner/repo@refs/pr/1").unwrap(),
        Source::HuggingFace {
            repo: "owner/repo".into(),
            revision: "refs/pr/1".into()
        }
    );
    assert_eq!(
        mlfw_hub::source::hf_file_url(
            mlfw_hub::source::HF_ENDPOINT,
            "owner/repo",
            "main",
            "model.safetensors"
        ),
        "https://huggingface.co/owner/repo/resolve/main/model.safetensors"
    );
}
