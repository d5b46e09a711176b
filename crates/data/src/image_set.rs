//! `ImageSet`: images as raw `u8` CHW pixels plus `i64` labels, validated once at load.

use crate::error::{Error, Result};

/// A validated, in-memory set of same-shaped `u8` images (CHW) and their labels.
///
/// This is the raw form every built-in image dataset loads into; use it directly for a fast path
/// that avoids the f32 conversion (`pixels()` is one contiguous `N*C*H*W` buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    pixels: Vec<u8>,
    labels: Vec<i64>,
    shape: [usize; 3],
}

impl ImageSet {
    /// Builds a set from `pixels` (`N*C*H*W` bytes, CHW per image) and `labels` (`N`).
    ///
    /// `source` names the files in error messages. Errors: pixel count not `labels.len() * C*H*W`,
    /// a zero-sized image shape, or (when `num_classes` is given) a label outside
    /// `0..num_classes`.
    pub fn new(
        pixels: Vec<u8>,
        labels: Vec<i64>,
        shape: [usize; 3],
        num_classes: Option<usize>,
        source: &str,
    ) -> Result<Self> {
        let per = shape[0] * shape[1] * shape[2];
        if per == 0 {
            return Err(Error::format(
                source,
                format!("image shape {shape:?} has no pixels"),
            ));
        }
        if Some(pixels.len()) != labels.len().checked_mul(per) {
            return Err(Error::format(
                source,
                format!(
                    "{} labels of {shape:?} images need {} pixel bytes, got {}",
                    labels.len(),
                    labels.len().saturating_mul(per),
                    pixels.len()
                ),
            ));
        }
        if let Some(k) = num_classes {
            check_labels(&labels, k, source)?;
        }
        Ok(ImageSet {
            pixels,
            labels,
            shape,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Shape of one image, `[C, H, W]`.
    pub fn image_shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Bytes per image, `C*H*W`.
    pub fn image_len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The raw CHW pixels of image `index`, or `None` past the end.
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        let n = self.image_len();
        self.pixels.get(index * n..(index + 1) * n)
    }

    /// The label of image `index`, or `None` past the end.
    pub fn label(&self, index: usize) -> Option<i64> {
        self.labels.get(index).copied()
    }

    /// All pixels, `N*C*H*W` bytes.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// All labels.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// Replaces the labels (e.g. CIFAR-100 coarse instead of fine); the count must not change.
    ///
    /// # Errors
    /// [`Error::Format`] naming `source` when the number of labels differs from the number of
    /// images.
    pub fn with_labels(mut self, labels: Vec<i64>, source: &str) -> Result<Self> {
        if labels.len() != self.labels.len() {
            return Err(Error::format(
                source,
                format!("{} labels for {} images", labels.len(), self.labels.len()),
            ));
        }
        self.labels = labels;
        Ok(self)
    }
}

/// Checks every label lies in `0..num_classes`; the error names `source`, the index and value.
pub(crate) fn check_labels(labels: &[i64], num_classes: usize, source: &str) -> Result<()> {
    match labels
        .iter()
        .position(|&l| l < 0 || l as u64 >= num_classes as u64)
    {
        None => Ok(()),
        Some(i) => Err(Error::format(
            source,
            format!(
                "label {} at record {i} is out of range (expected 0..{num_classes})",
                labels[i]
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_set() {
        let s = ImageSet::new(vec![1, 2, 3, 4], vec![0, 1], [1, 1, 2], Some(2), "t").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.image(1), Some(&[3u8, 4][..]));
        assert_eq!(s.image(2), None);
        assert_eq!(s.label(1), Some(1));
    }

    #[test]
    fn wrong_pixel_count_and_bad_labels() {
        assert!(ImageSet::new(vec![1, 2, 3], vec![0, 1], [1, 1, 2], None, "t").is_err());
        let e = ImageSet::new(vec![1, 2, 3, 4], vec![0, 5], [1, 1, 2], Some(2), "lab.bin")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("lab.bin") && e.contains("label 5 at record 1"),
            "{e}"
        );
        assert!(ImageSet::new(vec![], vec![], [0, 1, 1], None, "t").is_err());
    }
}
