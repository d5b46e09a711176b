//! [`Sample`]: one example as a dataset gives it and the collate step stacks it.

use mlfw_core::Tensor;

/// One example: an image tensor and its class label.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The image, `[C, H, W]`: f32 in `[0, 1]` by default, u8 with [`crate::ImageFormat::U8`],
    /// or whatever the dataset's transform produced.
    pub image: Tensor,
    /// The class label, in `0..num_classes`.
    pub label: i64,
}
