//! # mlfw-vision
//!
//! Computer vision on mlfw, modelled on torchvision:
//! - [`transforms`]: composable, seeded image transforms on `image::DynamicImage`s and tensors;
//! - [`ImageFolder`]: a class-per-folder image dataset (PNG/JPEG);
//! - [`models`]: LeNet-5, MLP, ResNet-18/34/50 (+ CIFAR variant), VGG-11-BN,
//!   MobileNetV2, EfficientNet-B0 with PyTorch key names;
//! - [`registry`]: build a model by name; [`predict`]: image files to top-k classes;
//! - [`transfer`]: fine-tuning (head replacement, frozen backbone); [`folder_splits`]: an
//!   image folder as training and validation sets.

pub mod folder_splits;
pub mod image_folder;
pub mod transforms;

pub use image_folder::ImageFolder;
pub mod models;
pub mod parity;
pub mod parity_second_order;
pub mod pixel_budget;
pub mod predict;
pub mod registry;
pub mod timm_keys;
pub mod transfer;
