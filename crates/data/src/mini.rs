//! `mnist-mini`: 9,000 real MNIST digits embedded in the binary, so examples work offline.

use std::path::Path;

use crate::error::Result;
use crate::idx::decode_idx;
use crate::image_dataset::ImageDataset;
use crate::info::mnist_mini_info;
use crate::mnist::mnist_from_idx;

const TRAIN_IMAGES: &[u8] = include_bytes!("../assets/mnist-mini/train-images-idx3-ubyte.gz");
const TRAIN_LABELS: &[u8] = include_bytes!("../assets/mnist-mini/train-labels-idx1-ubyte.gz");
const TEST_IMAGES: &[u8] = include_bytes!("../assets/mnist-mini/t10k-images-idx3-ubyte.gz");
const TEST_LABELS: &[u8] = include_bytes!("../assets/mnist-mini/t10k-labels-idx1-ubyte.gz");

/// The embedded MNIST subset: 8,000 training and 1,000 test digits (1x28x28, 10 classes).
///
/// Needs no file and no network, from any working directory.
pub struct MnistMini;

// A namespace for loaders (like torchvision's dataset classes): `new` returns the dataset.
#[allow(clippy::new_ret_no_self)]
impl MnistMini {
    /// Loads the training (`train = true`) or test split.
    ///
    /// # Errors
    /// Only if the embedded files were corrupt ([`crate::Error::Format`]); none in practice.
    pub fn new(train: bool) -> Result<ImageDataset> {
        let (images, labels, split) = if train {
            (TRAIN_IMAGES, TRAIN_LABELS, "train")
        } else {
            (TEST_IMAGES, TEST_LABELS, "t10k")
        };
        let iname = format!("<embedded mnist-mini>/{split}-images-idx3-ubyte.gz");
        let lname = format!("<embedded mnist-mini>/{split}-labels-idx1-ubyte.gz");
        let img = decode_idx(images, &iname)?;
        let lab = decode_idx(labels, &lname)?;
        let set = mnist_from_idx(img, lab, 10, Path::new(&iname), Path::new(&lname))?;
        Ok(ImageDataset::new(set, mnist_mini_info()))
    }
}
