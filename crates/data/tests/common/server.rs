//! A tiny HTTP/1.1 file server on 127.0.0.1 for download tests (std only, no internet).
//! Shared by the data and hub test suites (the hub includes this file by path).
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// How the server answers one path.
#[derive(Clone)]
pub enum Route {
    /// Serves the bytes, honouring `Range: bytes=N-` with 206.
    File(Vec<u8>),
    /// Serves the bytes with 200 and ignores any Range header.
    IgnoreRange(Vec<u8>),
    /// Answers with this status and a short body.
    Status(u16),
    /// Serves the bytes with 200 in `chunk`-byte pieces, pausing `pause_ms` between them.
    Slow {
        body: Vec<u8>,
        chunk: usize,
        pause_ms: u64,
    },
    /// Serves `body`, then zeros up to `total` bytes, with no Content-Length (the end is
    /// the connection closing): a body larger than any size an index declared for it.
    Endless { body: Vec<u8>, total: usize },
    /// The first `times` requests get full headers but only `cut_at` body bytes, then the
    /// connection closes; later requests behave like `File`.
    CutOff {
        body: Vec<u8>,
        cut_at: usize,
        times: usize,
    },
}

/// One request the server saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub range: Option<String>,
}

pub struct TestServer {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    /// Starts a server on an ephemeral loopback port serving `routes` (path -> behaviour).
    pub fn start(routes: Vec<(&str, Route)>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let routes: HashMap<String, Route> = routes
            .into_iter()
            .map(|(p, r)| (p.to_string(), r))
            .collect();
        let routes = Arc::new(Mutex::new(routes));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let routes = Arc::clone(&routes);
                let seen = Arc::clone(&seen2);
                std::thread::spawn(move || {
                    let _ = handle(stream, &routes, &seen);
                });
            }
        });
        TestServer { port, seen }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        206 => "Partial Content",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Status",
    }
}

fn respond(s: &mut TcpStream, code: u16, extra: &str, body: &[u8]) -> std::io::Result<()> {
    write!(
        s,
        "HTTP/1.1 {code} {}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        reason(code),
        body.len()
    )?;
    s.write_all(body)?;
    s.flush()
}

fn handle(
    mut stream: TcpStream,
    routes: &Mutex<HashMap<String, Route>>,
    seen: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    seen.lock().unwrap().push(Seen {
        path: path.clone(),
        range: range.clone(),
    });
    let route = {
        let mut routes = routes.lock().unwrap();
        let r = routes.get(&path).cloned();
        if let Some(Route::CutOff {
            body,
            cut_at,
            times,
        }) = &r
        {
            if *times > 0 {
                routes.insert(
                    path.clone(),
                    Route::CutOff {
                        body: body.clone(),
                        cut_at: *cut_at,
                        times: times - 1,
                    },
                );
            }
        }
        r
    };
    match route {
        None => respond(&mut stream, 404, "", b"not found"),
        Some(Route::Status(code)) => respond(&mut stream, code, "", b"error"),
        Some(Route::IgnoreRange(body)) => respond(&mut stream, 200, "", &body),
        Some(Route::Slow {
            body,
            chunk,
            pause_ms,
        }) => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            for piece in body.chunks(chunk.max(1)) {
                stream.write_all(piece)?;
                stream.flush()?;
                std::thread::sleep(std::time::Duration::from_millis(pause_ms));
            }
            Ok(())
        }
        Some(Route::Endless { body, total }) => {
            write!(stream, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")?;
            stream.write_all(&body)?;
            let zeros = vec![0u8; 1 << 16];
            let mut sent = body.len();
            while sent < total {
                stream.write_all(&zeros)?;
                sent += zeros.len();
            }
            stream.flush()
        }
        Some(Route::CutOff {
            body,
            cut_at,
            times,
        }) if times > 0 => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )?;
            stream.write_all(&body[..cut_at])?;
            stream.flush()?;
            stream.shutdown(std::net::Shutdown::Both)
        }
        Some(Route::File(body)) | Some(Route::CutOff { body, .. }) => {
            let start = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<usize>().ok());
            match start {
                None => respond(&mut stream, 200, "", &body),
                Some(n) if n >= body.len() => respond(
                    &mut stream,
                    416,
                    &format!("Content-Range: bytes */{}\r\n", body.len()),
                    b"",
                ),
                Some(n) => respond(
                    &mut stream,
                    206,
                    &format!(
                        "Content-Range: bytes {n}-{}/{}\r\n",
                        body.len() - 1,
                        body.len()
                    ),
                    &body[n..],
                ),
            }
        }
    }
}
