//! The hub trusts only what it checked: a file's declared size is enforced while streaming,
//! the index's metadata must fit the weights, and a failed pull leaves nothing in the cache.

mod common;

use std::time::{Duration, Instant};

use common::{files_under, lenet_index, opts, weights, Route, TestServer};
use mlfw_hub::pull;
use serde_json::Value;

/// Serves `/reg/index.json` (the standard one-model index, edited by `edit`) and the weights
/// by `route`; pulls `m` into a fresh home and returns the error, after checking that nothing
/// of the failed pull stayed in the cache.
fn failed_pull(route: Route, edit: impl FnOnce(&mut Value)) -> String {
    let w = weights();
    let mut index: Value = serde_json::from_str(&lenet_index(&w, w.len())).unwrap();
    edit(&mut index["models"][0]);
    let server = TestServer::start(vec![
        (
            "/reg/index.json",
            Route::File(index.to_string().into_bytes()),
        ),
        ("/reg/m.safetensors", route),
    ]);
    let home = tempfile::tempdir().unwrap();
    let o = opts(home.path()).registry(server.url("/reg/index.json"));
    let e = pull("m", &o).unwrap_err().to_string();
    let left: Vec<_> = files_under(&home.path().join("hub"))
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("lock"))
        .collect();
    assert!(left.is_empty(), "left in the cache: {left:?} after: {e}");
    assert!(!home.path().join("hub").join("m").exists(), "{e}");
    e
}

#[test]
fn a_body_past_the_declared_size_is_cut_at_the_first_extra_byte() {
    let start = Instant::now();
    let e = failed_pull(
        Route::Endless {
            body: weights(),
            total: 1 << 34,
        },
        |_| {},
    );
    assert!(
        e.contains(&format!("but {} bytes were declared", weights().len())),
        "{e}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "the 16 GiB body was downloaded"
    );
}

#[test]
fn a_declared_size_that_disagrees_with_the_server_is_refused_up_front() {
    for delta in [-1i64, 1] {
        let e = failed_pull(Route::File(weights()), |m| {
            let size = weights().len() as i64 + delta;
            m["files"][0]["size"] = size.into();
        });
        assert!(e.contains("bytes were declared"), "{e}");
        assert!(!e.contains("changed while pulling"), "{e}");
    }
}

#[test]
fn metadata_that_does_not_fit_the_weights_is_refused() {
    let e = failed_pull(Route::File(weights()), |m| {
        m["architecture"]["num_classes"] = 7.into();
    });
    assert!(e.contains("num_classes 7") && e.contains("fc3"), "{e}");

    let e = failed_pull(Route::File(weights()), |m| {
        m["architecture"]["input_shape"] = serde_json::json!([1, 40, 40]);
        m["preprocessing"]["size"] = serde_json::json!([40, 40]);
    });
    assert!(
        e.contains("architecture.input_shape") && e.contains("[1, 40, 40]"),
        "{e}"
    );

    let e = failed_pull(Route::File(weights()), |m| {
        m["architecture"]["input_shape"] = serde_json::json!([3, 28, 28]);
        m["preprocessing"]["mean"] = serde_json::json!([0.5]);
    });
    assert!(
        e.contains("3 input channels") && e.contains("conv1.weight"),
        "{e}"
    );

    let e = failed_pull(Route::File(weights()), |m| {
        m["preprocessing"]["size"] = serde_json::json!([32, 32]);
    });
    assert!(e.contains("preprocessing.size"), "{e}");
}

#[test]
fn a_local_registry_file_of_the_wrong_size_is_refused() {
    let reg = tempfile::tempdir().unwrap();
    let w = weights();
    let index = lenet_index(&w, w.len() + 5);
    std::fs::write(reg.path().join("index.json"), index).unwrap();
    std::fs::write(reg.path().join("m.safetensors"), &w).unwrap();
    let home = tempfile::tempdir().unwrap();
    let o = opts(home.path()).registry(reg.path().to_str().unwrap());
    let e = pull("m", &o).unwrap_err().to_string();
    assert!(
        e.contains("files[].size") && e.contains(&format!("{} bytes", w.len())),
        "{e}"
    );
    assert!(!home.path().join("hub").join("m").exists());
}

#[test]
fn an_endless_index_is_cut_at_the_document_limit() {
    let server = TestServer::start(vec![(
        "/reg/index.json",
        Route::Endless {
            body: b"{\"format_version\": 1, \"models\": [".to_vec(),
            total: 1 << 34,
        },
    )]);
    let home = tempfile::tempdir().unwrap();
    let o = opts(home.path()).registry(server.url("/reg/index.json"));
    let e = pull("m", &o).unwrap_err().to_string();
    assert!(e.contains("limited to 16777216 bytes"), "{e}");
    assert!(files_under(&home.path().join("hub").join(".tmp")).is_empty());
}
