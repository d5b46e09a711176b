//! Running the `mlfw` binary from a test: each test thread gets its own temporary
//! `MLFW_HOME`, so no test reads or changes the user's cache or another test's state.

#![allow(dead_code)]

use std::process::{Command, Output};

thread_local! {
    static HOME: tempfile::TempDir = tempfile::tempdir().expect("temporary MLFW_HOME");
}

/// `mlfw` with this test's own temporary `MLFW_HOME`.
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mlfw"));
    HOME.with(|h| c.env("MLFW_HOME", h.path()));
    c
}

/// `mlfw` run under an address-space limit of `bytes` (`prlimit --as`), so that a reader that
/// believed a header and reserved its claim would fail to allocate and abort.
pub fn limited(bytes: u64) -> Command {
    let mut c = Command::new("prlimit");
    c.arg(format!("--as={bytes}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_mlfw"));
    HOME.with(|h| c.env("MLFW_HOME", h.path()));
    c
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts `o` is a clean failure (non-zero exit, not a signal, an `error:` line, no panic)
/// and returns its stderr.
pub fn clean_failure(o: &Output) -> String {
    let err = stderr(o);
    assert!(!o.status.success(), "should fail; stderr:\n{err}");
    assert!(o.status.code().is_some(), "killed by a signal: {err}");
    assert!(err.contains("error:"), "no error line: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    err
}

/// Runs `mlfw args`, asserting a clean failure; returns stderr.
pub fn fails(args: &[&str]) -> String {
    clean_failure(&command().args(args).output().expect("run mlfw"))
}

/// Runs `mlfw args`, asserting success; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let o = command().args(args).output().expect("run mlfw");
    assert!(o.status.success(), "mlfw {args:?} failed:\n{}", stderr(&o));
    stdout(&o)
}

/// Arguments of a quiet LeNet-5 run on mnist-mini into `out`: `epochs` epochs of at most
/// `max_steps` steps on one worker, then `extra`.
pub fn train_args(
    out: &std::path::Path,
    epochs: &str,
    max_steps: &str,
    extra: &[&str],
) -> Vec<String> {
    let mut v: Vec<String> = [
        "train",
        "--epochs",
        epochs,
        "--max-steps",
        max_steps,
        "--workers",
        "1",
        "--quiet",
        "--out",
        out.to_str().expect("UTF-8 path"),
    ]
    .map(String::from)
    .to_vec();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// `args` as `&str`s.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
