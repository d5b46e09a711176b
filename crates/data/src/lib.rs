//! mlfw's data ring: datasets, the `DataLoader`, and verified downloads.

pub mod cifar_files;
pub mod download;
pub mod error;
pub mod home;
pub mod idx;
pub mod image_set;
mod prefetch;
pub mod resources;
pub mod rng;
pub mod sampler;

pub use error::{Error, Result};
