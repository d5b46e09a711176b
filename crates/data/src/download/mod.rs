//! Verified, resumable, atomic HTTP downloads with mirror fallback.
//!
//! [`download_file`] is the one entry point (the hub ring reuses it): it tries each mirror in
//! turn, streams into `DEST.part` beside the destination, resumes a partial `.part` with an HTTP
//! `Range` request (restarting when the server ignores it), verifies the checksum, and only then
//! renames the file into place. A failed checksum leaves nothing behind.

mod checksum;
mod progress;

pub use checksum::{md5_bytes, md5_file, sha256_bytes, sha256_file, Checksum};
pub use progress::Progress;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::StatusCode;

use crate::error::{Error, Result};
use progress::Reporter;

/// Options for [`download_file`].
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// How to report progress on stderr (default [`Progress::Auto`]).
    pub progress: Progress,
    /// Longest wait for a connection, for the response to a request, or for any single read
    /// of the body (default 30 s). A server that sends no response in that time is not asked
    /// again: the download goes on to the next mirror.
    pub timeout: Duration,
    /// Extra attempts per mirror after a network error, each resuming the `.part` (default 2);
    /// not after a request that timed out before any response.
    pub retries: u32,
    /// Pause before each extra attempt (default 1 s).
    pub retry_delay: Duration,
    /// The `User-Agent` header sent.
    pub user_agent: String,
    /// The most bytes a download may have (default none); a longer body is cut off at the
    /// first byte past it and the download fails.
    pub max_bytes: Option<u64>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            progress: Progress::Auto,
            timeout: Duration::from_secs(30),
            retries: 2,
            retry_delay: Duration::from_secs(1),
            user_agent: format!("mlfw/{}", env!("CARGO_PKG_VERSION")),
            max_bytes: None,
        }
    }
}

impl DownloadOptions {
    /// Default options with no progress output.
    pub fn quiet() -> Self {
        DownloadOptions {
            progress: Progress::Quiet,
            ..Default::default()
        }
    }

    /// Sets how progress is reported.
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// Sets the connect/read timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the number of extra attempts per mirror after a network error.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets the most bytes a download may have.
    pub fn max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = Some(max);
        self
    }

    /// Sets the pause before each extra attempt.
    pub fn retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }
}

/// Downloads one file to `dest`, trying each URL of `urls` in order, and returns `dest`.
///
/// If `dest` already exists with the expected checksum nothing is fetched. Bytes go to
/// `DEST.part` (resumed with a `Range` request when a previous attempt was cut off), are
/// verified against `expected`, then renamed to `dest`. Network errors are retried per
/// [`DownloadOptions::retries`]; HTTP error statuses move on to the next mirror.
///
/// # Errors
/// Every mirror failed ([`Error::AllMirrorsFailed`] holding each URL's error, or that
/// error alone with a single URL): an HTTP status ([`Error::Http`]), a network error
/// ([`Error::Network`]), a checksum mismatch ([`Error::Checksum`], after which no file is left),
/// or a local I/O error. A `.part` from a cut-off transfer is kept so the next call resumes it.
pub fn download_file(
    urls: &[String],
    dest: &Path,
    expected: Checksum,
    opts: &DownloadOptions,
) -> Result<PathBuf> {
    download_file_sized(urls, dest, expected, None, opts)
}

