//! Pulling from an HTTP registry served on 127.0.0.1 by the test.

mod common;

use common::{files_under, index_json, opts, sha, weights, Route, TestServer};
use mlfw_hub::{pull, Error};

/// A server with `/reg/index.json` listing model `m` whose file is served by `file_route`.
fn registry(file_route: Route, digest: Option<String>) -> (TestServer, String) {
    let w = weights();
    let index = index_json(
        "m",
        "lenet5",
        "m.safetensors",
        "m.safetensors",
        &digest.unwrap_or_else(|| sha(&w)),
        w.len(),
    );
    let server = TestServer::start(vec![
        ("/reg/index.json", Route::File(index.into_bytes())),
        ("/reg/m.safetensors", file_route),
    ]);
    let url = server.url("/reg/index.json");
    (server, url)
}

#[test]
fn pull_ok_then_cached_then_forced() {
    let home = tempfile::tempdir().unwrap();
    let (server, url) = registry(Route::File(weights()), None);
    let o = opts(home.path()).registry(&url);
    let p = pull("m", &o).unwrap();
    assert_eq!(p.fetched, vec!["m.safetensors".to_string()]);
    let dir = home.path().join("hub").join("m").join("1");
    assert_eq!(p.model.dir, dir);
    assert_eq!(std::fs::read(dir.join("m.safetensors")).unwrap(), weights());
    assert_eq!(p.model.source, url);
    assert_eq!(
        p.model.entry.files[0].url,
        server.url("/reg/m.safetensors"),
        "the manifest records where the file came from"
    );
    p.model.verify().unwrap();

    let again = pull("m@1", &o).unwrap();
    assert!(again.fetched.is_empty(), "a verified cached copy is kept");
    let gets = |s: &TestServer| {
        s.seen()
            .iter()
            .filter(|r| r.path.ends_with(".safetensors"))
            .count()
    };
    assert_eq!(gets(&server), 1);

    let forced = pull("m", &o.clone().force(true)).unwrap();
    assert_eq!(forced.fetched.len(), 1);
    assert_eq!(gets(&server), 2);
    // No stray .part or temp files.
    let files = files_under(&dir);
    assert_eq!(files.len(), 2, "{files:?}");
}

#[test]
fn checksum_mismatch_leaves_nothing_cached() {
    let home = tempfile::tempdir().unwrap();
    let (_server, url) = registry(Route::File(weights()), Some("ab".repeat(32)));
    let e = pull("m", &opts(home.path()).registry(&url)).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("checksum mismatch") && msg.contains("/reg/m.safetensors"),
        "{msg}"
    );
    assert!(
        !home.path().join("hub").join("m").exists(),
        "{:?}",
        files_under(home.path())
    );
}

#[test]
fn cut_connection_resumes_to_a_verified_file() {
    let home = tempfile::tempdir().unwrap();
    let w = weights();
    let (server, url) = registry(
        Route::CutOff {
            body: w.clone(),
            cut_at: w.len() / 3,
            times: 1,
        },
        None,
    );
    let p = pull("m", &opts(home.path()).registry(&url)).unwrap();
    assert_eq!(std::fs::read(p.model.weights_path().unwrap()).unwrap(), w);
    let ranges: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.path == "/reg/m.safetensors")
        .map(|s| s.range)
        .collect();
    assert_eq!(ranges.len(), 2);
    assert_eq!(
        ranges[1].as_deref(),
        Some(format!("bytes={}-", w.len() / 3).as_str())
    );
}

#[test]
fn http_errors_name_url_and_status() {
    for code in [404u16, 500] {
        let home = tempfile::tempdir().unwrap();
        let (server, url) = registry(Route::Status(code), None);
        let msg = pull("m", &opts(home.path()).registry(&url))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains(&server.url("/reg/m.safetensors")) && msg.contains(&code.to_string()),
            "{msg}"
        );
        assert!(!home.path().join("hub").join("m").exists());
    }
    // An unreachable index: the error names the index URL and status.
    let home = tempfile::tempdir().unwrap();
    let server = TestServer::start(vec![("/reg/index.json", Route::Status(500))]);
    let url = server.url("/reg/index.json");
    let msg = pull("m", &opts(home.path()).registry(&url))
        .unwrap_err()
        .to_string();
    assert!(msg.contains(&url) && msg.contains("500"), "{msg}");
}

