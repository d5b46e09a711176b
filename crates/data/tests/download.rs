//! Download behaviour against a loopback HTTP server: verify, mismatch, resume, mirrors, errors.

mod common;

use std::time::Duration;

use common::{bytes, files_under, Route, TestServer};
use mlfw_data::download::{
    download_file, md5_bytes, part_path, sha256_bytes, Checksum, DownloadOptions,
};
use mlfw_data::Error;

fn opts() -> DownloadOptions {
    DownloadOptions::quiet()
        .retries(0)
        .retry_delay(Duration::ZERO)
        .timeout(Duration::from_secs(10))
}

#[test]
fn downloads_and_verifies_sha256_and_md5() {
    let body = bytes(300_000, 1);
    let server = TestServer::start(vec![("/a.bin", Route::File(body.clone()))]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("nested").join("a.bin");
    let url = vec![server.url("/a.bin")];
    let got = download_file(&url, &dest, Checksum::sha256(sha256_bytes(&body)), &opts()).unwrap();
    assert_eq!(got, dest);
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert!(!part_path(&dest).exists());
    // Already present and verified: nothing is fetched again.
    download_file(&url, &dest, Checksum::md5(md5_bytes(&body)), &opts()).unwrap();
    assert_eq!(server.seen().len(), 1);
}

#[test]
fn checksum_mismatch_is_an_error_and_leaves_nothing() {
    let body = bytes(50_000, 2);
    let server = TestServer::start(vec![("/b.bin", Route::File(body))]);
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("MNIST").join("raw").join("b.bin");
    let wrong = Checksum::sha256(sha256_bytes(b"something else"));
    let e = download_file(&[server.url("/b.bin")], &dest, wrong, &opts()).unwrap_err();
    assert!(matches!(e, Error::Checksum { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&server.url("/b.bin")) && msg.contains("mismatch"),
        "{msg}"
    );
    assert!(
        files_under(root.path()).is_empty(),
        "left behind: {:?}",
        files_under(root.path())
    );
    assert!(
        !root.path().join("MNIST").exists(),
        "created folders left behind"
    );
}

#[test]
fn cut_connection_then_second_attempt_resumes_with_range() {
    let body = bytes(200_000, 3);
    let cut_at = 80_000;
    let server = TestServer::start(vec![(
        "/c.bin",
        Route::CutOff {
            body: body.clone(),
            cut_at,
            times: 1,
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("c.bin");
    let url = vec![server.url("/c.bin")];
    let sum = Checksum::sha256(sha256_bytes(&body));

    let e = download_file(&url, &dest, sum.clone(), &opts()).unwrap_err();
    assert!(matches!(e, Error::Network { .. }), "{e}");
    assert!(e.to_string().contains(&url[0]), "{e}");
    assert!(!dest.exists());
    let part_len = std::fs::metadata(part_path(&dest)).unwrap().len() as usize;
    assert!(
        part_len > 0 && part_len <= cut_at,
        "partial file of {part_len} bytes"
    );

    download_file(&url, &dest, sum, &opts()).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].range, None);
    assert_eq!(
        seen[1].range.as_deref(),
        Some(format!("bytes={part_len}-").as_str())
    );
    assert!(!part_path(&dest).exists());
}

#[test]
fn retries_within_one_call_resume_too() {
    let body = bytes(120_000, 4);
    let server = TestServer::start(vec![(
        "/d.bin",
        Route::CutOff {
            body: body.clone(),
            cut_at: 1000,
            times: 2,
        },
    )]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("d.bin");
    let o = opts().retries(2);
    download_file(
        &[server.url("/d.bin")],
        &dest,
        Checksum::md5(md5_bytes(&body)),
        &o,
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    assert!(seen[2].range.is_some());
}

#[test]
fn server_ignoring_range_restarts_from_zero() {
    let body = bytes(64_000, 5);
    let server = TestServer::start(vec![("/e.bin", Route::IgnoreRange(body.clone()))]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("e.bin");
    std::fs::write(part_path(&dest), &body[..1000]).unwrap();
    download_file(
        &[server.url("/e.bin")],
        &dest,
        Checksum::sha256(sha256_bytes(&body)),
        &opts(),
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert_eq!(server.seen()[0].range.as_deref(), Some("bytes=1000-"));
}

#[test]
fn first_mirror_404_falls_back_to_second() {
    let body = bytes(10_000, 6);
    let server = TestServer::start(vec![("/m2/f.bin", Route::File(body.clone()))]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f.bin");
    let urls = vec![server.url("/m1/f.bin"), server.url("/m2/f.bin")];
    download_file(&urls, &dest, Checksum::sha256(sha256_bytes(&body)), &opts()).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/m1/f.bin", "/m2/f.bin"]);
}

#[test]
fn http_500_names_url_and_status() {
    let server = TestServer::start(vec![("/g.bin", Route::Status(500))]);
    let dir = tempfile::tempdir().unwrap();
    let url = server.url("/g.bin");
    let e = download_file(
        std::slice::from_ref(&url),
        &dir.path().join("g.bin"),
        Checksum::None,
        &opts(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Http { status: 500, .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&url) && msg.contains("500"), "{msg}");
    assert!(files_under(dir.path()).is_empty());
}

#[test]
fn all_mirrors_failing_lists_each_error() {
    let server = TestServer::start(vec![
        ("/h1", Route::Status(404)),
        ("/h2", Route::Status(503)),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let urls = vec![server.url("/h1"), server.url("/h2")];
    let e = download_file(&urls, &dir.path().join("h"), Checksum::None, &opts()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::AllMirrorsFailed { .. }));
    assert!(
        msg.contains("404") && msg.contains("503") && msg.contains(&urls[1]),
        "{msg}"
    );
}

#[test]
fn stale_destination_is_replaced_atomically() {
    let body = bytes(5_000, 7);
    let server = TestServer::start(vec![("/i.bin", Route::File(body.clone()))]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("i.bin");
    std::fs::write(&dest, b"corrupt").unwrap();
    download_file(
        &[server.url("/i.bin")],
        &dest,
        Checksum::sha256(sha256_bytes(&body)),
        &opts(),
    )
    .unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
}

#[test]
fn plain_line_progress_does_not_break_the_download() {
    let body = bytes(100_000, 8);
    let server = TestServer::start(vec![("/j.bin", Route::File(body.clone()))]);
    let dir = tempfile::tempdir().unwrap();
    let o = opts().progress(mlfw_data::download::Progress::Lines);
    let dest = dir.path().join("j.bin");
    download_file(&[server.url("/j.bin")], &dest, Checksum::None, &o).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
}

/// A mirror that accepts connections and never answers is asked once (no retries of a request
/// that timed out before any response), and the download goes on to the next mirror.
#[test]
fn a_silent_mirror_is_not_retried() {
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}/c.bin", silent.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(s); // kept open, never answered
        }
    });
    let body = bytes(20_000, 7);
    let server = TestServer::start(vec![("/c.bin", Route::File(body.clone()))]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("c.bin");
    let o = opts().retries(2).timeout(Duration::from_millis(300));
    let urls = [silent_url, server.url("/c.bin")];
    download_file(&urls, &dest, Checksum::sha256(sha256_bytes(&body)), &o).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), body);
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the silent mirror was asked again"
    );
}
