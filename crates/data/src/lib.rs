//! mlfw's data ring: datasets, the [`DataLoader`], and verified downloads.
//!
//! - [`Dataset`] (len + get) yields [`Sample`]s: an image tensor `[C, H, W]` (f32 in `[0, 1]`
//!   by default) and an `i64` label; a [`Transform`] hook runs in `get` with a per-sample seed.
//! - [`DataLoader`] batches, shuffles reproducibly per epoch, and prefetches on worker threads.
//! - Built-in datasets: [`MnistMini`] (embedded, offline), [`Mnist`], [`FashionMnist`],
//!   [`Kmnist`], [`Cifar10`], [`Cifar100`], [`FakeData`]; by name with [`load_by_name`].
//! - Character-level text: [`TextDataset`] (the embedded `tinyshakespeare`, or any UTF-8
//!   file), [`CharVocab`], random-window language-model batches.
//! - [`download::download_file`]: mirrors, resume, checksums, atomic rename.

pub mod cifar;
pub mod cifar_files;
pub mod collate;
pub mod dataset;
pub mod download;
pub mod emnist;
pub mod error;
pub mod fake;
pub mod home;
pub mod idx;
pub mod image_dataset;
pub mod image_set;
pub mod info;
pub mod loader;
pub mod mat5;
pub mod memory;
pub mod mini;
pub mod mnist;
mod prefetch;
pub mod qmnist;
pub mod registry;
pub mod resources;
pub mod rng;
mod sample;
pub mod sampler;
pub mod stl10;
pub mod subset;
pub mod svhn;
pub mod text;
pub mod transform;
pub mod zip;

pub use cifar::{Cifar10, Cifar100, Cifar100Labels};
pub use collate::{collate, Batch, ImageFormat};
pub use dataset::{Dataset, Sample};
pub use download::{download_file, download_file_sized, Checksum, DownloadOptions, Progress};
pub use emnist::{Emnist, EMNIST_SPLITS};
pub use error::{Error, Result};
pub use fake::FakeData;
pub use home::{data_root, mlfw_home};
pub use image_dataset::ImageDataset;
pub use image_set::ImageSet;
pub use info::{DatasetInfo, Split};
pub use loader::{Batches, DataLoader};
pub use mini::MnistMini;
pub use mnist::{FashionMnist, Kmnist, Mnist, MnistVariant};
pub use qmnist::Qmnist;
pub use registry::{dataset_info, dataset_names, load_by_name, LoadOptions, DATASET_NAMES};
pub use rng::Rng;
pub use stl10::Stl10;
pub use subset::{stratified_split, Subset};
pub use svhn::Svhn;
pub use text::{is_text_dataset, text_by_name, CharVocab, TextDataset};
pub use transform::Transform;
