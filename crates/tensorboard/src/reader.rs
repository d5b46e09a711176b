//! Reading event files back: every record's CRCs checked, events decoded; a torn last
//! record (a run killed mid-write) leaves the events before it readable.

use std::path::Path;

use mlfw_core::{Error, Result};
use prost::Message;

use crate::proto::Event;
use crate::record::read_records;

/// The events of one file.
#[derive(Debug, Clone, Default)]
pub struct EventFile {
    /// Every complete event, in file order (the first is the file-version event).
    pub events: Vec<Event>,
    /// What was cut off at the end, when the file ends inside a record.
    pub torn: Option<String>,
}

impl EventFile {
    /// `(step, value)` of every scalar logged under `tag`, in file order.
    pub fn scalars(&self, tag: &str) -> Vec<(i64, f32)> {
        self.values(tag)
            .filter_map(|(s, v)| v.simple_value.map(|x| (s, x)))
            .collect()
    }

    /// Every value logged under `tag` with its step.
    pub fn values<'a>(
        &'a self,
        tag: &'a str,
    ) -> impl Iterator<Item = (i64, &'a crate::proto::Value)> + 'a {
        self.events.iter().flat_map(move |e| {
            e.summary
                .iter()
                .flat_map(|s| s.value.iter())
                .filter(move |v| v.tag == tag)
                .map(move |v| (e.step, v))
        })
    }
}

/// Reads and decodes the event file at `path`.
///
/// # Errors
/// The file unreadable; a CRC mismatch or undecodable event in a complete record
/// (naming the file).
pub fn read_events(path: impl AsRef<Path>) -> Result<EventFile> {
    let path = path.as_ref();
    let bytes = std::fs::read(path)
        .map_err(|e| Error::msg(format!("tensorboard: reading {}: {e}", path.display())))?;
    let bad = |m: String| Error::msg(format!("tensorboard: {}: {m}", path.display()));
    let recs = read_records(&bytes).map_err(bad)?;
    let events = recs
        .records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            Event::decode(*r).map_err(|e| bad(format!("record {i} is not an Event ({e})")))
        })
        .collect::<Result<_>>()?;
    Ok(EventFile {
        events,
        torn: recs.torn,
    })
}
