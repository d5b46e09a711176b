//! Per-dataset metadata: classes, image shape, split sizes, normalization statistics.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Which part of a dataset to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training set.
    Train,
    /// The test set.
    Test,
}

impl Split {
    /// `true` for [`Split::Train`].
    pub fn is_train(self) -> bool {
        self == Split::Train
    }

    /// `Train` when `train` is true, else `Test`.
    pub fn from_train(train: bool) -> Self {
        if train {
            Split::Train
        } else {
            Split::Test
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_train() { "train" } else { "test" })
    }
}

impl FromStr for Split {
    type Err = Error;

    /// Parses `train` or `test` (also `val`/`valid`/`validation` for test).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "train" | "training" => Ok(Split::Train),
            "test" | "val" | "valid" | "validation" => Ok(Split::Test),
            _ => Err(Error::invalid(format!(
                "unknown split `{s}`; expected train or test"
            ))),
        }
    }
}

/// What a dataset holds: name, classes, image shape, split sizes and the per-channel
/// mean/std that torchvision recipes normalize with.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetInfo {
    /// Registry name (`"mnist"`, `"cifar10"`, ...).
    pub name: String,
    /// Number of classes; labels lie in `0..num_classes`.
    pub num_classes: usize,
    /// Channels per image.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Per-channel mean of the `[0, 1]` pixels, for `Normalize`.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation of the `[0, 1]` pixels, for `Normalize`.
    pub std: Vec<f32>,
    /// Number of training samples.
    pub train_len: usize,
    /// Number of test samples.
    pub test_len: usize,
    /// Class names, `num_classes` of them.
    pub classes: Vec<String>,
}

impl DatasetInfo {
    /// Image shape `[C, H, W]`.
    pub fn image_shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// Number of samples in `split`.
    pub fn len(&self, split: Split) -> usize {
        if split.is_train() {
            self.train_len
        } else {
            self.test_len
        }
    }
}

fn strs(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

pub(crate) fn gray(
    name: &str,
    mean: f32,
    std: f32,
    train: usize,
    test: usize,
    classes: &[&str],
) -> DatasetInfo {
    DatasetInfo {
        name: name.to_string(),
        num_classes: classes.len(),
        channels: 1,
        height: 28,
        width: 28,
        mean: vec![mean],
        std: vec![std],
        train_len: train,
        test_len: test,
        classes: strs(classes),
    }
}

pub(crate) const DIGITS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/// MNIST: 60,000/10,000 28x28 digits; mean 0.1307, std 0.3081.
pub fn mnist_info() -> DatasetInfo {
    gray("mnist", 0.1307, 0.3081, 60_000, 10_000, &DIGITS)
}

/// mnist-mini: the embedded 8,000/1,000-digit subset of MNIST (MNIST's statistics).
pub fn mnist_mini_info() -> DatasetInfo {
    gray("mnist-mini", 0.1307, 0.3081, 8_000, 1_000, &DIGITS)
}

/// Fashion-MNIST: 60,000/10,000 28x28 clothing images; mean 0.2860, std 0.3530.
pub fn fashion_mnist_info() -> DatasetInfo {
    let classes = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ];
    gray("fashion-mnist", 0.2860, 0.3530, 60_000, 10_000, &classes)
}

/// Kuzushiji-MNIST: 60,000/10,000 28x28 cursive Japanese characters; mean 0.1918, std 0.3483.
pub fn kmnist_info() -> DatasetInfo {
    let classes = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"];
    gray("kmnist", 0.1918, 0.3483, 60_000, 10_000, &classes)
}

/// CIFAR-10: 50,000/10,000 3x32x32 images in 10 classes.
pub fn cifar10_info() -> DatasetInfo {
    DatasetInfo {
        name: "cifar10".into(),
        num_classes: 10,
        channels: 3,
        height: 32,
        width: 32,
        mean: vec![0.4914, 0.4822, 0.4465],
        std: vec![0.2470, 0.2435, 0.2616],
        train_len: 50_000,
        test_len: 10_000,
        classes: strs(&[
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ]),
    }
}

