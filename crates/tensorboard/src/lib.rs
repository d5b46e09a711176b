//! # mlfw-tensorboard
//!
//! TensorBoard event files for mlfw training runs and users' own loops: a
//! [`SummaryWriter`] (scalars, histograms, images, text, like
//! `torch.utils.tensorboard.SummaryWriter`) and a reader ([`read_events`]).
//!
//! Files are TFRecord-framed `Event` protobufs (length, masked CRC-32C of the length,
//! data, masked CRC-32C of the data), named `events.out.tfevents.<time>.<host>`, so
//! `tensorboard --logdir runs` shows them. The messages are TensorFlow's own (field numbers
//! of `event.proto` and `summary.proto`) as prost structs, checked in.
//!
//! A crate of its own so a training loop can log without the model hub or the command:
//! it needs only the tensor core (and PNG encoding for images).

pub mod crc32c;
pub mod proto;
pub mod reader;
pub mod record;
pub mod summary;
pub mod writer;

pub use reader::{read_events, EventFile};
pub use summary::make_grid;
pub use writer::SummaryWriter;