/// [`download_file`] of a file whose size is known in advance (`size`, e.g. from an index):
/// a reply announcing another length is refused before its body is read, and a body that
/// runs past `size` is cut off at the first byte too many, so a server can never fill the
/// disk with more than was declared.
///
/// # Errors
/// Those of [`download_file`], and [`Error::Format`] naming the URL and both sizes
/// when the server's length disagrees with `size` (nothing is left behind).
pub fn download_file_sized(
    urls: &[String],
    dest: &Path,
    expected: Checksum,
    size: Option<u64>,
    opts: &DownloadOptions,
) -> Result<PathBuf> {
    if urls.is_empty() {
        return Err(Error::invalid(format!(
            "no URL given to download {}",
            dest.display()
        )));
    }
    if dest.is_file() && expected.verify(dest, &dest.display().to_string()).is_ok() {
        return Ok(dest.to_path_buf());
    }
    let created = create_dirs(dest)?;
    let part = part_path(dest);
    let client = reqwest::blocking::Client::builder()
        .timeout(opts.timeout)
        .connect_timeout(opts.timeout)
        .user_agent(opts.user_agent.clone())
        .build()
        .map_err(|e| Error::Network {
            url: urls[0].clone(),
            message: error_chain(&e),
        })?;

    let mut errors = Vec::new();
    for url in urls {
        let mut attempt = 0;
        loop {
            let resumed = part_len(&part) > 0;
            match fetch(&client, url, &part, dest, size, opts) {
                Ok(()) => match expected.verify(&part, url) {
                    Ok(()) => {
                        std::fs::rename(&part, dest)
                            .map_err(|e| Error::io("renaming", &part, e))?;
                        return Ok(dest.to_path_buf());
                    }
                    Err(e) => {
                        let _ = std::fs::remove_file(&part);
                        if resumed && attempt < opts.retries {
                            // The old partial bytes may have been the bad ones: start afresh.
                            attempt += 1;
                            continue;
                        }
                        errors.push(e);
                        break;
                    }
                },
                Err(Failure { error, retry }) => {
                    if retry && attempt < opts.retries {
                        attempt += 1;
                        std::thread::sleep(opts.retry_delay);
                        continue;
                    }
                    errors.push(error);
                    break;
                }
            }
        }
    }
    if part_len(&part) == 0 {
        let _ = std::fs::remove_file(&part);
        remove_empty_dirs(&created);
    }
    Err(if errors.len() == 1 {
        errors.remove(0)
    } else {
        Error::AllMirrorsFailed {
            dest: dest.to_path_buf(),
            errors,
        }
    })
}

/// `DEST.part`, the file a download of `dest` streams into.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".part");
    dest.with_file_name(name)
}

fn part_len(part: &Path) -> u64 {
    std::fs::metadata(part).map(|m| m.len()).unwrap_or(0)
}

/// Creates the missing parent folders of `dest`; returns those it created, deepest first.
fn create_dirs(dest: &Path) -> Result<Vec<PathBuf>> {
    let mut missing = Vec::new();
    let mut dir = dest.parent();
    while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_path_buf());
        dir = d.parent();
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
    }
    Ok(missing)
}

fn remove_empty_dirs(created: &[PathBuf]) {
    for d in created {
        if std::fs::remove_dir(d).is_err() {
            break;
        }
    }
}

/// Why one attempt failed, and whether retrying the same URL (resuming) may help.
struct Failure {
    error: Error,
    retry: bool,
}

fn network(url: &str, message: String) -> Failure {
    Failure {
        error: Error::Network {
            url: url.to_string(),
            message,
        },
        retry: true,
    }
}