#[test]
fn malformed_index_names_the_field() {
    let home = tempfile::tempdir().unwrap();
    let w = weights();
    let bad = index_json(
        "m",
        "lenet5",
        "m.safetensors",
        "m.safetensors",
        &sha(&w),
        w.len(),
    )
    .replace("\"num_classes\":10", "\"num_classes\":\"ten\"");
    let server = TestServer::start(vec![("/index.json", Route::File(bad.into_bytes()))]);
    let url = server.url("/index.json");
    let msg = pull("m", &opts(home.path()).registry(&url))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("models[0].architecture.num_classes") && msg.contains(&url),
        "{msg}"
    );
}

#[test]
fn unsafe_file_names_are_rejected() {
    let w = weights();
    for name in [
        "../evil.safetensors",
        "/tmp/evil.safetensors",
        "a/b.safetensors",
        "a\\b.safetensors",
        "evil.sh",
    ] {
        let home = tempfile::tempdir().unwrap();
        let index = index_json("m", "lenet5", name, "m.safetensors", &sha(&w), w.len());
        let server = TestServer::start(vec![
            ("/index.json", Route::File(index.into_bytes())),
            ("/m.safetensors", Route::File(w.clone())),
        ]);
        let msg = pull("m", &opts(home.path()).registry(server.url("/index.json")))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("models[0].files[0].name"), "{name}: {msg}");
        assert!(files_under(home.path())
            .iter()
            .all(|p| !p.ends_with("evil.safetensors")));
        assert!(server.seen().iter().all(|s| s.path != "/m.safetensors"));
    }
}

#[test]
fn unknown_architecture_is_a_clear_error_before_any_download() {
    let home = tempfile::tempdir().unwrap();
    let w = weights();
    let index = index_json(
        "m",
        "transformer9000",
        "m.safetensors",
        "m.safetensors",
        &sha(&w),
        w.len(),
    );
    let server = TestServer::start(vec![
        ("/index.json", Route::File(index.into_bytes())),
        ("/m.safetensors", Route::File(w)),
    ]);
    let e = pull("m", &opts(home.path()).registry(server.url("/index.json"))).unwrap_err();
    assert!(matches!(e, Error::UnknownArchitecture { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("transformer9000") && msg.contains("lenet5"),
        "{msg}"
    );
    assert!(server.seen().iter().all(|s| s.path != "/m.safetensors"));
}

#[test]
fn offline_with_empty_cache_is_a_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let (server, url) = registry(Route::File(weights()), None);
    let o = opts(home.path()).registry(&url).offline(true);
    let e = pull("m", &o).unwrap_err();
    assert!(matches!(e, Error::NotCached { .. }), "{e}");
    assert!(e.to_string().contains("offline"), "{e}");
    assert!(server.seen().is_empty(), "offline mode made a request");
    // Once pulled, offline mode finds it without the network.
    pull("m", &opts(home.path()).registry(&url)).unwrap();
    let n = server.seen().len();
    let p = pull("m", &o).unwrap();
    assert!(p.fetched.is_empty());
    assert_eq!(server.seen().len(), n);
}

#[test]
fn not_found_lists_what_exists() {
    let home = tempfile::tempdir().unwrap();
    let (_server, url) = registry(Route::File(weights()), None);
    let msg = pull("nosuch", &opts(home.path()).registry(&url))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("nosuch") && msg.contains("m@1") && msg.contains("lenet5@1"),
        "{msg}"
    );
}

#[test]
fn concurrent_pulls_give_one_verified_file() {
    let home = tempfile::tempdir().unwrap();
    let w = weights();
    let (server, url) = registry(
        Route::Slow {
            body: w.clone(),
            chunk: 16 * 1024,
            pause_ms: 5,
        },
        None,
    );
    let o = opts(home.path()).registry(&url);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let o = o.clone();
            std::thread::spawn(move || pull("m", &o))
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let fetched: usize = results
        .iter()
        .map(|r| r.as_ref().unwrap().fetched.len())
        .sum();
    assert_eq!(
        fetched, 1,
        "exactly one pull downloads; the others find it cached"
    );
    let dir = home.path().join("hub").join("m").join("1");
    assert_eq!(std::fs::read(dir.join("m.safetensors")).unwrap(), w);
    assert_eq!(files_under(&dir).len(), 2, "{:?}", files_under(&dir));
    let gets = server
        .seen()
        .iter()
        .filter(|s| s.path == "/reg/m.safetensors")
        .count();
    assert_eq!(gets, 1);
}