/// CIFAR-100: 50,000/10,000 3x32x32 images, 100 fine classes (or 20 coarse with `coarse`).
pub fn cifar100_info(coarse: bool) -> DatasetInfo {
    let classes = if coarse {
        strs(&CIFAR100_COARSE)
    } else {
        strs(&CIFAR100_FINE)
    };
    DatasetInfo {
        name: "cifar100".into(),
        num_classes: classes.len(),
        channels: 3,
        height: 32,
        width: 32,
        mean: vec![0.5071, 0.4865, 0.4409],
        std: vec![0.2673, 0.2564, 0.2762],
        train_len: 50_000,
        test_len: 10_000,
        classes,
    }
}

/// Metadata for FakeData of the given shape and class count (mean/std of uniform pixels).
pub fn fake_info(shape: [usize; 3], num_classes: usize, train: usize, test: usize) -> DatasetInfo {
    DatasetInfo {
        name: "fake".into(),
        num_classes,
        channels: shape[0],
        height: shape[1],
        width: shape[2],
        mean: vec![0.5; shape[0]],
        std: vec![0.2887; shape[0]],
        train_len: train,
        test_len: test,
        classes: (0..num_classes).map(|i| i.to_string()).collect(),
    }
}

const CIFAR100_COARSE: [&str; 20] = [
    "aquatic_mammals",
    "fish",
    "flowers",
    "food_containers",
    "fruit_and_vegetables",
    "household_electrical_devices",
    "household_furniture",
    "insects",
    "large_carnivores",
    "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores",
    "medium_mammals",
    "non-insect_invertebrates",
    "people",
    "reptiles",
    "small_mammals",
    "trees",
    "vehicles_1",
    "vehicles_2",
];

const CIFAR100_FINE: [&str; 100] = [
    "apple",
    "aquarium_fish",
    "baby",
    "bear",
    "beaver",
    "bed",
    "bee",
    "beetle",
    "bicycle",
    "bottle",
    "bowl",
    "boy",
    "bridge",
    "bus",
    "butterfly",
    "camel",
    "can",
    "castle",
    "caterpillar",
    "cattle",
    "chair",
    "chimpanzee",
    "clock",
    "cloud",
    "cockroach",
    "couch",
    "crab",
    "crocodile",
    "cup",
    "dinosaur",
    "dolphin",
    "elephant",
    "flatfish",
    "forest",
    "fox",
    "girl",
    "hamster",
    "house",
    "kangaroo",
    "keyboard",
    "lamp",
    "lawn_mower",
    "leopard",
    "lion",
    "lizard",
    "lobster",
    "man",
    "maple_tree",
    "motorcycle",
    "mountain",
    "mouse",
    "mushroom",
    "oak_tree",
    "orange",
    "orchid",
    "otter",
    "palm_tree",
    "pear",
    "pickup_truck",
    "pine_tree",
    "plain",
    "plate",
    "poppy",
    "porcupine",
    "possum",
    "rabbit",
    "raccoon",
    "ray",
    "road",
    "rocket",
    "rose",
    "sea",
    "seal",
    "shark",
    "shrew",
    "skunk",
    "skyscraper",
    "snail",
    "snake",
    "spider",
    "squirrel",
    "streetcar",
    "sunflower",
    "sweet_pepper",
    "table",
    "tank",
    "telephone",
    "television",
    "tiger",
    "tractor",
    "train",
    "trout",
    "tulip",
    "turtle",
    "wardrobe",
    "whale",
    "willow_tree",
    "wolf",
    "woman",
    "worm",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_counts_match() {
        for info in [
            mnist_info(),
            fashion_mnist_info(),
            kmnist_info(),
            cifar10_info(),
        ] {
            assert_eq!(info.classes.len(), 10, "{}", info.name);
            assert_eq!(info.mean.len(), info.channels);
        }
        assert_eq!(cifar100_info(false).num_classes, 100);
        assert_eq!(cifar100_info(true).num_classes, 20);
    }

    #[test]
    fn split_parsing() {
        assert_eq!("train".parse::<Split>().unwrap(), Split::Train);
        assert_eq!("TEST".parse::<Split>().unwrap(), Split::Test);
        assert!("dev".parse::<Split>().is_err());
    }
}
