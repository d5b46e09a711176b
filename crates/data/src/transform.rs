//! The `Transform` hook that datasets apply to each image in `get` (so in loader workers).

use std::sync::Arc;

use mlfw_core::Tensor;

use crate::error::Result;
use crate::rng::Rng;

/// Turns one image tensor into another (normalize, crop, flip, ...).
///
/// Datasets call it in [`crate::Dataset::get_seeded`] on the `[C, H, W]` image (f32 in `[0, 1]`
/// unless the dataset was asked for u8). `rng` is seeded per sample from the loader's seed, the
/// epoch and the dataset index, so augmentation is reproducible whatever the number of workers;
/// draw all randomness from it. Closures `Fn(Tensor, &mut Rng) -> Result<Tensor>` implement it.
pub trait Transform: Send + Sync {
    /// Transforms `image`, drawing randomness from `rng` only.
    fn apply(&self, image: Tensor, rng: &mut Rng) -> Result<Tensor>;
}

impl<F> Transform for F
where
    F: Fn(Tensor, &mut Rng) -> Result<Tensor> + Send + Sync,
{
    fn apply(&self, image: Tensor, rng: &mut Rng) -> Result<Tensor> {
        self(image, rng)
    }
}

/// A list of transforms applies each in order, sharing one generator.
impl Transform for Vec<Arc<dyn Transform>> {
    fn apply(&self, mut image: Tensor, rng: &mut Rng) -> Result<Tensor> {
        for t in self {
            image = t.apply(image, rng)?;
        }
        Ok(image)
    }
}
