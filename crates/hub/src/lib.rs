//! # mlfw-hub
//!
//! The model hub: registries of pretrained weights, a verified local cache, and loading.
//!
//! - A registry is an `index.json` ([`Index`], format in `crates/hub/README.md`) listing
//!   models with architecture, preprocessing, files (URL, sha256, size), metrics, license and
//!   the training command. Sources ([`Source`]): the built-in registry (compiled in, works
//!   offline), any HTTP(S) index URL, a local folder, or a Hugging Face repo (`hf://owner/repo`).
//! - [`pull`] fetches a model into `$MLFW_HOME/hub/NAME/VERSION/` (resumable, sha256-verified,
//!   atomic, one lock per version); [`list`], [`info`], [`rm`] inspect and prune the cache.
//! - [`load`] returns a model built by the vision registry with its pretrained weights
//!   (strict) and its preprocessing; [`load_into`] loads them into a model the caller built;
//!   [`load_weights`] returns the verified state dict alone;
//!   [`export`] turns a training run folder into a registry entry.
//!
//! Only safetensors and JSON files are ever fetched; nothing downloaded is executed.
//!
//! ```no_run
//! let opts = mlfw_hub::HubOptions::from_env();
//! let pulled = mlfw_hub::pull("lenet5", &opts)?;
//! println!("{} in {}", pulled.model.entry.id(), pulled.model.dir.display());
//! # Ok::<(), mlfw_hub::Error>(())
//! ```

#![warn(missing_docs)]

pub mod arch;
mod builtin;
pub mod cache;
mod catalog;
pub mod error;
pub mod export;
pub mod index;
pub mod load;
pub mod lock;
pub mod onnx;
mod options;
pub mod pull;
mod registry;
pub mod source;
pub mod timm;

pub use cache::CachedModel;
pub use catalog::{info, list, rm, Info, ListItem, Listing};
pub use error::{Error, Result};
pub use export::{export, ExportOptions, Exported, RunConfig, WeightsChoice};
pub use index::{Architecture, Entry, FileEntry, Index, Metric, Preprocessing};
pub use load::{load, load_into, load_weights, load_weights_with, load_with, Loaded, Pretrained};
pub use mlfw_data::Progress;
pub use options::HubOptions;
pub use pull::{pull, Pulled};
pub use source::Source;
