//! What the command prints while it works: an indicatif bar per epoch on a terminal, plain
//! progress lines otherwise, nothing with `--quiet`; with `--json` every human-readable line
//! goes to stderr so stdout carries only the final JSON object.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An indicatif bar on stderr (stdout and stderr are terminals).
    Bar,
    /// A plain line about every 10% of an epoch.
    Lines,
    /// Nothing but errors.
    Quiet,
}

/// The command's console output.
#[derive(Debug, Clone, Copy)]
pub struct Console {
    mode: Mode,
    json: bool,
}

impl Console {
    /// Output for `--quiet` / `--json`, choosing a bar or lines by whether we talk to a terminal.
    pub fn new(quiet: bool, json: bool) -> Self {
        let tty = std::io::stdout().is_terminal() && std::io::stderr().is_terminal();
        let mode = match (quiet, tty) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Bar,
            (false, false) => Mode::Lines,
        };
        Console { mode, json }
    }

    /// Prints a human-readable line (stdout, or stderr under `--json`; nothing when quiet).
    pub fn line(&self, msg: impl AsRef<str>) {
        match (self.mode, self.json) {
            (Mode::Quiet, _) => {}
            (_, true) => eprintln!("{}", msg.as_ref()),
            (_, false) => println!("{}", msg.as_ref()),
        }
    }

    /// Starts the progress display of one epoch of `steps` steps, `done` of them already run.
    pub fn epoch(&self, label: String, steps: usize, done: usize) -> EpochProgress {
        let bar = (self.mode == Mode::Bar).then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
            let template = "{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}";
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.clone());
            bar.set_position(done as u64);
            bar.reset_eta();
            bar
        });
        EpochProgress {
            console: *self,
            bar,
            label,
            steps,
            start: Instant::now(),
            first: done,
            images: 0,
            unit: "img/s",
            next_line: done + steps.div_ceil(10).max(1),
        }
    }
}

/// Progress of one epoch.
pub struct EpochProgress {
    console: Console,
    bar: Option<ProgressBar>,
    label: String,
    steps: usize,
    start: Instant,
    first: usize,
    images: usize,
    unit: &'static str,
    next_line: usize,
}

impl EpochProgress {
    /// Names the rate of what `step` counts (`img/s` unless told, `tokens/s` for language models).
    pub fn with_unit(mut self, unit: &'static str) -> Self {
        self.unit = unit;
        self
    }

    /// Records that step `step` (counted from 1) finished with `loss` after `images` images.
    pub fn step(&mut self, step: usize, loss: f64, images: usize) {
        self.images += images;
        let rate = self.images_per_s();
        if let Some(bar) = &self.bar {
            bar.set_message(format!("loss {loss:.4} {rate:.0} {}", self.unit));
            bar.set_position(step as u64);
        } else if self.console.mode == Mode::Lines && step >= self.next_line {
            self.next_line = step + self.steps.div_ceil(10).max(1);
            let per_step = self.start.elapsed().as_secs_f64() / (step - self.first).max(1) as f64;
            let eta = self.steps.saturating_sub(step) as f64 * per_step;
            self.console.line(format!(
                "{} step {step}/{} loss {loss:.4} {rate:.0} {} eta {eta:.0}s",
                self.label, self.steps, self.unit
            ));
        }
    }

    /// Training images per second so far in this epoch.
    pub fn images_per_s(&self) -> f64 {
        self.images as f64 / self.start.elapsed().as_secs_f64().max(1e-9)
    }

    /// Removes the bar (the caller prints the epoch summary).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