/// The error and its causes, joined with `: ` (reqwest hides the useful part in the causes).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// One GET of `url` into `part`, resuming from its current length when it has one.
fn fetch(
    client: &reqwest::blocking::Client,
    url: &str,
    part: &Path,
    dest: &Path,
    size: Option<u64>,
    opts: &DownloadOptions,
) -> std::result::Result<(), Failure> {
    let have = part_len(part);
    let mut req = client.get(url);
    if have > 0 {
        req = req.header(RANGE, format!("bytes={have}-"));
    }
    // A server silent until the timeout is not asked again (3 attempts of a silent server
    // were 3 minutes of nothing for a user); a connection that fails or breaks off is.
    let mut resp = req.send().map_err(|e| Failure {
        retry: !e.is_timeout(),
        ..network(url, error_chain(&e))
    })?;
    let status = resp.status();
    let io = |action, e| Failure {
        error: Error::io(action, part, e),
        retry: false,
    };
    let (mut file, start) = match status {
        StatusCode::PARTIAL_CONTENT if have > 0 && content_range_starts_at(&resp, have) => {
            let f = OpenOptions::new()
                .append(true)
                .open(part)
                .map_err(|e| io("opening", e))?;
            (f, have)
        }
        StatusCode::PARTIAL_CONTENT => {
            // A range we did not ask for: drop the partial file and retry from zero.
            let _ = std::fs::remove_file(part);
            return Err(network(
                url,
                "unexpected Content-Range in reply; restarting".into(),
            ));
        }
        StatusCode::OK => {
            // A fresh download, or the server ignored our Range: start from zero.
            (File::create(part).map_err(|e| io("creating", e))?, 0)
        }
        StatusCode::RANGE_NOT_SATISFIABLE if have > 0 => {
            // The partial file is no prefix of what the server has: drop it and retry afresh.
            let _ = std::fs::remove_file(part);
            return Err(network(
                url,
                "server refused to resume (HTTP 416); restarting".into(),
            ));
        }
        s => {
            return Err(Failure {
                error: Error::Http {
                    url: url.to_string(),
                    status: s.as_u16(),
                },
                retry: false,
            })
        }
    };
    let total = resp.content_length().map(|n| n + start);
    // A body may not run past the declared size, nor past the options' limit.
    let limit = size.or(opts.max_bytes);
    let too_long = |got: String| {
        let _ = std::fs::remove_file(part);
        let allowed = match size {
            Some(s) => format!("{s} bytes were declared"),
            None => format!("downloads are limited to {} bytes", limit.unwrap_or(0)),
        };
        Failure {
            error: Error::format(url, format!("the server sends {got} bytes, but {allowed}")),
            retry: false,
        }
    };
    match (total, size, limit) {
        (Some(t), Some(s), _) if t != s => return Err(too_long(t.to_string())),
        (Some(t), None, Some(m)) if t > m => return Err(too_long(t.to_string())),
        _ => {}
    }
    let label = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut report = Reporter::new(opts.progress, &format!("{label} from {url}"), total, start);
    let mut received = start;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match resp.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                report.abandon();
                let _ = file.flush();
                return Err(network(
                    url,
                    format!(
                        "connection lost after {received} bytes: {}",
                        error_chain(&e)
                    ),
                ));
            }
        };
        if let Some(m) = limit.filter(|&m| received + n as u64 > m) {
            report.abandon();
            return Err(too_long(format!("more than {m}")));
        }
        if let Err(e) = file.write_all(&buf[..n]) {
            report.abandon();
            return Err(io("writing", e));
        }
        received += n as u64;
        report.inc(n as u64);
    }
    if let Some(t) = total.or(size).filter(|&t| t != received) {
        report.abandon();
        return Err(network(
            url,
            format!("body ended after {received} of {t} bytes"),
        ));
    }
    file.sync_all().map_err(|e| io("writing", e))?;
    report.finish();
    Ok(())
}

/// Whether a 206 response's `Content-Range` says it starts at byte `start`.
fn content_range_starts_at(resp: &reqwest::blocking::Response, start: u64) -> bool {
    resp.headers()
        .get(CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes "))
        .and_then(|v| v.split('-').next())
        .and_then(|v| v.trim().parse::<u64>().ok())
        == Some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_path_appends_suffix() {
        assert_eq!(
            part_path(Path::new("/a/b.tar.gz")),
            PathBuf::from("/a/b.tar.gz.part")
        );
    }

    #[test]
    fn no_urls_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = download_file(
            &[],
            &dir.path().join("x"),
            Checksum::None,
            &DownloadOptions::quiet(),
        );
        assert!(e.is_err());
    }

    #[test]
    fn unreachable_server_names_the_url() {
        let dir = tempfile::tempdir().unwrap();
        // Port 9 on loopback: connection refused, immediately.
        let url = "http://127.0.0.1:9/file.bin".to_string();
        let opts = DownloadOptions::quiet()
            .retries(0)
            .timeout(Duration::from_secs(5));
        let dest = dir.path().join("sub").join("file.bin");
        let e = download_file(&[url], &dest, Checksum::None, &opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains("http://127.0.0.1:9/file.bin"), "{e}");
        assert!(
            !dir.path().join("sub").exists(),
            "created folder left behind"
        );
    }
}
