//! Download progress: an indicatif bar on a terminal, plain lines otherwise, or nothing.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How a download reports progress on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Progress {
    /// A bar when stderr is a terminal, plain lines otherwise (the default).
    #[default]
    Auto,
    /// Always a bar (bytes, rate, ETA).
    Bar,
    /// Plain lines, about every 10% or 5 seconds (good for logs and CI).
    Lines,
    /// Nothing.
    Quiet,
}

/// Reports one transfer.
pub(crate) struct Reporter {
    mode: Progress,
    bar: Option<ProgressBar>,
    label: String,
    total: Option<u64>,
    done: u64,
    start: Instant,
    start_bytes: u64,
    last_line: Instant,
    last_tenth: u64,
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

impl Reporter {
    /// Starts reporting the transfer of `label`, `total` bytes if known, `done` already present.
    pub(crate) fn new(mode: Progress, label: &str, total: Option<u64>, done: u64) -> Self {
        let mode = match mode {
            Progress::Auto if std::io::stderr().is_terminal() => Progress::Bar,
            Progress::Auto => Progress::Lines,
            m => m,
        };
        let bar = (mode == Progress::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let template = if total.is_some() {
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}"
            } else {
                "{msg} {bytes} {binary_bytes_per_sec}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label.to_string());
            bar.set_position(done);
            bar.reset_eta();
            bar
        });
        if mode == Progress::Lines {
            let size = total
                .map(|t| format!(" ({:.1} MB)", mb(t)))
                .unwrap_or_default();
            let resume = if done > 0 {
                format!(", resuming at {:.1} MB", mb(done))
            } else {
                String::new()
            };
            eprintln!("downloading {label}{size}{resume}");
        }
        let now = Instant::now();
        Reporter {
            mode,
            bar,
            label: label.to_string(),
            total,
            done,
            start: now,
            start_bytes: done,
            last_line: now,
            last_tenth: total.map(|t| done * 10 / t.max(1)).unwrap_or(0),
        }
    }

    /// Records `n` more bytes.
    pub(crate) fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
        if self.mode == Progress::Lines {
            let tenth = self.total.map(|t| self.done * 10 / t.max(1)).unwrap_or(0);
            if tenth > self.last_tenth || self.last_line.elapsed() >= Duration::from_secs(5) {
                self.last_tenth = tenth;
                self.last_line = Instant::now();
                eprintln!("  {}", self.status());
            }
        }
    }

    fn status(&self) -> String {
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        let rate = (self.done - self.start_bytes) as f64 / secs;
        match self.total {
            Some(t) => {
                let eta = if rate > 0.0 {
                    t.saturating_sub(self.done) as f64 / rate
                } else {
                    0.0
                };
                format!(
                    "{}: {:.1}/{:.1} MB ({}%), {:.1} MB/s, eta {:.0}s",
                    self.label,
                    mb(self.done),
                    mb(t),
                    self.done * 100 / t.max(1),
                    rate / 1e6,
                    eta
                )
            }
            None => format!(
                "{}: {:.1} MB, {:.1} MB/s",
                self.label,
                mb(self.done),
                rate / 1e6
            ),
        }
    }

    /// Ends the report after success.
    pub(crate) fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.mode == Progress::Lines {
            eprintln!("  done: {}", self.status());
        }
    }

    /// Ends the report after a failure (the caller reports the error).
    pub(crate) fn abandon(self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}
