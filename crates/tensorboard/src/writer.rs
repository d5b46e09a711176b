//! [`SummaryWriter`]: appends events to `events.out.tfevents.<time>.<host>` in a log folder,
//! like `torch.utils.tensorboard.SummaryWriter`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use mlfw_core::{Error, Result, Tensor};
use prost::Message;

use crate::proto::{
    Event, PluginData, Summary, SummaryMetadata, TensorProto, TensorShapeDim, TensorShapeProto,
    Value, DT_STRING,
};
use crate::record::write_record;
use crate::summary;

/// Writes TensorBoard events (scalars, histograms, images, text) to a new event file in a
/// folder. Records are buffered; [`SummaryWriter::flush`] (and dropping the writer) makes
/// them visible to `tensorboard --logdir`.
///
/// ```no_run
/// let mut tb = mlfw_tensorboard::SummaryWriter::new("runs/exp1")?;
/// for step in 0..100 {
///     tb.add_scalar("train/loss", 1.0 / (step + 1) as f64, step)?;
/// }
/// tb.flush()?;
/// # Ok::<(), mlfw_core::Error>(())
/// ```
pub struct SummaryWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

impl SummaryWriter {
    /// Creates `logdir` if needed and a new event file in it, starting with the file-version
    /// event.
    ///
    /// # Errors
    /// The folder or file cannot be created.
    pub fn new(logdir: impl AsRef<Path>) -> Result<Self> {
        let dir = logdir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| io_err("creating", dir, e))?;
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let base = format!("events.out.tfevents.{secs}.{}", hostname());
        let mut n = 0;
        let (path, f) = loop {
            let name = if n == 0 {
                base.clone()
            } else {
                format!("{base}.{n}")
            };
            let path = dir.join(name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
                Err(e) => return Err(io_err("creating", &path, e)),
            }
        };
        let mut w = SummaryWriter {
            path,
            file: BufWriter::new(f),
        };
        w.write(Event {
            wall_time: now(),
            file_version: Some("brain.Event:2".into()),
            ..Default::default()
        })?;
        w.flush()?;
        Ok(w)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs a scalar under `tag` at `step`.
    ///
    /// # Errors
    /// Writing the file.
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: u64) -> Result<()> {
        self.add_scalars(&[(tag, value)], step)
    }

    /// Logs several scalars (tag, value) at `step`, in one event.
    ///
    /// # Errors
    /// Writing the file.
    pub fn add_scalars(&mut self, values: &[(&str, f64)], step: u64) -> Result<()> {
        let value = values
            .iter()
            .map(|(tag, v)| Value {
                tag: tag.to_string(),
                simple_value: Some(*v as f32),
                ..Default::default()
            })
            .collect();
        self.summary(value, step)
    }

    /// Logs a histogram of `values` (any shape, dtype and device).
    ///
    /// # Errors
    /// Reading the tensor; writing the file.
    pub fn add_histogram(&mut self, tag: &str, values: &Tensor, step: u64) -> Result<()> {
        let histo = Some(summary::histogram(values)?);
        self.summary(
            vec![Value {
                tag: tag.into(),
                histo,
                ..Default::default()
            }],
            step,
        )
    }

    /// Logs an image: `[C, H, W]`, C = 1 or 3, floats in `[0, 1]` or u8 (see
    /// [`crate::make_grid`] for a batch).
    ///
    /// # Errors
    /// Another shape; writing the file.
    pub fn add_image(&mut self, tag: &str, image: &Tensor, step: u64) -> Result<()> {
        let image = Some(summary::png_image(image)?);
        self.summary(
            vec![Value {
                tag: tag.into(),
                image,
                ..Default::default()
            }],
            step,
        )
    }

    /// Logs text (shown by TensorBoard's text plugin, Markdown rendered).
    ///
    /// # Errors
    /// Writing the file.
    pub fn add_text(&mut self, tag: &str, text: &str, step: u64) -> Result<()> {
        let metadata = Some(SummaryMetadata {
            plugin_data: Some(PluginData {
                plugin_name: "text".into(),
                content: vec![],
            }),
            ..Default::default()
        });
        let tensor = Some(TensorProto {
            dtype: DT_STRING,
            tensor_shape: Some(TensorShapeProto {
                dim: vec![TensorShapeDim {
                    size: 1,
                    name: String::new(),
                }],
            }),
            string_val: vec![text.as_bytes().to_vec()],
        });
        self.summary(
            vec![Value {
                tag: tag.into(),
                metadata,
                tensor,
                ..Default::default()
            }],
            step,
        )
    }

    /// Writes buffered events to the file.
    ///
    /// # Errors
    /// Writing the file.
    pub fn flush(&mut self) -> Result<()> {
        self.file
            .flush()
            .map_err(|e| io_err("writing", &self.path, e))
    }

    fn summary(&mut self, value: Vec<Value>, step: u64) -> Result<()> {
        self.write(Event {
            wall_time: now(),
            step: step as i64,
            summary: Some(Summary { value }),
            ..Default::default()
        })
    }

    fn write(&mut self, e: Event) -> Result<()> {
        write_record(&mut self.file, &e.encode_to_vec())
            .map_err(|e| io_err("writing", &self.path, e))
    }
}

impl Drop for SummaryWriter {
    fn drop(&mut self) {
        let _ = self.file.flush();
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The machine's host name (Linux), else `HOSTNAME`, else `localhost`; path-safe.
fn hostname() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let h: String = h
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
        .collect();
    if h.is_empty() {
        "localhost".into()
    } else {
        h
    }
}

fn io_err(action: &str, path: &Path, e: std::io::Error) -> Error {
    Error::msg(format!("tensorboard: {action} {}: {e}", path.display()))
}
